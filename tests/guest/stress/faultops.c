/*
 * One filesystem operation with fault injection armed for this task only
 * (failslab/fail_page_alloc with task-filter: /proc/self/make-it-fail is set
 * just around the operation's system calls, so setup and reporting never
 * see an injected failure).
 *
 *   faultops OP DIR [DEV]
 *
 * OP: mount (DEV on DIR), create, mkdir, symlink, link, rename, unlink,
 * write, truncate, punch, fallocate, reflink, cow-write, cow-fault,
 * xattr-small, xattr-big, fsync, readdir, read. DIR holds the files the
 * caller prepared: "src" (64 KiB of data), "clone" (a reflink of src).
 * Prints "OP ok" or "OP errno NAME" (or "OP sigbus" for a faulting store)
 * and exits 0; exit 2 means bad usage or a failed setup step.
 */
#define _GNU_SOURCE
#include <dirent.h>
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static int fail_fd = -1;
static sigjmp_buf jb;

static void arm(int on)
{
	if (pwrite(fail_fd, on ? "1" : "0", 1, 0) != 1) {
		perror("make-it-fail");
		exit(2);
	}
}

static void on_bus(int sig)
{
	(void)sig;
	siglongjmp(jb, 1);
}

static char path_buf[4][4096];
static const char *P(int i, const char *dir, const char *name)
{
	snprintf(path_buf[i], sizeof(path_buf[i]), "%s/%s", dir, name);
	return path_buf[i];
}

static int setup_open(const char *p, int flags)
{
	int fd = open(p, flags, 0644);
	if (fd < 0) {
		fprintf(stderr, "setup: open %s: %s\n", p, strerror(errno));
		exit(2);
	}
	return fd;
}

int main(int argc, char **argv)
{
	static char buf[256 << 10];
	const char *op, *dir;
	int r = 0, e = 0, fd = -1, fd2 = -1;
	char *map = NULL;

	if (argc < 3)
		return fprintf(stderr, "usage: faultops OP DIR [DEV]\n"), 2;
	op = argv[1];
	dir = argv[2];
	memset(buf, 'f', sizeof(buf));
	fail_fd = open("/proc/self/make-it-fail", O_WRONLY);
	if (fail_fd < 0)
		return perror("/proc/self/make-it-fail"), 2;

	/* setup outside the armed window */
	if (!strcmp(op, "write") || !strcmp(op, "truncate") || !strcmp(op, "punch") ||
	    !strcmp(op, "fallocate") || !strcmp(op, "fsync") || !strcmp(op, "read"))
		fd = setup_open(P(0, dir, "src"), O_RDWR);
	else if (!strcmp(op, "reflink")) {
		fd = setup_open(P(0, dir, "src"), O_RDONLY);
		fd2 = setup_open(P(1, dir, "dst"), O_RDWR | O_CREAT | O_TRUNC);
	} else if (!strcmp(op, "cow-write"))
		fd = setup_open(P(0, dir, "clone"), O_RDWR);
	else if (!strcmp(op, "cow-fault")) {
		fd = setup_open(P(0, dir, "clone"), O_RDWR);
		map = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED)
			return perror("setup: mmap"), 2;
		signal(SIGBUS, on_bus);
		if (map[0] == 0x7f) /* read fault on the shared block first */
			buf[0] = 1;
	} else if (!strcmp(op, "xattr-small") || !strcmp(op, "xattr-big"))
		fd = setup_open(P(0, dir, "src"), O_RDWR);

	arm(1);
	if (!strcmp(op, "mount")) {
		if (argc < 4)
			return arm(0), 2;
		r = mount(argv[3], dir, "ferrofs", 0, "dax");
	} else if (!strcmp(op, "create")) {
		r = fd2 = open(P(0, dir, "new"), O_RDWR | O_CREAT | O_EXCL, 0644);
		if (r >= 0)
			r = write(fd2, buf, 8192) == 8192 ? 0 : -1;
	} else if (!strcmp(op, "mkdir")) {
		r = mkdir(P(0, dir, "newdir"), 0755);
	} else if (!strcmp(op, "symlink")) {
		r = symlink("a-target-long-enough-to-be-interesting/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			    P(0, dir, "sym"));
	} else if (!strcmp(op, "link")) {
		r = link(P(0, dir, "src"), P(1, dir, "hard"));
	} else if (!strcmp(op, "rename")) {
		r = rename(P(0, dir, "victim"), P(1, dir, "renamed"));
	} else if (!strcmp(op, "unlink")) {
		r = unlink(P(0, dir, "victim"));
	} else if (!strcmp(op, "write")) {
		r = pwrite(fd, buf, sizeof(buf), 1 << 20) == (ssize_t)sizeof(buf) ? 0 : -1;
	} else if (!strcmp(op, "truncate")) {
		r = ftruncate(fd, 4096 + 17);
	} else if (!strcmp(op, "punch")) {
		r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8192, 16384);
	} else if (!strcmp(op, "fallocate")) {
		r = fallocate(fd, 0, 4 << 20, 1 << 20);
	} else if (!strcmp(op, "reflink")) {
		r = ioctl(fd2, FICLONE, fd);
	} else if (!strcmp(op, "cow-write")) {
		r = pwrite(fd, buf, 3 * 4096, 4096) == 3 * 4096 ? 0 : -1;
	} else if (!strcmp(op, "cow-fault")) {
		if (sigsetjmp(jb, 1) == 0) {
			memset(map + 2 * 4096, 'c', 8 * 4096);
			r = msync(map, 16 * 4096, MS_SYNC);
		} else {
			arm(0);
			printf("%s sigbus\n", op);
			return 0;
		}
	} else if (!strcmp(op, "xattr-small")) {
		r = fsetxattr(fd, "user.small", buf, 100, 0);
	} else if (!strcmp(op, "xattr-big")) {
		r = fsetxattr(fd, "user.big", buf, 20000, 0);
	} else if (!strcmp(op, "fsync")) {
		r = pwrite(fd, buf, 4096, 0) == 4096 ? fsync(fd) : -1;
	} else if (!strcmp(op, "read")) {
		r = pread(fd, buf, sizeof(buf), 0) >= 0 ? 0 : -1;
	} else if (!strcmp(op, "readdir")) {
		DIR *d = opendir(dir);
		r = -1;
		if (d) {
			errno = 0;
			while (readdir(d))
				;
			r = errno ? -1 : 0;
			e = errno;
			closedir(d);
			errno = e;
		}
	} else {
		arm(0);
		fprintf(stderr, "faultops: unknown op %s\n", op);
		return 2;
	}
	e = errno;
	arm(0);
	if (r < 0)
		printf("%s errno %s\n", op, strerrorname_np(e) ? strerrorname_np(e) : "?");
	else
		printf("%s ok\n", op);
	return 0;
}
