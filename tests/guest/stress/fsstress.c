/*
 * fsstress for ferrofs: N processes doing random mixed operations on a
 * shared set of files and directories for a given time.
 *
 *   fsstress DIR NPROC SECONDS SEED
 *
 * Names: DIR/d0..d3/{f0..f15, s0..s3}. Operations: create, write, read,
 * mmap store (and load), truncate, punch, zero range, fallocate, reflink
 * (FICLONE and FICLONERANGE), dedupe, copy_file_range, rename (plain,
 * NOREPLACE, EXCHANGE), unlink, link, symlink, mkdir, rmdir, set/get/remove
 * xattr, fsync, fdatasync, readdir, stat. Errors a racing namespace explains
 * (ENOENT, EEXIST, ENOTEMPTY, EISDIR, ENOTDIR, EINVAL for ranges past EOF,
 * ENOSPC, ENODATA, EMLINK, EXDEV, EBUSY, EPERM for links to directories,
 * ERANGE for a too-small getxattr buffer, ELOOP for symlinks to themselves) are counted; any other errno
 * (EIO, EUCLEAN, EFAULT, ENOMEM, ...) is an "unexpected error" and is
 * printed. A store through a mapping may SIGBUS when another process
 * truncated the file (counted, then the process goes on).
 * With FSSTRESS_QUOTA=1 in the environment (tests/guest/stress/55-quota.py
 * sets limits), EDQUOT is expected too and counted on its own, and so is a
 * SIGBUS of a store fault over the limit.
 * Prints a per-operation table and "fsstress: N ops, M unexpected errors";
 * exits 1 if M > 0.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define NDIR 4
#define NFILE 16
#define NSUB 4
#define MAXSZ (1 << 20)
#define MAXP 64

enum { OP_CREATE, OP_WRITE, OP_READ, OP_MMAPW, OP_MMAPR, OP_TRUNC, OP_PUNCH, OP_ZERO, OP_FALLOC, OP_CLONE,
       OP_CLONER, OP_DEDUPE, OP_CFR, OP_RENAME, OP_RENAMEX, OP_UNLINK, OP_LINK, OP_SYMLINK, OP_MKDIR, OP_RMDIR,
       OP_SETX, OP_GETX, OP_RMX, OP_FSYNC, OP_FDSYNC, OP_READDIR, OP_STAT, NOPS };
static const char *names[NOPS] = {
	"create", "write", "read", "mmap-store", "mmap-load", "truncate", "punch", "zero-range",
	"fallocate", "ficlone", "ficlonerange", "dedupe", "copy_file_range", "rename", "rename-x",
	"unlink", "link", "symlink", "mkdir", "rmdir", "setxattr", "getxattr", "removexattr",
	"fsync", "fdatasync", "readdir", "stat" };

struct shared {
	unsigned long ops[MAXP][NOPS];
	unsigned long fails[MAXP][NOPS];
	unsigned long sigbus[MAXP];
	unsigned long edquot[MAXP];
	unsigned long unexpected;
	char msgs[32][320];
};
static struct shared *sh;
static int me;
static uint64_t rs;
static const char *top;
static sigjmp_buf jb;
static volatile int in_map;
static int quota; /* FSSTRESS_QUOTA=1: limits are set, EDQUOT is expected */

static uint64_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}
static unsigned below(unsigned n) { return n ? rnd() % n : 0; }

static void pfile(char *b, size_t n) { snprintf(b, n, "%s/d%u/f%u", top, below(NDIR), below(NFILE)); }
static void pany(char *b, size_t n)
{
	if (below(4) == 0)
		snprintf(b, n, "%s/d%u/s%u", top, below(NDIR), below(NSUB));
	else
		pfile(b, n);
}

static int expected(int e)
{
	switch (e) {
	case ENOENT: case EEXIST: case ENOTEMPTY: case EISDIR: case ENOTDIR: case EINVAL:
	case ENOSPC: case ENODATA: case EMLINK: case EXDEV: case EBUSY: case EPERM: case ERANGE:
	case ETXTBSY: case EOPNOTSUPP: case EFBIG: case ELOOP /* symlinks to themselves */:
		return 1;
	}
	return 0;
}

static void result(int op, long r, const char *what)
{
	sh->ops[me][op]++;
	if (r >= 0)
		return;
	sh->fails[me][op]++;
	if (quota && errno == EDQUOT) {
		sh->edquot[me]++;
		return;
	}
	if (!expected(errno)) {
		unsigned long i = __atomic_fetch_add(&sh->unexpected, 1, __ATOMIC_RELAXED);
		if (i < 32)
			snprintf(sh->msgs[i], sizeof(sh->msgs[i]), "%s %s: %s", names[op], what,
				 strerrorname_np(errno) ? strerrorname_np(errno) : "?");
	}
}

