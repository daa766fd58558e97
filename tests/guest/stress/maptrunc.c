/*
 * A file mapped while another process truncates it and reflinks over it.
 *
 *   maptrunc DIR SECONDS
 *
 * DIR/src holds 2 MiB of a pattern that nobody may change. DIR/f is mapped
 * MAP_SHARED by two children that load and store random pages (a SIGBUS
 * after a truncate is expected and counted); the parent meanwhile loops
 * truncating f to 0 and back, FICLONE src -> f, FICLONERANGE pieces of src
 * into f, punching holes and writing. Stores through f's mapping after a
 * reflink must copy on write: src must never see them. At the end (children
 * stopped) f is cloned from src once more and both must equal the pattern.
 * Prints "maptrunc: N remaps, N stores, N loads, N SIGBUS" and exits 0, or
 * prints "FAILED: ..." and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SZ (2 << 20)
static sigjmp_buf jb;
static unsigned long *cnt; /* stores, loads, sigbus */

static void on_bus(int s) { (void)s; siglongjmp(jb, 1); }

static unsigned char pat(size_t i) { return (unsigned char)(i * 131 + (i >> 12) * 7 + 1); }

static int check(const char *p, const char *what)
{
	static unsigned char b[SZ];
	int fd = open(p, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : pread(fd, b, SZ, 0);
	if (fd >= 0)
		close(fd);
	if (n != SZ) {
		printf("FAILED: %s: read %zd bytes: %s\n", what, n, strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < SZ; i++)
		if (b[i] != pat(i)) {
			printf("FAILED: %s: byte %zu is %#x, want %#x\n", what, i, b[i], pat(i));
			return 1;
		}
	return 0;
}

int main(int argc, char **argv)
{
	char src[512], f[512];
	static unsigned char b[SZ];
	unsigned long remaps = 0;
	int secs, sfd, ffd, err = 0;
	pid_t kids[2];
	time_t end;

	if (argc != 3)
		return fprintf(stderr, "usage: maptrunc DIR SECONDS\n"), 2;
	secs = atoi(argv[2]);
	snprintf(src, sizeof(src), "%s/src", argv[1]);
	snprintf(f, sizeof(f), "%s/f", argv[1]);
	for (size_t i = 0; i < SZ; i++)
		b[i] = pat(i);
	sfd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ffd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (sfd < 0 || ffd < 0 || pwrite(sfd, b, SZ, 0) != SZ || ioctl(ffd, FICLONE, sfd))
		return perror("setup"), 2;
	cnt = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	end = time(NULL) + secs;
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			int fd = open(f, O_RDWR);
			unsigned char *m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			unsigned seed = 77 + k;
			if (m == MAP_FAILED)
				_exit(3);
			signal(SIGBUS, on_bus);
			while (time(NULL) < end) {
				size_t off = (rand_r(&seed) % (SZ / 4096)) * 4096 + rand_r(&seed) % 4000;
				if (sigsetjmp(jb, 1)) {
					__atomic_fetch_add(&cnt[2], 1, __ATOMIC_RELAXED);
					continue;
				}
				if (rand_r(&seed) % 2) {
					memset(m + off, 'S', 64);
					__atomic_fetch_add(&cnt[0], 1, __ATOMIC_RELAXED);
				} else {
					volatile unsigned char x = m[off];
					(void)x;
					__atomic_fetch_add(&cnt[1], 1, __ATOMIC_RELAXED);
				}
			}
			_exit(0);
		}
	}
	while (time(NULL) < end) {
		struct file_clone_range cr = { .src_fd = sfd, .src_offset = (remaps % 8) * 65536,
					       .src_length = 65536, .dest_offset = ((remaps * 5) % 32) * 65536 };
		int r = 0;
		switch (remaps % 6) {
		case 0: r = ftruncate(ffd, 0) || ftruncate(ffd, SZ); break;
		case 1: r = ioctl(ffd, FICLONE, sfd); break;
		case 2: r = ioctl(ffd, FICLONERANGE, &cr); break;
		case 3: r = fallocate(ffd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 3 * 65536, 65536); break;
		case 4: r = pwrite(ffd, b, 8192, 12345) != 8192; break;
		case 5: r = ftruncate(ffd, SZ / 3); break;
		}
		if (r && errno != EINVAL) { /* EINVAL: clone range past a truncated EOF */
			printf("FAILED: remap step %lu: %s\n", remaps % 6, strerror(errno));
			err = 1;
			break;
		}
		remaps++;
	}
	for (int k = 0; k < 2; k++) {
		int st;
		waitpid(kids[k], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			printf("FAILED: mapping child %d ended with status %#x\n", k, st);
			err = 1;
		}
	}
	err |= check(src, "the reflink source (stores through the clone leaked into it)");
	if (ioctl(ffd, FICLONE, sfd)) {
		printf("FAILED: final FICLONE: %s\n", strerror(errno));
		err = 1;
	}
	err |= check(f, "the clone after the final FICLONE");
	printf("maptrunc: %lu remaps, %lu stores, %lu loads, %lu SIGBUS\n", remaps, cnt[0], cnt[1], cnt[2]);
	return err;
}
