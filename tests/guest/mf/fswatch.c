/*
 * Watch a filesystem for fanotify FAN_FS_ERROR events.
 *   fswatch MNT [FILE...]
 * fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID), a FAN_MARK_FILESYSTEM
 * mark for FAN_FS_ERROR on MNT. Prints
 *   handle FILE TYPE HEX          for each FILE (name_to_handle_at)
 *   ready
 *   error TYPE HEX errno=E count=C    for each event, as it is read
 * TYPE 255 with HEX "-" is an event about the whole filesystem. Runs until
 * killed; exits 1 on setup errors (message on stderr).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>

static void hex(const unsigned char *b, unsigned n, char *out)
{
	if (!n) {
		strcpy(out, "-");
		return;
	}
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

int main(int argc, char **argv)
{
	char buf[8192], h[2 * MAX_HANDLE_SZ + 1];
	int fd;

	if (argc < 2)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 2; i < argc; i++) {
		struct {
			struct file_handle fh;
			unsigned char b[MAX_HANDLE_SZ];
		} fh;
		int mnt_id;

		fh.fh.handle_bytes = MAX_HANDLE_SZ;
		if (name_to_handle_at(AT_FDCWD, argv[i], &fh.fh, &mnt_id, 0)) {
			perror(argv[i]);
			return 1;
		}
		hex(fh.fh.f_handle, fh.fh.handle_bytes, h);
		printf("handle %s %d %s\n", argv[i], fh.fh.handle_type, h);
	}
	fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID, O_RDONLY);
	if (fd < 0) {
		perror("fanotify_init");
		return 1;
	}
	if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_FS_ERROR, AT_FDCWD, argv[1])) {
		perror("fanotify_mark");
		return 1;
	}
	printf("ready\n");
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		struct fanotify_event_metadata *m = (void *)buf;

		if (n <= 0) {
			perror("read");
			return 1;
		}
		for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			char *p = (char *)(m + 1), *end = (char *)m + m->event_len;
			int type = -1, err = -1, count = -1;

			strcpy(h, "?");
			if (!(m->mask & FAN_FS_ERROR))
				continue;
			while (p + sizeof(struct fanotify_event_info_header) <= end) {
				struct fanotify_event_info_header *ih = (void *)p;

				if (ih->info_type == FAN_EVENT_INFO_TYPE_ERROR) {
					struct fanotify_event_info_error *e = (void *)ih;

					err = e->error;
					count = e->error_count;
				} else if (ih->info_type == FAN_EVENT_INFO_TYPE_FID) {
					struct fanotify_event_info_fid *f = (void *)ih;
					struct file_handle *fh = (void *)f->handle;

					type = fh->handle_type;
					hex(fh->f_handle, fh->handle_bytes, h);
				}
				if (!ih->len)
					break;
				p += ih->len;
			}
			printf("error %d %s errno=%d count=%d\n", type, h, err, count);
		}
	}
}