static void on_bus(int sig)
{
	(void)sig;
	if (in_map)
		siglongjmp(jb, 1);
	_exit(99);
}

static char buf[MAXSZ];

static void one(void)
{
	char a[256], b[256];
	int op = below(NOPS), fd, fd2;
	long r = 0;
	off_t off = (off_t)below(MAXSZ / 4096) * 4096, len = (below(64) + 1) * 4096;

	pfile(a, sizeof(a));
	pfile(b, sizeof(b));
	if (below(3) == 0) /* unaligned offsets now and then */
		off += below(4096);
	switch (op) {
	case OP_CREATE:
		r = fd = open(a, O_RDWR | O_CREAT | (below(2) ? O_TRUNC : 0), 0644);
		if (fd >= 0) {
			r = write(fd, buf, below(20000));
			close(fd);
		}
		break;
	case OP_WRITE: case OP_READ: case OP_FSYNC: case OP_FDSYNC: case OP_TRUNC: case OP_PUNCH:
	case OP_ZERO: case OP_FALLOC:
		r = fd = open(a, op == OP_READ ? O_RDONLY : O_RDWR);
		if (fd < 0)
			break;
		if (off + len > MAXSZ)
			len = MAXSZ - off;
		switch (op) {
		case OP_WRITE: r = pwrite(fd, buf, len, off); break;
		case OP_READ: r = pread(fd, buf, len, off); break;
		case OP_FSYNC: r = pwrite(fd, buf, 512, off); if (r >= 0) r = fsync(fd); break;
		case OP_FDSYNC: r = fdatasync(fd); break;
		case OP_TRUNC: r = ftruncate(fd, below(2) ? off : below(MAXSZ)); break;
		case OP_PUNCH: r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len); break;
		case OP_ZERO: r = fallocate(fd, FALLOC_FL_ZERO_RANGE, off, len); break;
		case OP_FALLOC: r = fallocate(fd, below(2) ? FALLOC_FL_KEEP_SIZE : 0, off, len); break;
		}
		close(fd);
		break;
	case OP_MMAPW: case OP_MMAPR: {
		struct stat st;
		char *m;
		r = fd = open(a, op == OP_MMAPW ? O_RDWR : O_RDONLY);
		if (fd < 0)
			break;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
			size_t ml = st.st_size > MAXSZ ? MAXSZ : st.st_size;
			m = mmap(NULL, ml, op == OP_MMAPW ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
			if (m == MAP_FAILED) {
				r = -1;
			} else {
				in_map = 1;
				if (sigsetjmp(jb, 1) == 0) {
					size_t o = below(ml), l = below(ml - o) % 20000;
					if (op == OP_MMAPW) {
						memset(m + o, 'm', l);
						if (below(3) == 0)
							msync(m, ml, MS_SYNC);
					} else {
						volatile char s = 0;
						for (size_t i = o; i < o + l; i += 4096)
							s += m[i];
					}
				} else {
					sh->sigbus[me]++;
				}
				in_map = 0;
				munmap(m, ml);
			}
		}
		close(fd);
		break;
	}
	case OP_CLONE: case OP_CLONER: case OP_DEDUPE: case OP_CFR:
		r = fd = open(a, O_RDONLY);
		if (fd < 0)
			break;
		r = fd2 = open(b, O_RDWR);
		if (fd2 < 0) {
			close(fd);
			break;
		}
		if (op == OP_CLONE) {
			r = ioctl(fd2, FICLONE, fd);
		} else if (op == OP_CLONER) {
			struct file_clone_range cr = { .src_fd = fd, .src_offset = off & ~4095L,
				.src_length = below(4) ? len : 0, .dest_offset = below(MAXSZ / 4096) * 4096 };
			r = ioctl(fd2, FICLONERANGE, &cr);
		} else if (op == OP_DEDUPE) {
			struct { struct file_dedupe_range h; struct file_dedupe_range_info i; } d;
			memset(&d, 0, sizeof(d));
			d.h.src_offset = off & ~4095L;
			d.h.src_length = len;
			d.h.dest_count = 1;
			d.i.dest_fd = fd2;
			d.i.dest_offset = below(2) ? (off & ~4095L) : below(MAXSZ / 4096) * 4096;
			r = ioctl(fd, FIDEDUPERANGE, &d);
			if (r == 0 && d.i.status < 0) {
				errno = -d.i.status;
				r = -1;
			}
		} else {
			loff_t so = off, doff = below(MAXSZ);
			r = copy_file_range(fd, &so, fd2, &doff, len, 0);
		}
		close(fd);
		close(fd2);
		break;
	case OP_RENAME:
		pany(a, sizeof(a));
		pany(b, sizeof(b));
		r = renameat2(AT_FDCWD, a, AT_FDCWD, b, below(3) == 0 ? RENAME_NOREPLACE : 0);
		break;
	case OP_RENAMEX:
		pany(a, sizeof(a));
		pany(b, sizeof(b));
		r = renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
		break;
	case OP_UNLINK: r = unlink(a); break;
	case OP_LINK: r = link(a, b); break;
	case OP_SYMLINK: r = symlink(below(2) ? "f0" : "../d1/some/long/target/name/that/is/not/there", b); break;
	case OP_MKDIR: snprintf(a, sizeof(a), "%s/d%u/s%u", top, below(NDIR), below(NSUB)); r = mkdir(a, 0755); break;
	case OP_RMDIR: snprintf(a, sizeof(a), "%s/d%u/s%u", top, below(NDIR), below(NSUB)); r = rmdir(a); break;
	case OP_SETX: {
		char n[32];
		snprintf(n, sizeof(n), "user.x%u", below(4));
		pany(a, sizeof(a));
		r = lsetxattr(a, n, buf, below(3) ? below(200) : below(30000), 0);
		break;
	}
	case OP_GETX: {
		char n[32], v[300];
		snprintf(n, sizeof(n), "user.x%u", below(4));
		pany(a, sizeof(a));
		r = lgetxattr(a, n, v, sizeof(v));
		break;
	}
	case OP_RMX: {
		char n[32];
		snprintf(n, sizeof(n), "user.x%u", below(4));
		pany(a, sizeof(a));
		r = lremovexattr(a, n);
		break;
	}
	case OP_READDIR: {
		DIR *d;
		snprintf(a, sizeof(a), "%s/d%u", top, below(NDIR));
		d = opendir(a);
		r = d ? 0 : -1;
		if (d) {
			errno = 0;
			while (readdir(d))
				;
			if (errno)
				r = -1;
			int e = errno;
			closedir(d);
			errno = e;
		}
		break;
	}
	case OP_STAT: {
		struct stat st;
		pany(a, sizeof(a));
		r = lstat(a, &st);
		break;
	}
	}
	result(op, r, a);
}

