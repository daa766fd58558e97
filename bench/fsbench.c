/* fsbench: the timed parts of `make bench`, compiled in the guest with gcc.
 *
 * Every subcommand prints one JSON object per line on stdout:
 *   {"m":"<metric>","v":<value>,"unit":"<unit>"}            a figure
 *   {"m":"<metric>","q":[...101 values...],"unit":"us"}    latency quantiles
 *   {"m":"<metric>","error":"<ERRNO>"}                        the operation failed
 *   {"m":"<metric>","na":"<why>"}                              no such figure here
 * Timing is clock_gettime(CLOCK_MONOTONIC) around the operations only (setup,
 * such as writing the file that is then cloned, is outside the timed region).
 * Benchmarks, not tests: nothing here asserts on a time.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define PG 4096UL
#define MIB (1024UL * 1024UL)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fig(const char *m, double v, const char *unit)
{
	printf("{\"m\":\"%s\",\"v\":%.6g,\"unit\":\"%s\"}\n", m, v, unit);
	fflush(stdout);
}

static void err(const char *m, int e)
{
	const char *n = strerrorname_np(e);
	printf("{\"m\":\"%s\",\"error\":\"%s\"}\n", m, n ? n : "E?");
	fflush(stdout);
}

static void na(const char *m, const char *why)
{
	printf("{\"m\":\"%s\",\"na\":\"%s\"}\n", m, why);
	fflush(stdout);
}

/* A fatal setup failure: report the metric as an error and stop. */
#define CHECK(cond, m)                \
	do {                          \
		if (!(cond)) {        \
			err(m, errno); \
			exit(1);       \
		}                     \
	} while (0)

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* median, p99 and the 101 quantiles (0%..100%) of n latencies in seconds */
static void lat(const char *m, double *l, size_t n)
{
	char name[128];
	qsort(l, n, sizeof(*l), cmp_d);
	snprintf(name, sizeof(name), "%s_p50", m);
	fig(name, l[n / 2] * 1e6, "us");
	snprintf(name, sizeof(name), "%s_p99", m);
	fig(name, l[(size_t)((n - 1) * 0.99)] * 1e6, "us");
	printf("{\"m\":\"%s_q\",\"unit\":\"us\",\"q\":[", m);
	for (int i = 0; i <= 100; i++)
		printf("%s%.3f", i ? "," : "", l[(size_t)((n - 1) * (i / 100.0))] * 1e6);
	printf("]}\n");
	fflush(stdout);
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t xr(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void shuffle(size_t *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		a[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = xr() % (i + 1), t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
}

/* write `size` bytes of non-zero data in 1 MiB pwrites and fsync */
static void fill(const char *path, size_t size, const char *m)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, m);
	char *buf = malloc(MIB);
	for (size_t i = 0; i < MIB; i++)
		buf[i] = (char)(i * 7 + 1);
	for (size_t off = 0; off < size; off += MIB) {
		size_t n = size - off < MIB ? size - off : MIB;
		CHECK(pwrite(fd, buf, n, off) == (ssize_t)n, m);
	}
	CHECK(fsync(fd) == 0, m);
	close(fd);
	free(buf);
}

/* number of extents FIEMAP reports, or -errno */
static long extents(int fd)
{
	struct fiemap fm = { .fm_start = 0, .fm_length = FIEMAP_MAX_OFFSET, .fm_extent_count = 0 };
	if (ioctl(fd, FS_IOC_FIEMAP, &fm) < 0)
		return -errno;
	return fm.fm_mapped_extents;
}

/* reflink SRC DST SIZE_MIB: FICLONE of a fully written file */
static int c_reflink(char **a)
{
	size_t size = strtoul(a[2], 0, 0) * MIB;
	fill(a[0], size, "reflink_ms");
	int s = open(a[0], O_RDONLY), d = open(a[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(s >= 0 && d >= 0, "reflink_ms");
	double t0 = now();
	if (ioctl(d, FICLONE, s) < 0) {
		err("reflink_ms", errno);
		return 1;
	}
	double t1 = now();
	fig("reflink_ms", (t1 - t0) * 1e3, "ms");
	CHECK(fsync(d) == 0, "reflink_fsync_ms");
	fig("reflink_fsync_ms", (now() - t1) * 1e3, "ms");
	long es = extents(s), ed = extents(d);
	if (es < 0)
		err("reflink_src_extents", -es);
	else
		fig("reflink_src_extents", es, "extents");
	if (ed < 0)
		err("reflink_dst_extents", -ed);
	else
		fig("reflink_dst_extents", ed, "extents");
	close(s);
	close(d);
	return 0;
}

/* a MAP_SHARED mapping of fd at a 2 MiB aligned address, so that every
 * filesystem can map PMDs where its extents allow */
static char *map_aligned(int fd, size_t size, int prot)
{
	const size_t pmd = 2 * MIB;
	char *r = mmap(0, size + pmd, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return r;
	char *a = (char *)(((uintptr_t)r + pmd - 1) & ~(uintptr_t)(pmd - 1));
	char *p = mmap(a, size, prot, MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		munmap(r, size + pmd);
		errno = e;
		return p;
	}
	if (a > r)
		munmap(r, a - r);
	munmap(a + size, r + size + pmd - (a + size));
	return p;
}

/* ferrofs's fault counters in debugfs DIR (pmd_faults, pmd_fallbacks,
 * pte_faults); all -1 when DIR is "-" or unreadable */
struct faults {
	long long pmd, fallback, pte, minflt;
};

static long long counter(const char *dir, const char *name)
{
	char p[600];
	long long v = -1;
	if (!strcmp(dir, "-"))
		return -1;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "r");
	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* Reading the counters faults pages in (stdio buffers), so the minor-fault
 * count is sampled last before and first after the measured loop. */
static struct faults faults_before(const char *dir)
{
	struct rusage ru;
	struct faults f = { counter(dir, "pmd_faults"), counter(dir, "pmd_fallbacks"),
			    counter(dir, "pte_faults"), 0 };
	getrusage(RUSAGE_SELF, &ru);
	f.minflt = ru.ru_minflt;
	return f;
}

static struct faults faults_after(const char *dir)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (struct faults){ counter(dir, "pmd_faults"), counter(dir, "pmd_fallbacks"),
				counter(dir, "pte_faults"), ru.ru_minflt };
}

/* the faults between b and e as figures <m>_pmd_faults, _pmd_fallbacks,
 * _pte_faults (ferrofs debugfs; "n/a" elsewhere) and _minflt (getrusage: one
 * per fault whatever its size, so 1/512 per page when PMD-mapped) */
static void faults_fig(const char *m, struct faults b, struct faults e)
{
	char n[96];
	const char *what[3] = { "pmd_faults", "pmd_fallbacks", "pte_faults" };
	long long bv[3] = { b.pmd, b.fallback, b.pte }, ev[3] = { e.pmd, e.fallback, e.pte };
	for (int i = 0; i < 3; i++) {
		snprintf(n, sizeof(n), "%s_%s", m, what[i]);
		if (bv[i] < 0 || ev[i] < 0)
			na(n, "no counter");
		else
			fig(n, ev[i] - bv[i], "faults");
	}
	snprintf(n, sizeof(n), "%s_minflt", m);
	fig(n, e.minflt - b.minflt, "faults");
}

/* cow FILE PAGES [DEBUGFS_DIR]: first 4 KiB write into a reflinked file, via
 * pwrite and via an mmap store, one latency per page, pages in random order;
 * the mmap stores' faults are counted (see faults_fig) */
static int c_cow(char **a, int argc)
{
	const char *dir = argc > 2 ? a[2] : "-";
	size_t pages = strtoul(a[1], 0, 0), *ord = malloc(pages * sizeof(size_t));
	double *l = malloc(pages * sizeof(double));
	char pw[512], mm[512];
	snprintf(pw, sizeof(pw), "%s.pw", a[0]);
	snprintf(mm, sizeof(mm), "%s.mm", a[0]);
	fill(a[0], pages * PG, "cow_pwrite");
	int s = open(a[0], O_RDONLY);
	CHECK(s >= 0, "cow_pwrite");
	const char *names[2] = { "cow_pwrite", "cow_mmap" };
	const char *paths[2] = { pw, mm };
	for (int k = 0; k < 2; k++) {
		int d = open(paths[k], O_RDWR | O_CREAT | O_TRUNC, 0644);
		CHECK(d >= 0, names[k]);
		if (ioctl(d, FICLONE, s) < 0) {
			err(names[k], errno);
			close(d);
			continue;
		}
		CHECK(fsync(d) == 0, names[k]);
		shuffle(ord, pages);
		char buf[PG];
		memset(buf, 0x5a, PG);
		if (k == 0) {
			for (size_t i = 0; i < pages; i++) {
				double t0 = now();
				ssize_t r = pwrite(d, buf, PG, ord[i] * PG);
				l[i] = now() - t0;
				if (r != (ssize_t)PG) {
					err(names[k], r < 0 ? errno : EIO);
					goto next;
				}
			}
		} else {
			volatile char *p = map_aligned(d, pages * PG, PROT_READ | PROT_WRITE);
			if (p == MAP_FAILED) {
				err(names[k], errno);
				goto next;
			}
			struct faults f0 = faults_before(dir);
			for (size_t i = 0; i < pages; i++) {
				double t0 = now();
				p[ord[i] * PG] = 0x5a; /* write fault: CoW of the shared page */
				l[i] = now() - t0;
			}
			faults_fig("cow_mmap", f0, faults_after(dir));
			munmap((void *)p, pages * PG);
		}
		lat(names[k], l, pages);
		{ /* how finely the CoW split the clone: 1 extent per page is 4 KiB CoW */
			char m[64];
			long e = extents(d);
			snprintf(m, sizeof(m), "%s_extents_after", names[k]);
			if (e < 0)
				err(m, -e);
			else
				fig(m, e, "extents");
		}
	next:
		close(d);
	}
	close(s);
	return 0;
}

/* bw FILE FILE_MIB BS read|write seq|rand TOTAL_MIB THREADS */
struct bwarg {
	int fd;
	size_t fsize, bs, total, base, span;
	int write, rand;
	uint64_t seed;
	int err;
};

static void *bw_thread(void *p)
{
	struct bwarg *b = p;
	char *buf = aligned_alloc(PG, b->bs);
	memset(buf, 0x33, b->bs);
	size_t nblk = b->span / b->bs, n = b->total / b->bs;
	uint64_t r = b->seed;
	for (size_t i = 0; i < n; i++) {
		size_t blk;
		if (b->rand) {
			r ^= r << 13;
			r ^= r >> 7;
			r ^= r << 17;
			blk = r % nblk;
		} else {
			blk = i % nblk;
		}
		off_t off = b->base + blk * b->bs;
		ssize_t got = b->write ? pwrite(b->fd, buf, b->bs, off) : pread(b->fd, buf, b->bs, off);
		if (got != (ssize_t)b->bs) {
			b->err = got < 0 ? errno : EIO;
			break;
		}
	}
	free(buf);
	return 0;
}

static int c_bw(char **a)
{
	size_t fsize = strtoul(a[1], 0, 0) * MIB, bs = strtoul(a[2], 0, 0);
	int write = !strcmp(a[3], "write"), rnd = !strcmp(a[4], "rand");
	size_t total = strtoul(a[5], 0, 0) * MIB;
	int th = atoi(a[6]);
	char m[128];
	snprintf(m, sizeof(m), "%s_%s_%s_%dt", rnd ? "rand" : "seq", write ? "write" : "read",
		 bs >= MIB ? "1m" : "4k", th);
	struct stat st;
	if (stat(a[0], &st) != 0 || (size_t)st.st_size != fsize)
		fill(a[0], fsize, m);
	int fd = open(a[0], O_RDWR);
	CHECK(fd >= 0, m);
	struct bwarg b[16];
	pthread_t t[16];
	for (int i = 0; i < th; i++) {
		b[i] = (struct bwarg){ .fd = fd, .fsize = fsize, .bs = bs, .total = total / th,
				       .span = fsize / th, .base = i * (fsize / th), .write = write,
				       .rand = rnd, .seed = 0x9e3779b97f4a7c15ULL * (i + 1) };
	}
	double t0 = now();
	for (int i = 0; i < th; i++)
		pthread_create(&t[i], 0, bw_thread, &b[i]);
	for (int i = 0; i < th; i++)
		pthread_join(t[i], 0);
	double dt = now() - t0;
	for (int i = 0; i < th; i++)
		if (b[i].err) {
			err(m, b[i].err);
			return 1;
		}
	fig(m, total / dt / MIB, "MiB/s");
	close(fd);
	return 0;
}

/* append FILE COUNT BS [fdatasync|none]: append BS bytes with O_APPEND
 * write(2), then fdatasync (default) or nothing, COUNT times */
static int c_append(char **a, int argc)
{
	size_t n = strtoul(a[1], 0, 0), bs = strtoul(a[2], 0, 0);
	int sync = !(argc > 3 && !strcmp(a[3], "none"));
	const char *name = sync ? "append_fdatasync" : "append_nosync";
	char m[64];
	snprintf(m, sizeof(m), "%s_ops", name);
	double *l = malloc(n * sizeof(double));
	int fd = open(a[0], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	CHECK(fd >= 0, m);
	char *buf = malloc(bs);
	memset(buf, 0x44, bs);
	double t0 = now();
	for (size_t i = 0; i < n; i++) {
		double t = now();
		if (write(fd, buf, bs) != (ssize_t)bs || (sync && fdatasync(fd) != 0)) {
			err(m, errno);
			return 1;
		}
		l[i] = now() - t;
	}
	double dt = now() - t0;
	fig(m, n / dt, "ops/s");
	if (!sync)
		fig("append_nosync_mibs", n * bs / dt / MIB, "MiB/s");
	lat(name, l, n);
	close(fd);
	return 0;
}

/* mmapbw FILE SIZE_MIB PASSES [DEBUGFS_DIR]: memcpy bandwidth through a
 * MAP_SHARED mapping of a file made sparse with ftruncate, so that the first
 * store to each 2 MiB range allocates it as the write fault asks (on ferrofs
 * a 2 MiB aligned extent). Timed: the first store to every page (fault +
 * allocation), PASSES stores of the whole mapping; then a fresh mapping, a
 * load of every page (read faults on written blocks), PASSES loads. Faults of
 * each first-touch are counted (see faults_fig). */
static int c_mmapbw(char **a, int argc)
{
	size_t size = strtoul(a[1], 0, 0) * MIB;
	int passes = atoi(a[2]);
	const char *dir = argc > 3 ? a[3] : "-";
	int fd = open(a[0], O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "mmap_store");
	CHECK(ftruncate(fd, size) == 0, "mmap_store");
	char *p = map_aligned(fd, size, PROT_READ | PROT_WRITE);
	if (p == MAP_FAILED) {
		err("mmap_store", errno);
		err("mmap_load", errno);
		return 1;
	}
	char *buf = aligned_alloc(PG, MIB);
	memset(buf, 0x21, MIB);
	struct faults f0 = faults_before(dir);
	double t0 = now();
	for (size_t off = 0; off < size; off += PG)
		p[off] = 1; /* write fault on a hole: allocation */
	double t1 = now();
	faults_fig("mmap_store", f0, faults_after(dir));
	fig("mmap_fault_store_ms", (t1 - t0) * 1e3, "ms");
	t0 = now();
	for (int k = 0; k < passes; k++)
		for (size_t off = 0; off < size; off += MIB)
			memcpy(p + off, buf, MIB);
	fig("mmap_store", (double)size * passes / (now() - t0) / MIB, "MiB/s");
	CHECK(msync(p, size, MS_SYNC) == 0, "mmap_load");
	munmap(p, size);

	volatile char *q = map_aligned(fd, size, PROT_READ);
	if (q == MAP_FAILED) {
		err("mmap_load", errno);
		return 1;
	}
	unsigned sum = 0;
	f0 = faults_before(dir);
	t0 = now();
	for (size_t off = 0; off < size; off += PG)
		sum += q[off]; /* read fault on written blocks */
	t1 = now();
	faults_fig("mmap_load", f0, faults_after(dir));
	fig("mmap_fault_load_ms", (t1 - t0) * 1e3, "ms");
	t0 = now();
	for (int k = 0; k < passes; k++)
		for (size_t off = 0; off < size; off += MIB) {
			memcpy(buf, (char *)q + off, MIB);
			sum += buf[off / MIB % MIB];
		}
	fig("mmap_load", (double)size * passes / (now() - t0) / MIB, "MiB/s");
	if (sum == 0xdeadbeef)
		puts("");
	munmap((void *)q, size);
	close(fd);
	return 0;
}

/* devbw DEV SIZE_MIB: O_DIRECT 1 MiB sequential write then read of the raw
 * block device: the device limit the filesystems are compared against */
static int c_devbw(char **a)
{
	size_t size = strtoul(a[1], 0, 0) * MIB;
	int fd = open(a[0], O_RDWR | O_DIRECT);
	CHECK(fd >= 0, "dev_odirect_write_1m");
	char *buf = aligned_alloc(PG, MIB);
	memset(buf, 0x66, MIB);
	double t0 = now();
	for (size_t off = 0; off < size; off += MIB)
		CHECK(pwrite(fd, buf, MIB, off) == (ssize_t)MIB, "dev_odirect_write_1m");
	fig("dev_odirect_write_1m", size / (now() - t0) / MIB, "MiB/s");
	t0 = now();
	for (size_t off = 0; off < size; off += MIB)
		CHECK(pread(fd, buf, MIB, off) == (ssize_t)MIB, "dev_odirect_read_1m");
	fig("dev_odirect_read_1m", size / (now() - t0) / MIB, "MiB/s");
	close(fd);
	return 0;
}

/* meta DIR N [PHASE]: create, stat, readdir (PHASE 1), rename, unlink (PHASE
 * 2) of N empty files; both when PHASE is absent. Between the phases the
 * driver times umount and mount with the N files present. */
static int c_meta(char **a, int argc)
{
	size_t n = strtoul(a[1], 0, 0);
	int phase = argc > 2 ? atoi(a[2]) : 0;
	char p[600], q[600];
	double t0;
	if (phase == 2)
		goto phase2;
	CHECK(mkdir(a[0], 0755) == 0 || errno == EEXIST, "meta_create");
	t0 = now();
	for (size_t i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/f%07zu", a[0], i);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0) {
			err("meta_create", errno);
			return 1;
		}
		close(fd);
	}
	fig("meta_create", n / (now() - t0), "ops/s");
	struct stat st;
	t0 = now();
	for (size_t i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/f%07zu", a[0], i);
		if (stat(p, &st) != 0) {
			err("meta_stat", errno);
			return 1;
		}
	}
	fig("meta_stat", n / (now() - t0), "ops/s");
	t0 = now();
	DIR *d = opendir(a[0]);
	CHECK(d, "meta_readdir");
	size_t cnt = 0;
	errno = 0;
	while (readdir(d))
		cnt++;
	if (errno) {
		err("meta_readdir", errno);
		return 1;
	}
	closedir(d);
	fig("meta_readdir", n / (now() - t0), "entries/s");
	if (cnt != n + 2)
		fprintf(stderr, "fsbench: readdir saw %zu entries, want %zu\n", cnt, n + 2);
	if (phase == 1)
		return 0;
phase2:
	t0 = now();
	for (size_t i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/f%07zu", a[0], i);
		snprintf(q, sizeof(q), "%s/g%07zu", a[0], i);
		if (rename(p, q) != 0) {
			err("meta_rename", errno);
			return 1;
		}
	}
	fig("meta_rename", n / (now() - t0), "ops/s");
	t0 = now();
	for (size_t i = 0; i < n; i++) {
		snprintf(q, sizeof(q), "%s/g%07zu", a[0], i);
		if (unlink(q) != 0) {
			err("meta_unlink", errno);
			return 1;
		}
	}
	fig("meta_unlink", n / (now() - t0), "ops/s");
	rmdir(a[0]);
	return 0;
}

/* remount DEV DIR FSTYPE OPTS: sync, time umount(2), drop caches, time mount(2) */
static int c_remount(char **a)
{
	sync();
	double t0 = now();
	if (umount(a[1]) != 0) {
		err("umount_ms", errno);
		return 1;
	}
	fig("umount_ms", (now() - t0) * 1e3, "ms");
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "3", 1) != 1)
			perror("drop_caches");
		close(fd);
	}
	t0 = now();
	if (mount(a[0], a[1], a[2], 0, a[3]) != 0) {
		err("mount_ms", errno);
		return 1;
	}
	fig("mount_ms", (now() - t0) * 1e3, "ms");
	return 0;
}

