/*
 * A process that maps one page of a file and reports the SIGBUS it gets.
 *   victim FILE PAGE MODE [MAPLEN]
 * maps the first MAPLEN bytes of FILE (default: up to and including PAGE;
 * 2 MiB or more at an aligned offset gets a PMD mapping where the extent
 * allows), then depending on MODE:
 *   victim FILE PAGE early     map, read the page, print "ready ADDR", wait
 *                             (asks for early kill: PR_MCE_KILL_EARLY)
 *   victim FILE PAGE late      likewise without early kill; touches the page
 *                             again once /tmp/ferrofs-go exists
 *   victim FILE PAGE inject    map, read the page, madvise(MADV_HWPOISON)
 *   victim FILE PAGE failslab  as late, but the first read (the fault that
 *                             maps the page) runs with this task's
 *                             /proc/self/make-it-fail set: the caller has
 *                             armed failslab with its task filter.
 *                             The other pages of the mapping are read
 *                             first, so that fault needs no page table
 *                             (nor its split ptlock) and no DAX xarray
 *                             node: its first slab allocation is then the
 *                             filesystem's
 *   victim FILE PAGE all       as late, but first read-faults every page of
 *                             the mapping and compares each with the
 *                             file's first 4 KiB (read with pread); prints
 *                             "ready ADDR pages=N seconds=S", or "bad page
 *                             I" and exits 1 on a difference
 * On SIGBUS: prints "sigbus code=N addr_ok=0|1" and exits 42.
 * Exits 1 on setup errors, 3 if no signal came within 30 s ($VICTIM_WAIT s).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static char *page_addr;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	char buf[80];
	int n = snprintf(buf, sizeof(buf), "sigbus code=%d addr_ok=%d\n", si->si_code,
			 (char *)si->si_addr == page_addr);
	(void)sig; (void)uc;
	write(1, buf, n);
	_exit(42);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	long page, maplen;
	int fd;
	char *map;
	volatile char c;

	if (argc != 4 && argc != 5)
		return 1;
	page = atol(argv[2]);
	maplen = argc == 5 ? atol(argv[4]) : (page + 1) * 4096;
	fd = open(argv[1], O_RDONLY);
	if (fd < 0) { perror("open"); return 1; }
	map = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) { perror("mmap"); return 1; }
	page_addr = map + page * 4096;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
	if (!strcmp(argv[3], "early") && prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0)) {
		perror("prctl");
		return 1;
	}
	if (!strcmp(argv[3], "failslab")) {
		int ff = open("/proc/self/make-it-fail", O_WRONLY);

		for (long i = 0; i < maplen / 4096; i++)
			if (i != page)
				c = map[i * 4096];

		if (ff < 0 || write(ff, "1", 1) != 1) { perror("make-it-fail"); return 1; }
		c = page_addr[0];
		if (write(ff, "0", 1) != 1) { perror("make-it-fail"); return 1; }
		close(ff);
	}
	if (!strcmp(argv[3], "all")) {
		static char first[4096];
		struct timespec t0, t1;

		if (pread(fd, first, sizeof(first), 0) != sizeof(first)) { perror("pread"); return 1; }
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (long i = 0; i < maplen / 4096; i++)
			if (memcmp(map + i * 4096, first, 4096)) {
				printf("bad page %ld\n", i);
				return 1;
			}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("ready %p pages=%ld seconds=%.1f\n", page_addr, maplen / 4096,
		       t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9);
		fflush(stdout);
	}
	c = page_addr[0];
	(void)c;
	if (strcmp(argv[3], "all"))
		printf("ready %p\n", page_addr);
	fflush(stdout);
	if (!strcmp(argv[3], "inject")) {
		if (madvise(page_addr, 4096, MADV_HWPOISON)) { perror("madvise"); return 1; }
		c = page_addr[0]; /* if the kill was not synchronous, this faults */
	}
	long waits = getenv("VICTIM_WAIT") ? atol(getenv("VICTIM_WAIT")) * 10 : 300;

	for (long i = 0; i < waits; i++) {
		if ((!strcmp(argv[3], "late") || !strcmp(argv[3], "failslab") || !strcmp(argv[3], "all")) && access("/tmp/ferrofs-go", F_OK) == 0)
			c = page_addr[0];
		usleep(100000);
	}
	return 3;
}