int main(int argc, char **argv)
{
	int nproc, secs, i;
	unsigned long seed, total = 0, fails = 0, bus = 0, edq = 0;
	time_t end;

	if (argc != 5)
		return fprintf(stderr, "usage: fsstress DIR NPROC SECONDS SEED\n"), 2;
	top = argv[1];
	nproc = atoi(argv[2]);
	secs = atoi(argv[3]);
	seed = strtoul(argv[4], NULL, 0);
	if (nproc < 1 || nproc > MAXP)
		return fprintf(stderr, "fsstress: NPROC must be 1..%d\n", MAXP), 2;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return perror("mmap"), 2;
	if (mkdir(top, 0755) && errno != EEXIST)
		return perror(top), 2;
	for (i = 0; i < NDIR; i++) {
		char p[256];
		snprintf(p, sizeof(p), "%s/d%d", top, i);
		if (mkdir(p, 0755) && errno != EEXIST)
			return perror(p), 2;
	}
	for (i = 0; i < MAXSZ; i++)
		buf[i] = 'a' + i % 23;
	quota = getenv("FSSTRESS_QUOTA") && !strcmp(getenv("FSSTRESS_QUOTA"), "1");
	signal(SIGBUS, on_bus);
	end = time(NULL) + secs;
	for (me = 0; me < nproc; me++) {
		pid_t p = fork();
		if (p < 0)
			return perror("fork"), 2;
		if (p == 0) {
			rs = seed * 0x9E3779B97F4A7C15ULL + me * 7919 + 1;
			while (time(NULL) < end)
				for (i = 0; i < 16; i++)
					one();
			_exit(0);
		}
	}
	for (i = 0; i < nproc; i++) {
		int st;
		pid_t p = wait(&st);
		if (p > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			fprintf(stderr, "fsstress: a worker died (status %#x)\n", st);
			sh->unexpected++;
		}
	}
	printf("%-16s %10s %10s\n", "operation", "ops", "failed");
	for (int op = 0; op < NOPS; op++) {
		unsigned long o = 0, f = 0;
		for (i = 0; i < nproc; i++) {
			o += sh->ops[i][op];
			f += sh->fails[i][op];
		}
		total += o;
		fails += f;
		printf("%-16s %10lu %10lu\n", names[op], o, f);
	}
	for (i = 0; i < nproc; i++) {
		bus += sh->sigbus[i];
		edq += sh->edquot[i];
	}
	for (unsigned long k = 0; k < sh->unexpected && k < 32; k++)
		printf("unexpected: %s\n", sh->msgs[k]);
	printf("fsstress: %lu ops (%lu failed as expected under races, %lu EDQUOT, %lu SIGBUS on a truncated "
	       "mapping%s), %lu unexpected errors, %d processes, %d s\n", total, fails - sh->unexpected - edq, edq,
	       bus, quota ? " or over a quota" : "", sh->unexpected, nproc, secs);
	return sh->unexpected ? 1 : 0;
}