/* scale SRC DST N [RMAP]: FICLONERANGE of one block into DST at N distinct
 * offsets (generic/175-like); then map DST, read every page (timed) and, when
 * RMAP is given (not "-"), print the figures of the rmap's header line */
static int c_scale(char **a, int argc)
{
	size_t n = strtoul(a[2], 0, 0);
	fill(a[0], PG, "scale_reflinks_s");
	int s = open(a[0], O_RDONLY), d = open(a[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(s >= 0 && d >= 0, "scale_reflinks_s");
	double t0 = now();
	for (size_t i = 0; i < n; i++) {
		struct file_clone_range r = { .src_fd = s, .src_offset = 0, .src_length = PG,
					      .dest_offset = i * PG };
		if (ioctl(d, FICLONERANGE, &r) < 0) {
			err("scale_reflinks_s", errno);
			return 1;
		}
	}
	double dt = now() - t0;
	fig("scale_reflinks_s", dt, "s");
	fig("scale_reflinks_ops", n / dt, "ops/s");
	long e = extents(d);
	if (e < 0)
		err("scale_extents", -e);
	else
		fig("scale_extents", e, "extents");
	{
		volatile char *p = map_aligned(d, n * PG, PROT_READ);
		if (p == MAP_FAILED) {
			err("scale_rmap_bytes", errno);
			return 1;
		}
		unsigned sum = 0;
		char dir[512] = "-";
		if (argc > 3 && strcmp(a[3], "-")) { /* the debugfs dir of the rmap file */
			snprintf(dir, sizeof(dir), "%s", a[3]);
			char *slash = strrchr(dir, '/');
			if (slash)
				*slash = 0;
		}
		struct faults f0 = faults_before(dir);
		t0 = now();
		for (size_t i = 0; i < n; i++)
			sum += p[i * PG];
		fig("scale_map_read_ms", (now() - t0) * 1e3, "ms");
		faults_fig("scale_map", f0, faults_after(dir));
		FILE *f = argc > 3 && strcmp(a[3], "-") ? fopen(a[3], "r") : NULL;
		char line[256];
		unsigned long sp, ow, by;
		if (!f) {
			if (argc > 3 && strcmp(a[3], "-"))
				err("scale_rmap_bytes", errno);
		} else if (!fgets(line, sizeof(line), f) ||
			   sscanf(line, "# shared pages %lu owners %lu bytes %lu", &sp, &ow, &by) != 3) {
			fprintf(stderr, "fsbench: rmap header not understood: %s\n", line);
			err("scale_rmap_bytes", EPROTO);
		} else {
			fig("scale_rmap_shared_pages", sp, "pages");
			fig("scale_rmap_owners", ow, "owners");
			fig("scale_rmap_bytes", by, "bytes");
			if (ow)
				fig("scale_rmap_bytes_per_owner", (double)by / ow, "bytes");
		}
		if (f)
			fclose(f);
		munmap((void *)p, n * PG);
		if (sum == 0xdeadbeef)
			puts("");
	}
	close(s);
	close(d);
	return 0;
}

/* par WORKLOAD DIR MS THREADS FILE_MIB [ROUNDS]: the multi-thread rows. WORKLOAD is
 * stat, pread, fault or create; THREADS a comma list of thread counts, run in
 * that order. Thread i works only on DIR/t<i> (its own directory and file),
 * prepared before anything is timed, so that a filesystem that lets
 * independent files proceed in parallel scales and one that serialises them
 * does not:
 *   stat    fstatat(dirfd, "f") of an empty file already looked up once
 *   pread   4 KiB pread at random 4 KiB-aligned offsets of a FILE_MIB file
 *           written fully (and fsynced) during setup
 *   fault   a load from every page of a fresh read-only MAP_SHARED mapping
 *           of such a file, in order; munmap and mmap again after the last
 *           page, so every access is a fault. The mapping starts 4 KiB past a
 *           2 MiB boundary, so no filesystem can map a PMD: these are 4 KiB
 *           read faults on written blocks (the mmap rows measure PMDs)
 *   create  open(O_CREAT|O_EXCL)+close of new empty files in a directory of
 *           its own, one per thread count (kept across its segments)
 * A segment: N threads and the timer wait on one barrier; then each thread
 * loops until the timer sets `stop`, and notes when its last operation
 * ended. The MS milliseconds of each thread count are split into ROUNDS
 * segments (default 4), interleaved: round r runs the counts in THREADS order
 * when r is even, in reverse when odd (1,2 2,1 1,2 2,1), so that a host that
 * slows down or speeds up during the run (other VMs on the same cores) weighs
 * on every count alike instead of on the one measured last. Throughput of N
 * = the operations of all its segments / the sum of their (last end - start),
 * ops/s.
 * Figures: par_<W>_<N>t (ops/s) for each N, par_<W>_<N>t_scaling (x, the
 * N-thread over the 1-thread throughput of this same run) for N > 1 when 1 is
 * in THREADS, and for fault par_fault_<N>t_faults_per_access (getrusage
 * minor faults of the threads / loads; 1 when every load faulted). */
#define PAR_MAX 64
#define PAR_RUNS 16 /* thread counts in one THREADS list */

struct par {
	pthread_barrier_t *bar;
	volatile int *stop;
	int work, idx, run; /* workload, thread index, index of its count in THREADS */
	int dirfd, fd;
	size_t size;
	unsigned long long ops, minflt; /* summed over the segments of this count */
	uint64_t rng; /* pread's offsets, continued from segment to segment */
	double end;
	int err;
};

enum { W_STAT, W_PREAD, W_FAULT, W_CREATE };

static int stopped(struct par *p)
{
	return __atomic_load_n(p->stop, __ATOMIC_RELAXED);
}

static void *par_thread(void *arg)
{
	struct par *p = arg;
	struct stat st;
	struct rusage ru0, ru1;
	char *buf = aligned_alloc(PG, PG), name[64];
	uint64_t r = p->rng;
	size_t pages = p->size / PG;
	volatile char *map = 0;
	unsigned sum = 0;
	int sub = -1;

	if (p->work == W_CREATE) { /* a directory per thread count, made by its first segment */
		snprintf(name, sizeof(name), "r%d", p->run);
		if ((mkdirat(p->dirfd, name, 0755) != 0 && errno != EEXIST) ||
		    (sub = openat(p->dirfd, name, O_RDONLY | O_DIRECTORY)) < 0)
			p->err = errno;
	}
	getrusage(RUSAGE_THREAD, &ru0);
	pthread_barrier_wait(p->bar);
	while (!p->err && !stopped(p)) {
		switch (p->work) {
		case W_STAT:
			if (fstatat(p->dirfd, "f", &st, 0) != 0)
				p->err = errno;
			break;
		case W_PREAD: {
			r ^= r << 13;
			r ^= r >> 7;
			r ^= r << 17;
			ssize_t got = pread(p->fd, buf, PG, (r % pages) * PG);
			if (got != (ssize_t)PG)
				p->err = got < 0 ? errno : EIO; /* a short read of a written file */
			break;
		}
		case W_FAULT: {
			/* a PROT_NONE reservation, then the file at 2 MiB + 4 KiB in it */
			const size_t pmd = 2 * MIB;
			char *res = mmap(0, p->size + 2 * pmd, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (res == MAP_FAILED) {
				p->err = errno;
				break;
			}
			char *a = (char *)((((uintptr_t)res + pmd - 1) & ~(uintptr_t)(pmd - 1)) + PG);
			map = mmap(a, p->size, PROT_READ, MAP_SHARED | MAP_FIXED, p->fd, 0);
			if (map == MAP_FAILED) {
				p->err = errno;
				munmap(res, p->size + 2 * pmd);
				break;
			}
			size_t i;
			for (i = 0; i < pages && !stopped(p); i++)
				sum += map[i * PG]; /* a read fault on a written block */
			p->ops += i;
			munmap(res, p->size + 2 * pmd);
			continue; /* ops counted above */
		}
		case W_CREATE: {
			snprintf(name, sizeof(name), "f%08llu", p->ops);
			int fd = openat(sub, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
			if (fd < 0)
				p->err = errno;
			else
				close(fd);
			break;
		}
		}
		if (!p->err)
			p->ops++;
	}
	p->end = now();
	p->rng = r;
	getrusage(RUSAGE_THREAD, &ru1);
	p->minflt += ru1.ru_minflt - ru0.ru_minflt;
	if (sub >= 0)
		close(sub);
	free(buf);
	if (sum == 0xdeadbeef)
		puts("");
	return 0;
}

/* one segment of n threads ps[0..n), ms milliseconds: its seconds from the
 * barrier to the last thread's end; 0 with ps[i].err set on a failure */
static double par_segment(struct par *ps, int n, double ms)
{
	pthread_barrier_t bar;
	volatile int stop = 0;
	pthread_t t[PAR_MAX];
	pthread_barrier_init(&bar, 0, n + 1);
	for (int i = 0; i < n; i++) {
		ps[i].bar = &bar;
		ps[i].stop = &stop;
		int e = pthread_create(&t[i], 0, par_thread, &ps[i]);
		if (e) {
			fprintf(stderr, "fsbench par: pthread_create: %s\n", strerror(e));
			exit(1);
		}
	}
	pthread_barrier_wait(&bar);
	double t0 = now(), end = t0;
	struct timespec d = { (time_t)(ms / 1e3), (long)((ms - (time_t)(ms / 1e3) * 1e3) * 1e6) };
	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], 0);
		if (ps[i].end > end)
			end = ps[i].end;
	}
	pthread_barrier_destroy(&bar);
	return end - t0;
}

static int c_par(char **a, int argc)
{
	const char *works[] = { "stat", "pread", "fault", "create" };
	int work = -1, nt = 0, ts[PAR_MAX], maxt = 0;
	for (int i = 0; i < 4; i++)
		if (!strcmp(a[0], works[i]))
			work = i;
	if (work < 0) {
		fprintf(stderr, "fsbench par: workload stat, pread, fault or create, not %s\n", a[0]);
		return 2;
	}
	const char *dir = a[1];
	double ms = strtod(a[2], 0);
	size_t size = strtoul(a[4], 0, 0) * MIB;
	int rounds = argc > 5 ? atoi(a[5]) : 4;
	if (rounds < 1)
		rounds = 1;
	for (char *s = a[3], *e; *s && nt < PAR_RUNS; s = *e ? e + 1 : e) {
		ts[nt] = strtol(s, &e, 10);
		if (ts[nt] < 1 || ts[nt] > PAR_MAX || (*e && *e != ',')) {
			fprintf(stderr, "fsbench par: thread counts 1..%d, comma separated: %s\n", PAR_MAX, a[3]);
			return 2;
		}
		if (ts[nt] > maxt)
			maxt = ts[nt];
		nt++;
	}
	char m[96], p[700];
	snprintf(m, sizeof(m), "par_%s_%dt", works[work], ts[0]);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (maxt > cpus)
		fprintf(stderr, "fsbench par: %d threads on %ld CPUs: the threads share CPUs\n", maxt, cpus);

	/* setup, untimed: thread i's directory DIR/t<i> and file DIR/t<i>/f */
	CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST, m);
	int dirfd[PAR_MAX], fd[PAR_MAX];
	for (int i = 0; i < maxt; i++) {
		snprintf(p, sizeof(p), "%s/t%d", dir, i);
		CHECK(mkdir(p, 0755) == 0 || errno == EEXIST, m);
		dirfd[i] = open(p, O_RDONLY | O_DIRECTORY);
		CHECK(dirfd[i] >= 0, m);
		fd[i] = -1;
		snprintf(p, sizeof(p), "%s/t%d/f", dir, i);
		if (work == W_PREAD || work == W_FAULT) {
			fill(p, size, m);
			fd[i] = open(p, O_RDONLY);
			CHECK(fd[i] >= 0, m);
		} else if (work == W_STAT) {
			int f = open(p, O_WRONLY | O_CREAT, 0644);
			CHECK(f >= 0, m);
			close(f);
			struct stat st;
			CHECK(fstatat(dirfd[i], "f", &st, 0) == 0, m); /* dentry and inode cached */
		}
	}
	sync();

	/* the rounds; ps[k][i] is thread i of count ts[k], kept across rounds */
	static struct par ps[PAR_RUNS][PAR_MAX];
	double secs[PAR_RUNS] = { 0 };
	int failed[PAR_RUNS] = { 0 };
	for (int k = 0; k < nt; k++)
		for (int i = 0; i < ts[k]; i++)
			ps[k][i] = (struct par){ .work = work, .idx = i, .run = k, .dirfd = dirfd[i], .fd = fd[i],
						 .size = size, .rng = 0x9e3779b97f4a7c15ULL * (i + 1) };
	for (int r = 0; r < rounds; r++)
		for (int j = 0; j < nt; j++) {
			int k = r % 2 ? nt - 1 - j : j;
			if (failed[k])
				continue;
			secs[k] += par_segment(ps[k], ts[k], ms / rounds);
			for (int i = 0; i < ts[k]; i++)
				if (ps[k][i].err && !failed[k])
					failed[k] = ps[k][i].err;
		}

	double rate1 = 0;
	for (int k = 0; k < nt; k++) {
		int n = ts[k];
		unsigned long long ops = 0, minflt = 0;
		snprintf(m, sizeof(m), "par_%s_%dt", works[work], n);
		if (failed[k]) {
			err(m, failed[k]);
			continue;
		}
		for (int i = 0; i < n; i++) {
			ops += ps[k][i].ops;
			minflt += ps[k][i].minflt;
		}
		double rate = ops / secs[k];
		fig(m, rate, "ops/s");
		if (n == 1)
			rate1 = rate;
		else if (rate1 > 0) {
			char sm[128];
			snprintf(sm, sizeof(sm), "%s_scaling", m);
			fig(sm, rate / rate1, "x");
		}
		if (work == W_FAULT && ops) {
			char fm[128];
			snprintf(fm, sizeof(fm), "%s_faults_per_access", m);
			fig(fm, (double)minflt / ops, "faults");
		}
	}
	for (int i = 0; i < maxt; i++) {
		close(dirfd[i]);
		if (fd[i] >= 0)
			close(fd[i]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: fsbench reflink|cow|bw|append|mmapbw|devbw|meta|remount|scale|par ARGS\n");
		return 2;
	}
	const char *c = argv[1];
	char **a = argv + 2;
	int n = argc - 2;
	struct { const char *name; int nargs; } cmds[] = {
		{ "reflink", 3 }, { "cow", 2 }, { "bw", 7 }, { "append", 3 }, { "mmapbw", 3 },
		{ "devbw", 2 }, { "meta", 2 }, { "remount", 4 }, { "scale", 3 }, { "par", 5 },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(c, cmds[i].name))
			continue;
		if (n < cmds[i].nargs) {
			fprintf(stderr, "fsbench %s: needs %d arguments\n", c, cmds[i].nargs);
			return 2;
		}
		switch (i) {
		case 0: return c_reflink(a);
		case 1: return c_cow(a, n);
		case 2: return c_bw(a);
		case 3: return c_append(a, n);
		case 4: return c_mmapbw(a, n);
		case 5: return c_devbw(a);
		case 6: return c_meta(a, n);
		case 7: return c_remount(a);
		case 8: return c_scale(a, n);
		case 9: return c_par(a, n);
		}
	}
	fprintf(stderr, "fsbench: unknown subcommand %s\n", c);
	return 2;
}
