/*
 * difftest: differential tester for CacheMax. Replays one seeded pseudo-random sequence of
 * file-system operations on DIR_A (the CacheMax FUSE mount) and DIR_B (a plain directory) and
 * compares every result (return value, errno, data, comparable metadata); stops at the first
 * difference. Exit 0 all equal, 1 mismatch (op, both results, recent trace on stderr), 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/*
 * What is compared, and what deliberately is not (it differs between correct file systems or is
 * not deterministic):
 *  - Never st_ino, st_dev, st_blocks, st_blksize, atime or ctime; mtime (and atime) only right
 *    after a utimensat/futimens that set them explicitly, then to the nanosecond; whether ctime
 *    moved (chown(-1, -1)) and whether mtime moved from an explicit value (an mmap write). Hard-link
 *    identity is compared as "these names / fds are the same inode" on each side instead.
 *  - Not st_size of directories (ext4 grows them in blocks, tmpfs counts entries) and no lseek on
 *    directory fds (offsets are fs cookies).
 *  - Below EOF, not the exact offsets SEEK_DATA/SEEK_HOLE return: hole granularity is fs-specific
 *    and any file system may report a hole as data. Each side must be consistent with its own data
 *    instead (a reported hole reads as zeros, results lie in [off, size], SEEK_DATA may only fail
 *    with ENXIO if the rest is a hole). At or past EOF both must fail with ENXIO.
 *  - Not xattrs in security.* and system.* (LSM labels / ACLs legitimately differ per fs).
 *  - Not the fd number open returns, only success/failure and the opened file's state.
 * Decisions (offsets, sizes, names) only ever look at side B, so a seed replays the same ops.
 *
 * Hidden self-check: --inject-fault N makes side A's Nth non-empty write(2)/pwrite(2) land with
 * one wrong byte, so a test can prove that difftest is able to fail.
 */

#define NSLOTS 8                    /* open fds kept per side; slot i on A pairs with slot i on B */
#define MAXFILE (1024LL * 1024)     /* writes/truncates/fallocates never extend a file past this */
#define MAXIO (200 * 1024)          /* largest single write */
#define MAXREAD (256 * 1024)        /* largest single read / copy */
#define TRACE_N 20                  /* ops kept for the failure report */
#define DESC_MAX 240
#define MAXFILES 64
#define CHUNK (64 * 1024)

/* ------------------------------------------------------------------------------------------ */
/* small utilities                                                                            */

__attribute__((noreturn)) static void die(const char *what)
{
	fprintf(stderr, "difftest: %s: %s\n", what, strerror(errno));
	exit(2);
}

static const char *errname(int e)
{
	static char b[4][16];
	static int i;
	const char *n = strerrorname_np(e);
	if (n)
		return n;
	i = (i + 1) % 4;
	snprintf(b[i], sizeof b[i], "E%d", e);
	return b[i];
}

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t nc = b->cap ? b->cap : 256;
	while (nc < b->len + extra + 1)
		nc *= 2;
	char *np = realloc(b->p, nc);
	if (!np)
		die("out of memory");
	b->p = np;
	b->cap = nc;
}

static uint64_t fnv(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ULL;
	return h;
}

/* splitmix64: tiny, fast, and the whole run is reproducible from --seed */
static uint64_t rng_state;
static uint64_t rnd64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
static long long rnd(long long n) { return n > 0 ? (long long)(rnd64() % (uint64_t)n) : 0; }
static int chance(int pct) { return rnd(100) < pct; }

/* ------------------------------------------------------------------------------------------ */
/* per-op results                                                                             */

struct res {
	long long ret;    /* syscall-like result; -1 on error */
	int err;          /* errno when ret == -1 */
	int bad;          /* self-consistency check on this side failed (always a mismatch) */
	struct buf text;  /* canonical description of comparable state (stat, listing, ...) */
	struct buf data;  /* bytes read */
};

struct side {
	int idx;
	const char *label;
	const char *root;
	int dirfd;
	unsigned long nwrites;
};

struct slot {
	int used;
	int fd[2];
	int flags;
	int isdir;
	char path[64];
};

struct op {
	int slot, slot2;
	const char *p1, *p2;
	int flags, mode, whence;
	long long off, off2, len;
	int use_off_in, use_off_out;
	struct timespec ts[2];
	int times_null, explicit_a, explicit_m;
	long long uid, gid;
	const char *xname;
	int xvariant; /* 0 path (follows symlinks), 1 l* variant, 2 f* variant on a slot */
	char desc[DESC_MAX];
};

typedef void (*side_fn)(struct side *, struct op *, struct res *);

static struct side S[2];
/* --behind BACK: DIR_A's original reached behind the mount. A change made there (instead of
 * through side A) must show through DIR_A within a second; side_a is the side such a step uses
 * as A. */
static struct side Sback;
static struct side *side_a = &S[0];
static const char *back_root;
static unsigned behind_pct = 5;
static unsigned long nbehind, behind_worst_ms;
static const char *last_p1, *last_p2;  /* the paths of the last op run */
static struct slot slots[NSLOTS];
static struct res R[2];
static unsigned char *wbuf;           /* data for the current write, same for both sides */
static unsigned char *tmpbuf[2];      /* scratch for checks */

static uint64_t seed = 1;
static unsigned long nops = 10000, opno, inject_n, tree_every = 5000, ntree;
static unsigned op_timeout = 60;
static int verbose, nfiles = 12;

static char trace[TRACE_N][DESC_MAX + 128];
static unsigned long trace_no[TRACE_N];
static const char *volatile cur_desc = "";
static long long mm_base = -1; /* file offset of the first data byte, for the mismatch report */

__attribute__((format(printf, 2, 3))) static void res_printf(struct res *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	buf_reserve(&r->text, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(r->text.p + r->text.len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	r->text.len += (size_t)n;
}

/* record a syscall result; call immediately after the syscall so errno is still its errno */
static void res_sys(struct res *r, long long ret)
{
	if (ret < 0) {
		r->ret = -1;
		r->err = errno;
	} else {
		r->ret = ret;
	}
}

static unsigned char *res_data(struct res *r, size_t n)
{
	r->data.len = 0;
	buf_reserve(&r->data, n);
	return (unsigned char *)r->data.p;
}

static void res_reset(struct res *r)
{
	r->ret = 0;
	r->err = 0;
	r->bad = 0;
	r->text.len = 0;
	buf_reserve(&r->text, 0);
	r->text.p[0] = 0;
	r->data.len = 0;
}

static int res_equal(const struct res *a, const struct res *b)
{
	if (a->bad || b->bad)
		return 0;
	if (a->ret != b->ret || a->err != b->err)
		return 0;
	if (a->text.len != b->text.len || (a->text.len && memcmp(a->text.p, b->text.p, a->text.len)))
		return 0;
	if (a->data.len != b->data.len || (a->data.len && memcmp(a->data.p, b->data.p, a->data.len)))
		return 0;
	return 1;
}

static void res_summary(const struct res *r, char *out, size_t n)
{
	if (r->ret < 0)
		snprintf(out, n, "%s", errname(r->err));
	else
		snprintf(out, n, "%lld", r->ret);
}

/* ------------------------------------------------------------------------------------------ */
/* reporting                                                                                  */

static void print_res(const char *label, const struct res *r)
{
	fprintf(stderr, "  %s: ret=%lld", label, r->ret);
	if (r->ret < 0)
		fprintf(stderr, " errno=%s (%s)", errname(r->err), strerror(r->err));
	if (r->text.len)
		fprintf(stderr, " |%s", r->text.p);
	if (r->data.len)
		fprintf(stderr, " | data %zu bytes fnv=%016" PRIx64, r->data.len, fnv(r->data.p, r->data.len));
	if (r->bad)
		fprintf(stderr, " | SELF-CHECK FAILED on this side");
	fputc('\n', stderr);
}

static void hexline(const char *label, const unsigned char *p, size_t len, size_t at)
{
	fprintf(stderr, "    %s @%zu:", label, at);
	for (size_t i = at; i < len && i < at + 16; i++)
		fprintf(stderr, " %02x", p[i]);
	fputc('\n', stderr);
}

static void print_trace(void)
{
	fprintf(stderr, "difftest: last ops (oldest first):\n");
	for (unsigned long i = 0; i < TRACE_N; i++) {
		unsigned long k = (opno + 1 + i) % TRACE_N;
		if (trace_no[k])
			fprintf(stderr, "  %s\n", trace[k]);
	}
}

__attribute__((noreturn)) static void mismatch(const char *what)
{
	fprintf(stderr, "difftest: MISMATCH at op #%lu (seed=%" PRIu64 "): %s\n", opno, seed, what);
	print_res("A", &R[0]);
	print_res("B", &R[1]);
	const struct res *a = &R[0], *b = &R[1];
	if (a->data.len != b->data.len || (a->data.len && memcmp(a->data.p, b->data.p, a->data.len))) {
		size_t n = a->data.len < b->data.len ? a->data.len : b->data.len, i = 0;
		while (i < n && a->data.p[i] == b->data.p[i])
			i++;
		fprintf(stderr, "  data: A %zu bytes, B %zu bytes, first difference at byte %zu", a->data.len,
			b->data.len, i);
		if (mm_base >= 0)
			fprintf(stderr, " (file offset %lld)", mm_base + (long long)i);
		fputc('\n', stderr);
		size_t at = i >= 4 ? i - 4 : 0;
		hexline("A", (const unsigned char *)a->data.p, a->data.len, at);
		hexline("B", (const unsigned char *)b->data.p, b->data.len, at);
	}
	fprintf(stderr, "  A=%s B=%s\n", S[0].root, S[1].root);
	print_trace();
	fprintf(stderr, "difftest: reproduce with --seed %" PRIu64 " --ops %lu --files %d", seed, opno, nfiles);
	if (tree_every != 5000)
		fprintf(stderr, " --tree-every %lu", tree_every);
	if (inject_n)
		fprintf(stderr, " --inject-fault %lu", inject_n);
	fputc('\n', stderr);
	exit(1);
}

static void on_alarm(int sig)
{
	static const char m1[] = "\ndifftest: TIMEOUT: op hung: ";
	const char *d = cur_desc;
	if (write(2, m1, sizeof m1 - 1) < 0 || write(2, d, strlen(d)) < 0 || write(2, "\n", 1) < 0) {
	}
	_exit(1);
}

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;
static void on_sigbus(int sig)
{
	if (bus_armed)
		siglongjmp(bus_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* memcpy that survives SIGBUS (mapping beyond what the file system can back); 0 ok, -1 SIGBUS */
__attribute__((noinline)) static int safe_copy(void *dst, const void *src, size_t n)
{
	if (sigsetjmp(bus_jmp, 1)) {
		bus_armed = 0;
		return -1;
	}
	bus_armed = 1;
	memcpy(dst, src, n);
	bus_armed = 0;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* namespace                                                                                  */

static const char *prefixes[] = {"", "d0/", "d1/", "d0/d2/"};
static const char *dir_paths[] = {"d0", "d1", "d0/d2", "d1/d2"};
static const char *odd_paths[] = {".", "f0/x", "nx/f0", "d1/d2/f0", "d0/d2/f0/x", "d1/f0/f1", "d0/nx"};
static char file_paths[MAXFILES][16];

#define NELEM(a) ((long long)(sizeof(a) / sizeof((a)[0])))

static const char *pick_file(void)
{
	return file_paths[rnd(nfiles)];
}

static const char *pick_path(void)
{
	long long r = rnd(100);
	if (r < 72)
		return pick_file();
	if (r < 92)
		return dir_paths[rnd(NELEM(dir_paths))];
	return odd_paths[rnd(NELEM(odd_paths))];
}

static const char *pick_dirish(void)
{
	return chance(65) ? dir_paths[rnd(NELEM(dir_paths))] : pick_path();
}

/* Bias towards names in a given state on side B (the reference) so that fewer ops are plain
 * ENOENT/EEXIST/EINVAL; side A is never consulted for decisions. */
enum { W_ABSENT, W_EXISTS, W_SYMLINK, W_XATTR };

static int path_is(const char *p, int what)
{
	struct stat st;
	char pb[PATH_MAX];
	int rc = fstatat(S[1].dirfd, p, &st, AT_SYMLINK_NOFOLLOW);
	switch (what) {
	case W_ABSENT: return rc < 0;
	case W_EXISTS: return rc == 0;
	case W_SYMLINK: return rc == 0 && S_ISLNK(st.st_mode);
	default:
		snprintf(pb, sizeof pb, "/proc/self/fd/%d/%s", S[1].dirfd, p);
		return rc == 0 && llistxattr(pb, NULL, 0) > 0;
	}
}

static const char *pick_biased(int what, int tries)
{
	const char *p = chance(85) ? pick_file() : pick_path();
	for (int i = 1; i < tries && !path_is(p, what); i++)
		p = chance(80) ? pick_file() : pick_path();
	return p;
}

/* a directory path whose state on B is `want`: 0 missing, 1 present but not a directory */
static const char *pick_dir_state(int want)
{
	long long n = NELEM(dir_paths), start = rnd(n);
	struct stat st;
	for (long long i = 0; i < n; i++) {
		const char *p = dir_paths[(start + i) % n];
		int rc = fstatat(S[1].dirfd, p, &st, AT_SYMLINK_NOFOLLOW);
		if (want == 0 ? (rc < 0 && errno == ENOENT) : (rc == 0 && !S_ISDIR(st.st_mode)))
			return p;
	}
	return NULL;
}

static const char *pick_target(void)
{
	return chance(65) ? pick_biased(W_EXISTS, 3) : pick_path();
}

static int pick_mode(void)
{
	static const int modes[] = {0644, 0600, 0755, 0700, 0444, 0640, 0666, 0777, 0000, 04755, 02755, 01777};
	return chance(80) ? modes[rnd(NELEM(modes))] : (int)rnd(07777 + 1);
}

static void flags_str(int f, char *out, size_t n)
{
	static const struct { int bit; const char *name; } names[] = {
		{O_CREAT, "CREAT"}, {O_EXCL, "EXCL"}, {O_TRUNC, "TRUNC"}, {O_APPEND, "APPEND"},
		{O_NOFOLLOW, "NOFOLLOW"}, {O_DIRECTORY, "DIRECTORY"},
	};
	int acc = f & O_ACCMODE;
	size_t l = (size_t)snprintf(out, n, "%s", acc == O_RDONLY ? "RDONLY" : acc == O_WRONLY ? "WRONLY" : "RDWR");
	for (unsigned i = 0; i < sizeof names / sizeof names[0] && l < n; i++)
		if (f & names[i].bit)
			l += (size_t)snprintf(out + l, n - l, "|%s", names[i].name);
}

static char type_char(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return 'f';
	case S_IFDIR: return 'd';
	case S_IFLNK: return 'l';
	case S_IFCHR: return 'c';
	case S_IFBLK: return 'b';
	case S_IFIFO: return 'p';
	case S_IFSOCK: return 's';
	default: return '?';
	}
}

static void fmt_stat(struct res *r, const char *tag, const struct stat *st)
{
	res_printf(r, " %s{%c mode=%04o nlink=%lu uid=%u gid=%u", tag, type_char(st->st_mode),
		   (unsigned)(st->st_mode & 07777), (unsigned long)st->st_nlink, (unsigned)st->st_uid,
		   (unsigned)st->st_gid);
	if (!S_ISDIR(st->st_mode))
		res_printf(r, " size=%lld", (long long)st->st_size);
	res_printf(r, "}");
}

static void stat_path(struct side *s, struct res *r, const char *tag, const char *p, int flags)
{
	struct stat st;
	if (fstatat(s->dirfd, p, &st, flags) < 0)
		res_printf(r, " %s{%s}", tag, errname(errno));
	else
		fmt_stat(r, tag, &st);
}

static void stat_fd(struct res *r, const char *tag, int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		res_printf(r, " %s{%s}", tag, errname(errno));
	else
		fmt_stat(r, tag, &st);
}

struct dent {
	char *name;
	char type;
};

static int dent_cmp(const void *a, const void *b)
{
	const struct dent *x = a, *y = b;
	return strcmp(x->name, y->name);
}

static void dents_free(struct dent *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(d[i].name);
	free(d);
}

/* sorted listing of dirfd/p without . and ..; DT_UNKNOWN resolved with lstat. 0 or -errno */
static int list_dir(int base, const char *p, struct dent **out, size_t *nout)
{
	*out = NULL;
	*nout = 0;
	int fd = openat(base, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct dent *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			struct dent *nv = realloc(v, cap * sizeof *v);
			if (!nv)
				die("out of memory");
			v = nv;
		}
		v[n].name = strdup(de->d_name);
		if (!v[n].name)
			die("out of memory");
		char t = '?';
		switch (de->d_type) {
		case DT_REG: t = 'f'; break;
		case DT_DIR: t = 'd'; break;
		case DT_LNK: t = 'l'; break;
		case DT_CHR: t = 'c'; break;
		case DT_BLK: t = 'b'; break;
		case DT_FIFO: t = 'p'; break;
		case DT_SOCK: t = 's'; break;
		default: {
			struct stat st;
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
				t = type_char(st.st_mode);
		}
		}
		v[n].type = t;
		n++;
		errno = 0;
	}
	int e = errno;
	closedir(d);
	if (e) {
		dents_free(v, n);
		return -e;
	}
	if (n)
		qsort(v, n, sizeof *v, dent_cmp);
	*out = v;
	*nout = n;
	return 0;
}

static void listing_text(struct res *r, int rc, const struct dent *d, size_t n)
{
	if (rc < 0) {
		r->ret = -1;
		r->err = -rc;
		return;
	}
	r->ret = (long long)n;
	for (size_t i = 0; i < n; i++)
		res_printf(r, " %s:%c", d[i].name, d[i].type);
}

/* a readable fd for slot fd `fd` on this side: fd itself or a fresh O_RDONLY reopen of it */
static int readable_fd(int sl, int fd, int *tmp)
{
	*tmp = -1;
	if ((slots[sl].flags & O_ACCMODE) != O_WRONLY)
		return fd;
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	*tmp = open(p, O_RDONLY | O_CLOEXEC);
	return *tmp;
}

/* 1: [from,to) of fd reads as zeros (EOF counts as zeros); 0: a non-zero byte; -errno */
static int zero_range(int fd, long long from, long long to, unsigned char *scratch)
{
	while (from < to) {
		size_t want = (size_t)(to - from < CHUNK ? to - from : CHUNK);
		ssize_t n = pread(fd, scratch, want, from);
		if (n < 0)
			return -errno;
		if (n == 0)
			return 1;
		for (ssize_t i = 0; i < n; i++)
			if (scratch[i])
				return 0;
		from += n;
	}
	return 1;
}

static int xname_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* canonical text of an xattr name list: sorted, filtered to comparable namespaces */
static void xattr_names_text(struct res *r, char *list, ssize_t n, char **names, int *count)
{
	int k = 0;
	for (ssize_t i = 0; i < n && k < 256;) {
		char *nm = list + i;
		size_t l = strnlen(nm, (size_t)(n - i));
		if (l && strncmp(nm, "security.", 9) && strncmp(nm, "system.", 7))
			names[k++] = nm;
		i += (ssize_t)l + 1;
	}
	qsort(names, (size_t)k, sizeof *names, xname_cmp);
	for (int i = 0; i < k; i++)
		res_printf(r, " %s", names[i]);
	*count = k;
}

/* ------------------------------------------------------------------------------------------ */
/* side functions: perform one op on one side and describe the outcome in *r                  */

#define SFD(s, sl) (slots[(sl)].fd[(s)->idx])

static ssize_t do_write(struct side *s, int fd, size_t len, long long off, int positional)
{
	size_t flip = len / 2;
	int inject = 0;
	if (len > 0 && s->idx == 0 && inject_n && ++s->nwrites == inject_n) {
		wbuf[flip] ^= 0x5a;
		inject = 1;
		if (verbose)
			fprintf(stderr, "difftest: injecting a fault into op #%lu on side A (byte %zu of %zu)\n", opno, flip, len);
	}
	ssize_t n = positional ? write(fd, wbuf, len) : pwrite(fd, wbuf, len, off);
	int e = errno;
	if (inject) {
		wbuf[flip] ^= 0x5a;
		if (n <= (ssize_t)flip)
			s->nwrites--; /* the wrong byte did not land: corrupt the next write instead */
	}
	errno = e;
	return n;
}

/* truncate(2) and the xattr calls have no *at forms in glibc: go through the dirfd's magic
 * link instead of chdir */
static const char *via(struct side *s, const char *p, char *buf, size_t n)
{
	snprintf(buf, n, "/proc/self/fd/%d/%s", s->dirfd, p);
	return buf;
}

static void s_open(struct side *s, struct op *o, struct res *r)
{
	int fd = openat(s->dirfd, o->p1, o->flags | O_CLOEXEC, o->mode);
	if (fd < 0) {
		res_sys(r, -1);
		return;
	}
	SFD(s, o->slot) = fd;
	stat_fd(r, "", fd);
	res_printf(r, " pos=%lld", (long long)lseek(fd, 0, SEEK_CUR));
}

static void s_close(struct side *s, struct op *o, struct res *r)
{
	res_sys(r, close(SFD(s, o->slot)));
	SFD(s, o->slot) = -1;
}

static void s_pwrite(struct side *s, struct op *o, struct res *r)
{
	int fd = SFD(s, o->slot);
	res_sys(r, do_write(s, fd, (size_t)o->len, o->off, 0));
	stat_fd(r, "", fd);
}

static void s_write(struct side *s, struct op *o, struct res *r)
{
	int fd = SFD(s, o->slot);
	res_sys(r, do_write(s, fd, (size_t)o->len, 0, 1));
	res_printf(r, " pos=%lld", (long long)lseek(fd, 0, SEEK_CUR));
	stat_fd(r, "", fd);
}

static void s_pread(struct side *s, struct op *o, struct res *r)
{
	unsigned char *d = res_data(r, (size_t)o->len);
	ssize_t n = pread(SFD(s, o->slot), d, (size_t)o->len, o->off);
	res_sys(r, n);
	r->data.len = n > 0 ? (size_t)n : 0;
}

static void s_read(struct side *s, struct op *o, struct res *r)
{
	int fd = SFD(s, o->slot);
	unsigned char *d = res_data(r, (size_t)o->len);
	ssize_t n = read(fd, d, (size_t)o->len);
	res_sys(r, n);
	r->data.len = n > 0 ? (size_t)n : 0;
	res_printf(r, " pos=%lld", (long long)lseek(fd, 0, SEEK_CUR));
}

/* read back a just-written range through a readable fd (a reopen if the slot is O_WRONLY) */
static void s_readback(struct side *s, struct op *o, struct res *r)
{
	int tmp, fd = readable_fd(o->slot, SFD(s, o->slot), &tmp);
	if (fd < 0) {
		res_sys(r, -1);
		return;
	}
	unsigned char *d = res_data(r, (size_t)o->len);
	ssize_t n = pread(fd, d, (size_t)o->len, o->off);
	res_sys(r, n);
	r->data.len = n > 0 ? (size_t)n : 0;
	if (tmp >= 0)
		close(tmp);
}

static void s_lseek(struct side *s, struct op *o, struct res *r)
{
	res_sys(r, lseek(SFD(s, o->slot), o->off, o->whence));
}

/* "" if [from,to) of fd reads as zeros, else why not */
static const char *zero_why(int fd, long long from, long long to, unsigned char *scratch, const char *what)
{
	int z = zero_range(fd, from, to, scratch);
	return z == 1 ? NULL : z == 0 ? what : "read error while checking";
}

/* SEEK_DATA / SEEK_HOLE: see "What is compared" for why below EOF only consistency is checked */
static void s_seekdh(struct side *s, struct op *o, struct res *r)
{
	int fd = SFD(s, o->slot), tmp = -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		res_sys(r, -1);
		return;
	}
	off_t cur = lseek(fd, 0, SEEK_CUR);
	off_t got = lseek(fd, o->off, o->whence);
	int e = errno;
	long long size = st.st_size;
	unsigned char *scratch = tmpbuf[s->idx];
	res_printf(r, " size=%lld cur=%lld", size, (long long)cur);
	if (o->off >= size) {
		/* at/after EOF both must agree exactly (ENXIO) */
		if (got < 0) {
			r->ret = -1;
			r->err = e;
		} else {
			r->ret = got;
		}
	} else {
		const char *why = NULL;
		int rfd = readable_fd(o->slot, fd, &tmp);
		if (rfd < 0) {
			why = "cannot reopen for reading";
		} else if (o->whence == SEEK_DATA) {
			if (got < 0 && e != ENXIO)
				why = "unexpected error";
			else if (got < 0) /* allowed only if the rest of the file is a hole */
				why = zero_why(rfd, o->off, size, scratch, "ENXIO but non-zero data follows");
			else if (got < o->off || got >= size)
				why = "data offset outside [off, size)";
			else
				why = zero_why(rfd, o->off, got, scratch, "skipped over non-zero bytes");
		} else {
			if (got < 0) {
				why = "SEEK_HOLE failed below EOF";
			} else if (got < o->off || got > size) {
				why = "hole offset outside [off, size]";
			} else if (got < size) {
				/* a hole inside the file: it must be non-empty and read as zeros up to the next data */
				off_t d = lseek(fd, got, SEEK_DATA);
				if (d < 0 && errno == ENXIO)
					d = (off_t)size;
				if (d <= got)
					why = "reported hole is followed immediately by data";
				else
					why = zero_why(rfd, got, d, scratch, "reported hole has non-zero bytes");
			}
		}
		if (tmp >= 0)
			close(tmp);
		if (why) {
			r->bad = 1;
			res_printf(r, " INCONSISTENT: %s (got %lld, %s)", why, (long long)got, got < 0 ? errname(e) : "ok");
		} else {
			res_printf(r, " consistent");
		}
	}
	if (cur >= 0)
		lseek(fd, cur, SEEK_SET); /* the result offsets may differ: put both positions back */
}

static void s_ftrunc(struct side *s, struct op *o, struct res *r)
{
	int fd = SFD(s, o->slot);
	res_sys(r, ftruncate(fd, o->off));
	stat_fd(r, "", fd);
}

static void s_trunc(struct side *s, struct op *o, struct res *r)
{
	char pb[PATH_MAX];
	res_sys(r, truncate(via(s, o->p1, pb, sizeof pb), o->off));
	stat_path(s, r, "", o->p1, 0);
}

static void s_rename(struct side *s, struct op *o, struct res *r)
{
	long rc;
	if (o->flags)
		rc = syscall(SYS_renameat2, s->dirfd, o->p1, s->dirfd, o->p2, (unsigned)o->flags);
	else
		rc = renameat(s->dirfd, o->p1, s->dirfd, o->p2);
	res_sys(r, rc);
	if (rc == 0) {
		stat_path(s, r, "src", o->p1, AT_SYMLINK_NOFOLLOW);
		stat_path(s, r, "dst", o->p2, AT_SYMLINK_NOFOLLOW);
	}
}

static void s_unlink(struct side *s, struct op *o, struct res *r)
{
	res_sys(r, unlinkat(s->dirfd, o->p1, 0));
}

static void same_inode_text(struct side *s, struct res *r, const char *p1, int f1, const char *p2, int f2)
{
	struct stat a, b;
	if (fstatat(s->dirfd, p1, &a, f1) < 0 || fstatat(s->dirfd, p2, &b, f2) < 0)
		res_printf(r, " same=%s", errname(errno));
	else
		res_printf(r, " same=%d", a.st_ino == b.st_ino && a.st_dev == b.st_dev);
}

static void s_link(struct side *s, struct op *o, struct res *r)
{
	int rc = linkat(s->dirfd, o->p1, s->dirfd, o->p2, o->flags);
	res_sys(r, rc);
	if (rc == 0) {
		int f1 = (o->flags & AT_SYMLINK_FOLLOW) ? 0 : AT_SYMLINK_NOFOLLOW;
		stat_path(s, r, "old", o->p1, f1);
		stat_path(s, r, "new", o->p2, AT_SYMLINK_NOFOLLOW);
		same_inode_text(s, r, o->p1, f1, o->p2, AT_SYMLINK_NOFOLLOW);
	}
}

static void s_symlink(struct side *s, struct op *o, struct res *r)
{
	int rc = symlinkat(o->p2, s->dirfd, o->p1);
	res_sys(r, rc);
	if (rc == 0)
		stat_path(s, r, "", o->p1, AT_SYMLINK_NOFOLLOW);
}

static void s_readlink(struct side *s, struct op *o, struct res *r)
{
	unsigned char *d = res_data(r, (size_t)o->len);
	ssize_t n = readlinkat(s->dirfd, o->p1, (char *)d, (size_t)o->len);
	res_sys(r, n);
	r->data.len = n > 0 ? (size_t)n : 0;
}

static void s_chmod(struct side *s, struct op *o, struct res *r)
{
	if (o->slot >= 0) {
		res_sys(r, fchmod(SFD(s, o->slot), (mode_t)o->mode));
		stat_fd(r, "", SFD(s, o->slot));
	} else {
		res_sys(r, fchmodat(s->dirfd, o->p1, (mode_t)o->mode, 0));
		stat_path(s, r, "", o->p1, 0);
	}
}

/* Longer than a tick of the coarse clock that file times come from (CONFIG_HZ 100: 10 ms). */
static void clock_tick(void)
{
	struct timespec ts = {0, 30 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

static int ts_later(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

static void s_chown(struct side *s, struct op *o, struct res *r)
{
	/* chown(-1, -1) changes nothing but ctime, which it must move (ctimes of the two sides are
	 * not comparable, whether each moved is) */
	if (o->uid == -1 && o->gid == -1) {
		struct stat before, after;
		int rc, fd = o->slot >= 0 ? SFD(s, o->slot) : -1;
		int got = fd >= 0 ? fstat(fd, &before) : fstatat(s->dirfd, o->p1, &before, o->flags);
		clock_tick();
		rc = fd >= 0 ? fchown(fd, (uid_t)-1, (gid_t)-1) : fchownat(s->dirfd, o->p1, (uid_t)-1, (gid_t)-1, o->flags);
		res_sys(r, rc);
		if (rc == 0 && got == 0 &&
		    (fd >= 0 ? fstat(fd, &after) : fstatat(s->dirfd, o->p1, &after, o->flags)) == 0)
			res_printf(r, " ctime-moved=%d", ts_later(after.st_ctim, before.st_ctim));
		if (fd >= 0)
			stat_fd(r, "", fd);
		else
			stat_path(s, r, "", o->p1, o->flags);
		return;
	}
	if (o->slot >= 0) {
		res_sys(r, fchown(SFD(s, o->slot), (uid_t)o->uid, (gid_t)o->gid));
		stat_fd(r, "", SFD(s, o->slot));
	} else {
		res_sys(r, fchownat(s->dirfd, o->p1, (uid_t)o->uid, (gid_t)o->gid, o->flags));
		stat_path(s, r, "", o->p1, o->flags);
	}
}

static void s_utimens(struct side *s, struct op *o, struct res *r)
{
	int rc;
	struct stat st;
	const struct timespec *ts = o->times_null ? NULL : o->ts;
	if (o->slot >= 0)
		rc = futimens(SFD(s, o->slot), ts);
	else
		rc = utimensat(s->dirfd, o->p1, ts, o->flags);
	res_sys(r, rc);
	if (rc < 0)
		return;
	/* only explicitly set times are comparable; UTIME_NOW just has to succeed */
	if (o->slot >= 0 ? fstat(SFD(s, o->slot), &st) : fstatat(s->dirfd, o->p1, &st, o->flags)) {
		res_printf(r, " stat=%s", errname(errno));
		return;
	}
	fmt_stat(r, "", &st);
	if (o->explicit_m)
		res_printf(r, " mtime=%lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	if (o->explicit_a)
		res_printf(r, " atime=%lld.%09ld", (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec);
}

static void s_setx(struct side *s, struct op *o, struct res *r)
{
	char pb[PATH_MAX];
	const char *p = via(s, o->p1 ? o->p1 : ".", pb, sizeof pb);
	if (o->xvariant == 2)
		res_sys(r, fsetxattr(SFD(s, o->slot), o->xname, wbuf, (size_t)o->len, o->flags));
	else if (o->xvariant == 1)
		res_sys(r, lsetxattr(p, o->xname, wbuf, (size_t)o->len, o->flags));
	else
		res_sys(r, setxattr(p, o->xname, wbuf, (size_t)o->len, o->flags));
}

static void s_getx(struct side *s, struct op *o, struct res *r)
{
	char pb[PATH_MAX];
	const char *p = via(s, o->p1 ? o->p1 : ".", pb, sizeof pb);
	unsigned char *d = res_data(r, (size_t)o->len);
	ssize_t n;
	if (o->xvariant == 2)
		n = fgetxattr(SFD(s, o->slot), o->xname, d, (size_t)o->len);
	else if (o->xvariant == 1)
		n = lgetxattr(p, o->xname, d, (size_t)o->len);
	else
		n = getxattr(p, o->xname, d, (size_t)o->len);
	res_sys(r, n);
	r->data.len = (n > 0 && o->len) ? (size_t)n : 0;
}

static void s_listx(struct side *s, struct op *o, struct res *r)
{
	static char list[2][65536];
	char *names[256];
	char pb[PATH_MAX];
	const char *p = via(s, o->p1 ? o->p1 : ".", pb, sizeof pb);
	ssize_t n;
	if (o->xvariant == 2)
		n = flistxattr(SFD(s, o->slot), list[s->idx], sizeof list[0]);
	else if (o->xvariant == 1)
		n = llistxattr(p, list[s->idx], sizeof list[0]);
	else
		n = listxattr(p, list[s->idx], sizeof list[0]);
	if (n < 0) {
		res_sys(r, -1);
		return;
	}
	int k;
	xattr_names_text(r, list[s->idx], n, names, &k);
	r->ret = k;
}

static void s_removex(struct side *s, struct op *o, struct res *r)
{
	char pb[PATH_MAX];
	const char *p = via(s, o->p1 ? o->p1 : ".", pb, sizeof pb);
	if (o->xvariant == 2)
		res_sys(r, fremovexattr(SFD(s, o->slot), o->xname));
	else if (o->xvariant == 1)
		res_sys(r, lremovexattr(p, o->xname));
	else
		res_sys(r, removexattr(p, o->xname));
}

static void s_mkdir(struct side *s, struct op *o, struct res *r)
{
	int rc = mkdirat(s->dirfd, o->p1, (mode_t)o->mode);
	res_sys(r, rc);
	if (rc == 0)
		stat_path(s, r, "", o->p1, AT_SYMLINK_NOFOLLOW);
}

static void s_rmdir(struct side *s, struct op *o, struct res *r)
{
	res_sys(r, unlinkat(s->dirfd, o->p1, AT_REMOVEDIR));
}

/* rm -rf in sorted order, stopping at the first error: 0 or -errno */
static int rmtree(int base, const char *p, int depth)
{
	struct stat st;
	if (fstatat(base, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(base, p, 0) < 0 ? -errno : 0;
	if (depth > 40)
		return -ELOOP;
	struct dent *d;
	size_t n;
	int rc = list_dir(base, p, &d, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		size_t l = strlen(p) + strlen(d[i].name) + 2;
		char *c = malloc(l);
		if (!c)
			die("out of memory");
		snprintf(c, l, "%s/%s", p, d[i].name);
		rc = rmtree(base, c, depth + 1);
		free(c);
	}
	dents_free(d, n);
	if (!rc && unlinkat(base, p, AT_REMOVEDIR) < 0)
		rc = -errno;
	return rc;
}

static void s_rmtree(struct side *s, struct op *o, struct res *r)
{
	int rc = rmtree(s->dirfd, o->p1, 0);
	r->ret = rc < 0 ? -1 : 0;
	r->err = rc < 0 ? -rc : 0;
}

static void s_stat(struct side *s, struct op *o, struct res *r)
{
	struct stat st;
	int rc = fstatat(s->dirfd, o->p1, &st, o->flags);
	res_sys(r, rc);
	if (rc == 0)
		fmt_stat(r, "", &st);
}

static void s_fstat(struct side *s, struct op *o, struct res *r)
{
	struct stat st, ps;
	int fd = SFD(s, o->slot);
	int rc = fstat(fd, &st);
	res_sys(r, rc);
	if (rc < 0)
		return;
	fmt_stat(r, "", &st);
	/* identity: is the fd still the inode at the name it was opened under / another slot's inode */
	if (fstatat(s->dirfd, slots[o->slot].path, &ps, 0) < 0)
		res_printf(r, " atpath=%s", errname(errno));
	else
		res_printf(r, " atpath=%d", ps.st_ino == st.st_ino && ps.st_dev == st.st_dev);
	res_printf(r, " same-slots=");
	for (int j = 0; j < NSLOTS; j++) {
		if (j == o->slot || !slots[j].used)
			continue;
		if (fstat(SFD(s, j), &ps) == 0 && ps.st_ino == st.st_ino && ps.st_dev == st.st_dev)
			res_printf(r, "%d,", j);
	}
}

static void s_readdir(struct side *s, struct op *o, struct res *r)
{
	struct dent *d;
	size_t n;
	int rc = list_dir(s->dirfd, o->p1, &d, &n);
	listing_text(r, rc, d, n);
	dents_free(d, n);
}

static void s_fsync(struct side *s, struct op *o, struct res *r)
{
	res_sys(r, o->flags ? fdatasync(SFD(s, o->slot)) : fsync(SFD(s, o->slot)));
}

static void s_falloc(struct side *s, struct op *o, struct res *r)
{
	int fd = SFD(s, o->slot);
	res_sys(r, fallocate(fd, o->mode, o->off, o->len));
	stat_fd(r, "", fd);
}

static void s_copy(struct side *s, struct op *o, struct res *r)
{
	int in = SFD(s, o->slot), out = SFD(s, o->slot2);
	off64_t oin = o->off, oout = o->off2;
	ssize_t n = copy_file_range(in, o->use_off_in ? &oin : NULL, out, o->use_off_out ? &oout : NULL,
				    (size_t)o->len, 0);
	res_sys(r, n);
	res_printf(r, " pos_in=%lld pos_out=%lld", (long long)lseek(in, 0, SEEK_CUR), (long long)lseek(out, 0, SEEK_CUR));
	stat_fd(r, "out", out);
}

static void s_mmap(struct side *s, struct op *o, struct res *r)
{
	int fd = SFD(s, o->slot), tmp;
	int wr = o->flags;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		res_sys(r, -1);
		return;
	}
	size_t size = (size_t)st.st_size;
	if (S_ISDIR(st.st_mode)) {
		res_printf(r, " dir"); /* directory sizes are not comparable: map a fixed length */
		size = 4096;
	} else {
		res_printf(r, " size=%zu", size);
	}
	void *m = mmap(NULL, size, wr ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		res_sys(r, -1);
		return;
	}
	size_t off = (size_t)o->off < size ? (size_t)o->off : size;
	size_t len = (size_t)o->len < size - off ? (size_t)o->len : size - off;
	unsigned char *d = res_data(r, len);
	/* a write through the mapping moves mtime from an explicit old value, as fstat sees it
	 * after msync (times are compared only after explicit utimens) */
	const struct timespec old_mtime[2] = {{0, UTIME_OMIT}, {1000000000, 0}};
	int timed = wr && len > 0 && futimens(fd, old_mtime) == 0;
	if (wr) {
		if (safe_copy((char *)m + off, wbuf, len) < 0) {
			r->bad = 1;
			res_printf(r, " SIGBUS writing the mapping");
		}
		res_printf(r, " msync=%s", msync(m, size, MS_SYNC) ? errname(errno) : "0");
		memcpy(d, wbuf, len);
		if (timed && fstat(fd, &st) == 0)
			res_printf(r, " mtime-moved=%d", st.st_mtim.tv_sec != 1000000000 || st.st_mtim.tv_nsec != 0);
	} else if (safe_copy(d, (char *)m + off, len) < 0) {
		r->bad = 1;
		res_printf(r, " SIGBUS reading the mapping");
	}
	r->data.len = len;
	munmap(m, size);
	/* same side must agree with itself: pread sees what the mapping saw / wrote */
	int rfd = readable_fd(o->slot, fd, &tmp);
	ssize_t n = rfd < 0 ? -1 : pread(rfd, tmpbuf[s->idx], len, (off_t)off);
	if (n != (ssize_t)len || memcmp(tmpbuf[s->idx], d, len)) {
		r->bad = 1;
		res_printf(r, " pread after mmap %s disagrees (pread=%zd)", wr ? "write" : "read", n);
	}
	if (tmp >= 0)
		close(tmp);
}

static void s_access(struct side *s, struct op *o, struct res *r)
{
	res_sys(r, faccessat(s->dirfd, o->p1, o->mode, o->flags));
}

/* ------------------------------------------------------------------------------------------ */
/* running an op on both sides                                                                */

enum {
	K_CREATE, K_OPEN, K_CLOSE, K_PWRITE, K_WRITE, K_PREAD, K_READ, K_LSEEK, K_FTRUNC, K_TRUNC,
	K_RENAME, K_UNLINK, K_LINK, K_SYMLINK, K_READLINK, K_CHMOD, K_CHOWN, K_UTIMENS, K_SETX,
	K_GETX, K_LISTX, K_REMOVEX, K_MKDIR, K_RMDIR, K_RMTREE, K_STAT, K_FSTAT, K_READDIR, K_FSYNC,
	K_FALLOC, K_COPY, K_MMAPR, K_MMAPW, K_ACCESS, K_READBACK, K_N
};
static unsigned long counts[K_N], errcounts[K_N];
static int cur_kind;

static void trace_add(const char *desc, const struct res *a, const struct res *b)
{
	unsigned long k = opno % TRACE_N;
	char ra[32], rb[32];
	res_summary(a, ra, sizeof ra);
	res_summary(b, rb, sizeof rb);
	const char *where = side_a == &S[0] ? "" : "behind: ";
	if (strcmp(ra, rb) || a->bad || b->bad)
		snprintf(trace[k], sizeof trace[k], "#%lu %s%s = A:%s B:%s", opno, where, desc, ra, rb);
	else
		snprintf(trace[k], sizeof trace[k], "#%lu %s%s = %s", opno, where, desc, rb);
	trace_no[k] = opno;
	if (verbose)
		fprintf(stderr, "%s\n", trace[k]);
}

__attribute__((format(printf, 2, 3))) static void desc(struct op *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->desc, sizeof o->desc, fmt, ap);
	va_end(ap);
}

static void run(int kind, struct op *o, side_fn fn)
{
	cur_kind = kind;
	opno++;
	last_p1 = o->p1;
	last_p2 = o->p2;
	counts[cur_kind]++;
	cur_desc = o->desc;
	if (op_timeout)
		alarm(op_timeout);
	for (int i = 0; i < 2; i++) {
		res_reset(&R[i]);
		fn(i ? &S[1] : side_a, o, &R[i]);
	}
	if (op_timeout)
		alarm(0);
	if (R[1].ret < 0)
		errcounts[cur_kind]++;
	trace_add(o->desc, &R[0], &R[1]);
	if (!res_equal(&R[0], &R[1])) {
		if (kind == K_PREAD || kind == K_READBACK || kind == K_MMAPR || kind == K_MMAPW)
			mm_base = o->off;
		mismatch(o->desc);
	}
}

static void op_init(struct op *o)
{
	memset(o, 0, sizeof *o);
	o->slot = o->slot2 = -1;
}

/* ------------------------------------------------------------------------------------------ */
/* op generators: choose parameters (decisions only use side B, the reference), then run      */

static const char *sname(int sl, char *b, size_t n)
{
	snprintf(b, n, "s%d:%s", sl, slots[sl].path);
	return b;
}

static int pick_used(void)
{
	int v[NSLOTS], n = 0;
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i].used)
			v[n++] = i;
	return n ? v[rnd(n)] : -1;
}

static long long ref_size(int sl)
{
	struct stat st;
	/* regular files only: directory sizes are fs-specific and would make the op sequence
	 * depend on the file system type of DIR_B */
	return fstat(slots[sl].fd[1], &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : 0;
}

static long long ref_pos(int sl)
{
	off_t p = lseek(slots[sl].fd[1], 0, SEEK_CUR);
	return p < 0 ? 0 : (long long)p;
}

static void close_slot(int sl)
{
	struct op o;
	char b[96];
	op_init(&o);
	o.slot = sl;
	desc(&o, "close(%s)", sname(sl, b, sizeof b));
	run(K_CLOSE, &o, s_close);
	slots[sl].used = 0;
}

static int free_slot(void)
{
	for (int i = 0; i < NSLOTS; i++)
		if (!slots[i].used)
			return i;
	int sl = (int)rnd(NSLOTS);
	close_slot(sl);
	return sl;
}

static long long io_len(void)
{
	long long r = rnd(100);
	if (r < 5)
		return 0;
	if (r < 15)
		return 1 + rnd(16);
	if (r < 45)
		return 1 + rnd(4096);
	if (r < 60)
		return 4096 * (1 + rnd(8));
	if (r < 82)
		return 1 + rnd(65536);
	return 1 + rnd(MAXIO);
}

static long long pick_off(long long size)
{
	long long r = rnd(100);
	if (r < 35)
		return rnd(size + 1);
	if (r < 50)
		return size;
	if (r < 60)
		return 4096 * rnd(MAXFILE / 4096);
	if (r < 80)
		return rnd(MAXFILE);
	return size + 1 + rnd(256 * 1024); /* leaves a hole */
}

static long long pick_size(long long size)
{
	long long r = rnd(100), v;
	if (r < 25)
		v = rnd(size + 1);
	else if (r < 50)
		v = size + rnd(65536);
	else if (r < 65)
		v = rnd(MAXFILE + 1);
	else if (r < 75)
		v = 0;
	else if (r < 85)
		v = size;
	else
		v = size & ~4095LL;
	return v > MAXFILE ? MAXFILE : v;
}

static void fill_data(size_t len)
{
	long long r = rnd(100);
	if (r < 12) {
		memset(wbuf, 0, len);
	} else if (r < 25) {
		memset(wbuf, (int)(1 + rnd(255)), len);
	} else {
		uint64_t x = rnd64() | 1;
		for (size_t i = 0; i < len; i += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(wbuf + i, &x, len - i < 8 ? len - i : 8);
		}
	}
}

static void slot_opened(struct op *o)
{
	struct stat st;
	if (R[1].ret < 0)
		return;
	struct slot *sl = &slots[o->slot];
	sl->used = 1;
	sl->flags = o->flags;
	snprintf(sl->path, sizeof sl->path, "%s", o->p1);
	sl->isdir = fstat(sl->fd[1], &st) == 0 && S_ISDIR(st.st_mode);
}

static void g_create(void)
{
	struct op o;
	char fs[96];
	op_init(&o);
	o.slot = free_slot();
	o.p1 = chance(90) ? pick_file() : pick_path();
	long long a = rnd(20);
	int acc = a < 5 ? O_WRONLY : a < 18 ? O_RDWR : O_RDONLY;
	o.flags = O_CREAT | acc;
	if (chance(25))
		o.flags |= O_EXCL;
	if (acc != O_RDONLY && chance(25))
		o.flags |= O_TRUNC;
	if (chance(20))
		o.flags |= O_APPEND;
	o.mode = pick_mode();
	flags_str(o.flags, fs, sizeof fs);
	desc(&o, "openat(%s, %s, 0%o) -> s%d", o.p1, fs, o.mode, o.slot);
	run(K_CREATE, &o, s_open);
	slot_opened(&o);
}

static void g_open(void)
{
	struct op o;
	char fs[96];
	op_init(&o);
	o.slot = free_slot();
	o.p1 = chance(80) ? pick_biased(W_EXISTS, 3) : pick_path();
	long long a = rnd(20);
	int acc = a < 6 ? O_RDONLY : a < 9 ? O_WRONLY : O_RDWR;
	o.flags = acc;
	if (chance(15))
		o.flags |= O_APPEND;
	if (acc != O_RDONLY && chance(10))
		o.flags |= O_TRUNC;
	if (chance(5))
		o.flags |= O_NOFOLLOW;
	if (acc == O_RDONLY && chance(8))
		o.flags |= O_DIRECTORY;
	flags_str(o.flags, fs, sizeof fs);
	desc(&o, "openat(%s, %s) -> s%d", o.p1, fs, o.slot);
	run(K_OPEN, &o, s_open);
	slot_opened(&o);
}

static void g_close(void)
{
	int sl = pick_used();
	if (sl < 0)
		g_create();
	else
		close_slot(sl);
}

#define NEED_SLOT(sl)              \
	int sl = pick_used();      \
	if (sl < 0) {              \
		g_create();        \
		return;            \
	}

/* half of all successful writes are read back at once (read-your-writes) */
static void maybe_readback(int sl, long long end, long long len)
{
	struct op o;
	char b[96];
	if (R[1].ret <= 0 || !chance(50))
		return;
	op_init(&o);
	o.slot = sl;
	o.len = R[1].ret < len ? R[1].ret : len;
	o.off = end - o.len;
	desc(&o, "readback(%s, off=%lld, len=%lld)", sname(sl, b, sizeof b), o.off, o.len);
	run(K_READBACK, &o, s_readback);
}

static void g_pwrite(void)
{
	struct op o;
	char b[96];
	NEED_SLOT(sl);
	op_init(&o);
	o.slot = sl;
	long long size = ref_size(sl);
	o.len = io_len();
	o.off = pick_off(size);
	long long end = (slots[sl].flags & O_APPEND) ? size : o.off;
	if (o.off > MAXFILE)
		o.off = MAXFILE;
	if (end > MAXFILE)
		end = MAXFILE;
	if (o.len > MAXFILE - end)
		o.len = MAXFILE - end;
	fill_data((size_t)o.len);
	desc(&o, "pwrite(%s, off=%lld, len=%lld)", sname(sl, b, sizeof b), o.off, o.len);
	run(K_PWRITE, &o, s_pwrite);
	maybe_readback(sl, (slots[sl].flags & O_APPEND) ? ref_size(sl) : o.off + R[1].ret, o.len);
}

static void g_write(void)
{
	struct op o;
	char b[96];
	NEED_SLOT(sl);
	op_init(&o);
	o.slot = sl;
	long long end = (slots[sl].flags & O_APPEND) ? ref_size(sl) : ref_pos(sl);
	o.len = io_len();
	if (end > MAXFILE)
		end = MAXFILE;
	if (o.len > MAXFILE - end)
		o.len = MAXFILE - end;
	fill_data((size_t)o.len);
	desc(&o, "write(%s, len=%lld)%s", sname(sl, b, sizeof b), o.len,
	     (slots[sl].flags & O_APPEND) ? " [O_APPEND]" : "");
	run(K_WRITE, &o, s_write);
	maybe_readback(sl, ref_pos(sl), o.len);
}

static long long read_len(void)
{
	return chance(50) ? io_len() : 1 + rnd(MAXREAD);
}

static void g_pread(void)
{
	struct op o;
	char b[96];
	NEED_SLOT(sl);
	op_init(&o);
	o.slot = sl;
	long long size = ref_size(sl), r = rnd(100);
	if (r < 50)
		o.off = rnd(size + 1);
	else if (r < 70)
		o.off = rnd(MAXFILE + 4096);
	else
		o.off = size > 8192 ? size - rnd(8192) : rnd(size + 1);
	o.len = read_len();
	desc(&o, "pread(%s, off=%lld, len=%lld)", sname(sl, b, sizeof b), o.off, o.len);
	run(K_PREAD, &o, s_pread);
}

static void g_read(void)
{
	struct op o;
	char b[96];
	NEED_SLOT(sl);
	op_init(&o);
	o.slot = sl;
	o.len = read_len();
	desc(&o, "read(%s, len=%lld)", sname(sl, b, sizeof b), o.len);
	run(K_READ, &o, s_read);
}

static void g_fstat_slot(int sl)
{
	struct op o;
	char b[96];
	op_init(&o);
	o.slot = sl;
	desc(&o, "fstat(%s)", sname(sl, b, sizeof b));
	run(K_FSTAT, &o, s_fstat);
}

static void g_fstat(void)
{
	NEED_SLOT(sl);
	g_fstat_slot(sl);
}

static void g_lseek(void)
{
	struct op o;
	char b[96];
	static const char *wn[] = {"SET", "CUR", "END", "DATA", "HOLE"};
	NEED_SLOT(sl);
	if (slots[sl].isdir) { /* directory offsets are fs cookies: not comparable */
		g_fstat_slot(sl);
		return;
	}
	op_init(&o);
	o.slot = sl;
	long long size = ref_size(sl), r = rnd(100);
	if (r < 20) {
		o.whence = SEEK_SET;
		o.off = chance(95) ? rnd(MAXFILE + 4096) : -1 - rnd(10);
	} else if (r < 35) {
		o.whence = SEEK_CUR;
		o.off = rnd(2 * 65536) - 65536;
	} else if (r < 60) {
		o.whence = SEEK_END;
		o.off = chance(60) ? -rnd(size + 10) : rnd(65536);
	} else {
		o.whence = r < 80 ? SEEK_DATA : SEEK_HOLE;
		o.off = (size > 0 && chance(80)) ? rnd(size) : size + rnd(4096);
	}
	desc(&o, "lseek(%s, %lld, SEEK_%s)", sname(sl, b, sizeof b), o.off, wn[o.whence]);
	run(K_LSEEK, &o, o.whence == SEEK_DATA || o.whence == SEEK_HOLE ? s_seekdh : s_lseek);
}

static void g_ftrunc(void)
{
	struct op o;
	char b[96];
	NEED_SLOT(sl);
	op_init(&o);
	o.slot = sl;
	o.off = pick_size(ref_size(sl));
	desc(&o, "ftruncate(%s, %lld)", sname(sl, b, sizeof b), o.off);
	run(K_FTRUNC, &o, s_ftrunc);
}

static void g_trunc(void)
{
	struct op o;
	struct stat st;
	op_init(&o);
	o.p1 = pick_target();
	long long size = fstatat(S[1].dirfd, o.p1, &st, 0) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : 0;
	o.off = pick_size(size);
	desc(&o, "truncate(%s, %lld)", o.p1, o.off);
	run(K_TRUNC, &o, s_trunc);
}

static void g_rename(void)
{
	struct op o;
	static const char *fn[] = {"0", "NOREPLACE", "EXCHANGE", "NOREPLACE|EXCHANGE"};
	op_init(&o);
	o.p1 = chance(25) ? pick_dirish() : chance(70) ? pick_biased(W_EXISTS, 4) : pick_path();
	o.p2 = chance(25) ? pick_dirish() : pick_path();
	long long r = rnd(100);
	o.flags = r < 55 ? 0 : r < 75 ? RENAME_NOREPLACE : r < 97 ? RENAME_EXCHANGE : RENAME_NOREPLACE | RENAME_EXCHANGE;
	desc(&o, "renameat2(%s, %s, %s)", o.p1, o.p2, fn[o.flags]);
	run(K_RENAME, &o, s_rename);
}

static void g_unlink(void)
{
	struct op o;
	op_init(&o);
	o.p1 = chance(60) ? pick_biased(W_EXISTS, 3) : pick_path();
	desc(&o, "unlink(%s)", o.p1);
	run(K_UNLINK, &o, s_unlink);
}

static void g_link(void)
{
	struct op o;
	op_init(&o);
	o.p1 = chance(85) ? pick_biased(W_EXISTS, 4) : pick_path();
	o.p2 = chance(70) ? pick_biased(W_ABSENT, 3) : pick_file();
	o.flags = chance(20) ? AT_SYMLINK_FOLLOW : 0;
	desc(&o, "linkat(%s, %s%s)", o.p1, o.p2, o.flags ? ", FOLLOW" : "");
	run(K_LINK, &o, s_link);
}

static void g_symlink(void)
{
	/* relative targets without "..", or an absolute one that cannot exist: never escapes DIR */
	static const char *targets[] = {
		"f0", "f1", "f2", "d0", "d1", "d0/f1", "d0/d2/f0", "d1/f2", "nx", "f0/",
		"/nonexistent-cachemax-difftest/x",
		"llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll"
		"llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
	};
	struct op o;
	op_init(&o);
	o.p1 = chance(60) ? pick_biased(W_ABSENT, 3) : pick_path();
	o.p2 = targets[rnd(NELEM(targets))];
	desc(&o, "symlink(%s -> %.40s)", o.p1, o.p2);
	run(K_SYMLINK, &o, s_symlink);
}

static void g_readlink(void)
{
	struct op o;
	op_init(&o);
	o.p1 = chance(70) ? pick_biased(W_SYMLINK, 5) : pick_path();
	o.len = chance(85) ? 4096 : 1 + rnd(8);
	desc(&o, "readlink(%s, bufsiz=%lld)", o.p1, o.len);
	run(K_READLINK, &o, s_readlink);
}

static void g_chmod(void)
{
	struct op o;
	char b[96];
	op_init(&o);
	o.mode = pick_mode();
	if (chance(30) && (o.slot = pick_used()) >= 0) {
		desc(&o, "fchmod(%s, 0%o)", sname(o.slot, b, sizeof b), o.mode);
	} else {
		o.slot = -1;
		o.p1 = pick_target();
		desc(&o, "chmod(%s, 0%o)", o.p1, o.mode);
	}
	run(K_CHMOD, &o, s_chmod);
}

static void g_chown(void)
{
	static const long long ids[] = {0, 1, 1000, 65534, -1};
	struct op o;
	char b[96];
	op_init(&o);
	o.uid = ids[rnd(NELEM(ids))];
	o.gid = ids[rnd(NELEM(ids))];
	if (chance(30) && (o.slot = pick_used()) >= 0) {
		desc(&o, "fchown(%s, %lld, %lld)", sname(o.slot, b, sizeof b), o.uid, o.gid);
	} else {
		o.slot = -1;
		o.p1 = pick_target();
		o.flags = chance(50) ? AT_SYMLINK_NOFOLLOW : 0;
		desc(&o, "%s(%s, %lld, %lld)", o.flags ? "lchown" : "chown", o.p1, o.uid, o.gid);
	}
	run(K_CHOWN, &o, s_chown);
}

static void pick_time(struct timespec *ts, int *explicit_)
{
	long long r = rnd(100);
	*explicit_ = 0;
	if (r < 50) {
		ts->tv_sec = (time_t)rnd(4000000000LL);
		ts->tv_nsec = chance(20) ? 0 : (long)rnd(1000000000);
		*explicit_ = 1;
	} else {
		ts->tv_sec = 0;
		ts->tv_nsec = r < 75 ? UTIME_NOW : UTIME_OMIT;
	}
}

static void tsdesc(const struct timespec *ts, char *b, size_t n)
{
	if (ts->tv_nsec == UTIME_NOW)
		snprintf(b, n, "NOW");
	else if (ts->tv_nsec == UTIME_OMIT)
		snprintf(b, n, "OMIT");
	else
		snprintf(b, n, "%lld.%09ld", (long long)ts->tv_sec, ts->tv_nsec);
}

static void g_utimens(void)
{
	struct op o;
	char b[96], ta[40], tm[40];
	op_init(&o);
	o.times_null = chance(8);
	if (!o.times_null) {
		pick_time(&o.ts[0], &o.explicit_a);
		pick_time(&o.ts[1], &o.explicit_m);
		tsdesc(&o.ts[0], ta, sizeof ta);
		tsdesc(&o.ts[1], tm, sizeof tm);
	} else {
		snprintf(ta, sizeof ta, "NULL");
		tm[0] = 0;
	}
	if (chance(30) && (o.slot = pick_used()) >= 0) {
		desc(&o, "futimens(%s, %s %s)", sname(o.slot, b, sizeof b), ta, tm);
	} else {
		o.slot = -1;
		o.p1 = pick_target();
		o.flags = chance(30) ? AT_SYMLINK_NOFOLLOW : 0;
		desc(&o, "utimensat(%s, %s %s%s)", o.p1, ta, tm, o.flags ? ", NOFOLLOW" : "");
	}
	run(K_UTIMENS, &o, s_utimens);
}

/* trusted.* (root only) is the namespace symlinks accept as well (user.* they refuse). */
static const char *xnames[] = {"user.a", "user.b", "user.cachemax_difftest", "user.long_attribute_name_0123456789",
			       "trusted.cachemax_difftest"};

static void pick_xtarget(struct op *o, char *b, size_t n, int want_xattr)
{
	long long r = rnd(100);
	o->xname = xnames[rnd(NELEM(xnames))];
	if (r < 25 && (o->slot = pick_used()) >= 0) {
		o->xvariant = 2;
		sname(o->slot, b, n);
	} else {
		o->slot = -1;
		o->xvariant = r < 45 ? 1 : 0;
		o->p1 = want_xattr && chance(70) ? pick_biased(W_XATTR, 5) : pick_target();
		snprintf(b, n, "%s", o->p1);
	}
}

static const char *xv(const struct op *o)
{
	return o->xvariant == 2 ? "f" : o->xvariant == 1 ? "l" : "";
}

static void g_setx(void)
{
	struct op o;
	char b[96];
	static const char *fl[] = {"0", "CREATE", "REPLACE"};
	op_init(&o);
	pick_xtarget(&o, b, sizeof b, 0);
	long long r = rnd(100);
	o.flags = r < 60 ? 0 : r < 80 ? XATTR_CREATE : XATTR_REPLACE;
	r = rnd(100);
	o.len = r < 50 ? rnd(17) : r < 85 ? rnd(257) : rnd(601);
	fill_data((size_t)o.len);
	desc(&o, "%ssetxattr(%s, %s, len=%lld, %s)", xv(&o), b, o.xname, o.len, fl[o.flags]);
	run(K_SETX, &o, s_setx);
}

static void g_getx(void)
{
	struct op o;
	char b[96];
	op_init(&o);
	pick_xtarget(&o, b, sizeof b, 1);
	long long r = rnd(100);
	o.len = r < 70 ? 65536 : r < 85 ? 0 : 1 + rnd(4);
	desc(&o, "%sgetxattr(%s, %s, size=%lld)", xv(&o), b, o.xname, o.len);
	run(K_GETX, &o, s_getx);
}

static void g_listx(void)
{
	struct op o;
	char b[96];
	op_init(&o);
	pick_xtarget(&o, b, sizeof b, 1);
	desc(&o, "%slistxattr(%s)", xv(&o), b);
	run(K_LISTX, &o, s_listx);
}

static void g_removex(void)
{
	struct op o;
	char b[96];
	op_init(&o);
	pick_xtarget(&o, b, sizeof b, 1);
	desc(&o, "%sremovexattr(%s, %s)", xv(&o), b, o.xname);
	run(K_REMOVEX, &o, s_removex);
}

static void g_mkdir(void)
{
	static const int dmodes[] = {0755, 0700, 0777, 0750};
	struct op o;
	op_init(&o);
	o.p1 = chance(50) ? pick_dir_state(0) : NULL; /* keep the subdirectories mostly in place */
	if (!o.p1)
		o.p1 = pick_dirish();
	o.mode = chance(85) ? dmodes[rnd(NELEM(dmodes))] : pick_mode();
	desc(&o, "mkdir(%s, 0%o)", o.p1, o.mode);
	run(K_MKDIR, &o, s_mkdir);
}

static void g_rmdir(void)
{
	struct op o;
	op_init(&o);
	o.p1 = pick_dirish();
	desc(&o, "rmdir(%s)", o.p1);
	run(K_RMDIR, &o, s_rmdir);
}

static void g_rmtree(void)
{
	struct op o;
	op_init(&o);
	o.p1 = chance(70) ? pick_dir_state(1) : NULL; /* mostly: a file squatting on a directory name */
	if (!o.p1)
		o.p1 = chance(80) ? dir_paths[rnd(NELEM(dir_paths))] : pick_file();
	desc(&o, "rm -rf %s", o.p1);
	run(K_RMTREE, &o, s_rmtree);
}

static void g_stat(void)
{
	struct op o;
	op_init(&o);
	o.p1 = pick_target();
	o.flags = chance(50) ? AT_SYMLINK_NOFOLLOW : 0;
	desc(&o, "%s(%s)", o.flags ? "lstat" : "stat", o.p1);
	run(K_STAT, &o, s_stat);
}

static void g_readdir(void)
{
	struct op o;
	op_init(&o);
	o.p1 = chance(25) ? "." : pick_dirish();
	desc(&o, "readdir(%s)", o.p1);
	run(K_READDIR, &o, s_readdir);
}

static void g_fsync(void)
{
	struct op o;
	char b[96];
	NEED_SLOT(sl);
	op_init(&o);
	o.slot = sl;
	o.flags = chance(50);
	desc(&o, "%s(%s)", o.flags ? "fdatasync" : "fsync", sname(sl, b, sizeof b));
	run(K_FSYNC, &o, s_fsync);
}

static void g_falloc(void)
{
	struct op o;
	char b[96];
	NEED_SLOT(sl);
	op_init(&o);
	o.slot = sl;
	long long r = rnd(100);
	o.mode = r < 40 ? 0 : r < 65 ? FALLOC_FL_KEEP_SIZE : FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE;
	o.off = pick_off(ref_size(sl));
	if (o.off > MAXFILE - 1)
		o.off = MAXFILE - 1;
	o.len = chance(2) ? 0 : 1 + rnd(256 * 1024);
	if (o.len > MAXFILE - o.off)
		o.len = MAXFILE - o.off;
	desc(&o, "fallocate(%s, %s, off=%lld, len=%lld)", sname(sl, b, sizeof b),
	     o.mode == 0 ? "0" : o.mode == FALLOC_FL_KEEP_SIZE ? "KEEP_SIZE" : "KEEP_SIZE|PUNCH_HOLE", o.off, o.len);
	run(K_FALLOC, &o, s_falloc);
}

static void g_copy(void)
{
	struct op o;
	char b[96], b2[96], oi[32], oo[32];
	NEED_SLOT(sl);
	op_init(&o);
	o.slot = sl;
	o.slot2 = pick_used();
	o.use_off_in = chance(75);
	o.use_off_out = chance(75);
	long long in_size = ref_size(o.slot), out_size = ref_size(o.slot2);
	o.off = chance(80) ? rnd(in_size + 1) : rnd(MAXFILE);
	o.off2 = pick_off(out_size);
	if (o.off2 > MAXFILE)
		o.off2 = MAXFILE;
	o.len = chance(3) ? 0 : 1 + rnd(MAXREAD);
	long long end = o.use_off_out ? o.off2 : (slots[o.slot2].flags & O_APPEND) ? out_size : ref_pos(o.slot2);
	if (end > MAXFILE)
		end = MAXFILE;
	if (o.len > MAXFILE - end)
		o.len = MAXFILE - end;
	snprintf(oi, sizeof oi, o.use_off_in ? "%lld" : "NULL", o.off);
	snprintf(oo, sizeof oo, o.use_off_out ? "%lld" : "NULL", o.off2);
	desc(&o, "copy_file_range(%s @%s -> %s @%s, len=%lld)", sname(o.slot, b, sizeof b), oi,
	     sname(o.slot2, b2, sizeof b2), oo, o.len);
	run(K_COPY, &o, s_copy);
}

static void g_mmap_common(int wr)
{
	struct op o;
	char b[96];
	NEED_SLOT(sl);
	op_init(&o);
	o.slot = sl;
	o.flags = wr;
	long long size = ref_size(sl);
	o.off = rnd(size + 1);
	long long max = size - o.off < 128 * 1024 ? size - o.off : 128 * 1024;
	o.len = rnd(max + 1);
	if (wr)
		fill_data((size_t)o.len);
	desc(&o, "mmap-%s(%s, off=%lld, len=%lld)", wr ? "write" : "read", sname(sl, b, sizeof b), o.off, o.len);
	run(wr ? K_MMAPW : K_MMAPR, &o, s_mmap);
}

static void g_mmapr(void) { g_mmap_common(0); }
static void g_mmapw(void) { g_mmap_common(1); }

static void g_access(void)
{
	static const int am[] = {F_OK, R_OK, W_OK, X_OK, R_OK | W_OK, R_OK | W_OK | X_OK};
	struct op o;
	op_init(&o);
	o.p1 = pick_target();
	o.mode = am[rnd(NELEM(am))];
	long long r = rnd(100);
	o.flags = r < 60 ? 0 : r < 80 ? AT_EACCESS : AT_SYMLINK_NOFOLLOW;
	desc(&o, "faccessat(%s, %d, %#x)", o.p1, o.mode, (unsigned)o.flags);
	run(K_ACCESS, &o, s_access);
}

static const struct {
	const char *name;
	int weight;
	void (*gen)(void);
} kinds[K_N] = {
	[K_CREATE] = {"create", 60, g_create},     [K_OPEN] = {"open", 50, g_open},
	[K_CLOSE] = {"close", 40, g_close},        [K_PWRITE] = {"pwrite", 110, g_pwrite},
	[K_WRITE] = {"write", 60, g_write},        [K_PREAD] = {"pread", 100, g_pread},
	[K_READ] = {"read", 40, g_read},           [K_LSEEK] = {"lseek", 35, g_lseek},
	[K_FTRUNC] = {"ftruncate", 30, g_ftrunc},  [K_TRUNC] = {"truncate", 20, g_trunc},
	[K_RENAME] = {"rename", 50, g_rename},     [K_UNLINK] = {"unlink", 35, g_unlink},
	[K_LINK] = {"link", 25, g_link},           [K_SYMLINK] = {"symlink", 20, g_symlink},
	[K_READLINK] = {"readlink", 20, g_readlink}, [K_CHMOD] = {"chmod", 20, g_chmod},
	[K_CHOWN] = {"chown", 10, g_chown},        [K_UTIMENS] = {"utimens", 30, g_utimens},
	[K_SETX] = {"setxattr", 30, g_setx},       [K_GETX] = {"getxattr", 20, g_getx},
	[K_LISTX] = {"listxattr", 15, g_listx},    [K_REMOVEX] = {"removexattr", 10, g_removex},
	[K_MKDIR] = {"mkdir", 25, g_mkdir},        [K_RMDIR] = {"rmdir", 20, g_rmdir},
	[K_RMTREE] = {"rmtree", 5, g_rmtree},      [K_STAT] = {"stat", 40, g_stat},
	[K_FSTAT] = {"fstat", 30, g_fstat},        [K_READDIR] = {"readdir", 25, g_readdir},
	[K_FSYNC] = {"fsync", 5, g_fsync},         [K_FALLOC] = {"fallocate", 25, g_falloc},
	[K_COPY] = {"copy_file_range", 25, g_copy}, [K_MMAPR] = {"mmap-read", 20, g_mmapr},
	[K_MMAPW] = {"mmap-write", 10, g_mmapw},   [K_ACCESS] = {"access", 15, g_access},
	[K_READBACK] = {"readback", 0, NULL}, /* issued after writes, never drawn */
};

/* ------------------------------------------------------------------------------------------ */
/* changes behind the cache (--behind)                                                        */

/* The parent directory of p ("." for a top-level name) into buf. */
static const char *parent_of(const char *p, char *buf, size_t n)
{
	const char *slash = strrchr(p, '/');
	if (!slash)
		return ".";
	snprintf(buf, n, "%.*s", (int)(slash - p), p);
	return buf;
}

/* What side s shows of p: its stat (not following a symlink), its parent's stat and listing. */
static void view_path(struct side *s, struct res *r, const char *p)
{
	char pb[PATH_MAX];
	const char *parent = parent_of(p, pb, sizeof pb);
	struct dent *d;
	size_t n;
	int rc;
	res_printf(r, " %s:", p);
	stat_path(s, r, "", p, AT_SYMLINK_NOFOLLOW);
	stat_path(s, r, "followed", p, 0);  /* a symlink's target: a truncate through it */
	res_printf(r, " parent %s:", parent);
	stat_path(s, r, "", parent, AT_SYMLINK_NOFOLLOW);
	rc = list_dir(s->dirfd, parent, &d, &n);
	if (rc < 0) {
		res_printf(r, " list=%s", errname(-rc));
	} else {
		for (size_t i = 0; i < n; i++)
			res_printf(r, " %s:%c", d[i].name, d[i].type);
		dents_free(d, n);
	}
}

/* After a change behind the cache: the mount must show p1 and p2 (and their directories), and
 * every open slot's fstat (an unlinked file's link count, a chmod seen through an open fd), as
 * the plain directory does within a second. Without the slots, an fstat a few ops later could
 * still meet the kernel's attributes from before the watcher's invalidation (seen once: nlink
 * 1 against 0 on a file unlinked behind while open, 11 ops after the unlink). */
static void behind_settle(const struct op *o)
{
	struct timespec t0, t1;
	char what[DESC_MAX + 64];
	long ms;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		for (int i = 0; i < 2; i++) {
			res_reset(&R[i]);
			if (o->p1)
				view_path(&S[i], &R[i], o->p1);
			if (o->p2)
				view_path(&S[i], &R[i], o->p2);
			for (int j = 0; j < NSLOTS; j++) {
				struct stat st;
				if (!slots[j].used)
					continue;
				if (fstat(SFD(&S[i], j), &st) < 0)
					res_printf(&R[i], " s%d{%s}", j, errname(errno));
				else
					fmt_stat(&R[i], "slot", &st);
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (res_equal(&R[0], &R[1]))
			break;
		if (ms > 1000) {
			snprintf(what, sizeof what, "behind the cache: %s not seen through the mount after 1 s", o->desc);
			mismatch(what);
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	nbehind++;
	if ((unsigned long)ms > behind_worst_ms)
		behind_worst_ms = (unsigned long)ms;
}

/* One namespace or attribute change made on DIR_A's original (and on DIR_B), then waited for. */
static void g_behind(void)
{
	static void (*const gens[])(void) = {g_rename, g_unlink, g_link, g_symlink, g_chmod, g_chown,
	                                     g_utimens, g_trunc, g_mkdir, g_rmdir};
	static struct op last;
	void (*gen)(void) = gens[rnd(sizeof gens / sizeof gens[0])];
	unsigned long before = opno;
	/* the generators read the kernel's view first (they decide on side B only): the mount
	 * has names and attributes cached when the change is made */
	side_a = &Sback;
	gen();
	side_a = &S[0];
	if (opno == before)
		return;
	memset(&last, 0, sizeof last);
	snprintf(last.desc, sizeof last.desc, "%s", trace[(opno) % TRACE_N]);
	last.p1 = last_p1;
	last.p2 = last_p2;
	behind_settle(&last);
}

/* ------------------------------------------------------------------------------------------ */
/* full tree compare                                                                          */

struct linkent {
	dev_t dev;
	ino_t ino;
	char *path;
};
static struct {
	struct linkent *v;
	size_t n, cap;
} lmap[2];
static char tc_desc[DESC_MAX + PATH_MAX];

static void tc_check(const char *what, const char *p, long long off)
{
	if (res_equal(&R[0], &R[1]))
		return;
	mm_base = off;
	if (off >= 0)
		snprintf(tc_desc, sizeof tc_desc, "tree-compare #%lu (after op #%lu): %s of '%s' at offset %lld",
			 ntree, opno, what, p, off);
	else
		snprintf(tc_desc, sizeof tc_desc, "tree-compare #%lu (after op #%lu): %s of '%s'", ntree, opno, what, p);
	mismatch(tc_desc);
}

/* the first path (in walk order) of the same inode on this side: hard-link identity */
static void link_identity(struct side *s, struct res *r, const struct stat *st, const char *p)
{
	typeof(lmap[0]) *m = &lmap[s->idx];
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].dev == st->st_dev && m->v[i].ino == st->st_ino) {
			res_printf(r, " linked-to=%s", m->v[i].path);
			return;
		}
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 32;
		m->v = realloc(m->v, m->cap * sizeof *m->v);
		if (!m->v)
			die("out of memory");
	}
	m->v[m->n].dev = st->st_dev;
	m->v[m->n].ino = st->st_ino;
	m->v[m->n].path = strdup(p);
	if (!m->v[m->n].path)
		die("out of memory");
	m->n++;
	res_printf(r, " linked-first");
}

static void tc_meta(struct side *s, struct res *r, const char *p)
{
	static char list[2][65536];
	char *names[256], pb[PATH_MAX], t[PATH_MAX];
	struct stat st;
	if (fstatat(s->dirfd, p, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		res_sys(r, -1);
		return;
	}
	fmt_stat(r, "", &st);
	if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlinkat(s->dirfd, p, t, sizeof t - 1);
		res_printf(r, " -> %.*s", n < 0 ? 0 : (int)n, t);
	}
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1)
		link_identity(s, r, &st, p);
	ssize_t n = llistxattr(via(s, p, pb, sizeof pb), list[s->idx], sizeof list[0]);
	if (n < 0) {
		res_printf(r, " xattrs=%s", errname(errno));
		return;
	}
	int k;
	res_printf(r, " xattrs:");
	xattr_names_text(r, list[s->idx], n, names, &k);
	for (int i = 0; i < k; i++) {
		ssize_t vl = lgetxattr(pb, names[i], tmpbuf[s->idx], 65536);
		res_printf(r, " %s=", names[i]);
		if (vl < 0)
			res_printf(r, "%s", errname(errno));
		else
			res_printf(r, "%zd:%016" PRIx64, vl, fnv(tmpbuf[s->idx], (size_t)vl));
	}
}

static void tc_content(const char *p, const int fd[2])
{
	long long off = 0;
	for (;;) {
		for (int i = 0; i < 2; i++) {
			res_reset(&R[i]);
			unsigned char *d = res_data(&R[i], CHUNK);
			ssize_t n = pread(fd[i], d, CHUNK, off);
			res_sys(&R[i], n);
			R[i].data.len = n > 0 ? (size_t)n : 0;
		}
		tc_check("content", p, off);
		if (R[1].ret <= 0)
			return;
		off += R[1].ret;
	}
}

static void tc_file(const char *p)
{
	int fd[2];
	for (int i = 0; i < 2; i++) {
		res_reset(&R[i]);
		fd[i] = openat(S[i].dirfd, p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		res_sys(&R[i], fd[i] < 0 ? -1 : 0);
	}
	tc_check("open for reading", p, -1);
	if (fd[0] >= 0) {
		tc_content(p, fd);
		close(fd[0]);
		close(fd[1]);
	}
}

static void tc_dir(const char *p, int depth)
{
	struct dent *d[2];
	size_t n[2];
	for (int i = 0; i < 2; i++) {
		res_reset(&R[i]);
		int rc = list_dir(S[i].dirfd, p, &d[i], &n[i]);
		listing_text(&R[i], rc, d[i], n[i]);
	}
	tc_check("listing", p, -1);
	for (size_t j = 0; j < n[1]; j++) {
		size_t l = strlen(p) + strlen(d[1][j].name) + 2;
		char *c = malloc(l);
		if (!c)
			die("out of memory");
		if (!strcmp(p, "."))
			snprintf(c, l, "%s", d[1][j].name);
		else
			snprintf(c, l, "%s/%s", p, d[1][j].name);
		for (int i = 0; i < 2; i++) {
			res_reset(&R[i]);
			tc_meta(&S[i], &R[i], c);
		}
		tc_check("metadata", c, -1);
		if (d[1][j].type == 'f')
			tc_file(c);
		else if (d[1][j].type == 'd' && depth < 40)
			tc_dir(c, depth + 1);
		free(c);
	}
	dents_free(d[0], n[0]);
	dents_free(d[1], n[1]);
}

static void tree_compare(void)
{
	char b[96];
	ntree++;
	cur_desc = "tree-compare";
	if (op_timeout)
		alarm(op_timeout * 10);
	for (int i = 0; i < 2; i++) {
		for (size_t k = 0; k < lmap[i].n; k++)
			free(lmap[i].v[k].path);
		lmap[i].n = 0;
		res_reset(&R[i]);
		tc_meta(&S[i], &R[i], ".");
	}
	tc_check("metadata", ".", -1);
	tc_dir(".", 0);
	/* open fds, including ones whose names are gone: state, identity and full contents */
	for (int sl = 0; sl < NSLOTS; sl++) {
		if (!slots[sl].used)
			continue;
		struct op o;
		op_init(&o);
		o.slot = sl;
		sname(sl, b, sizeof b);
		for (int i = 0; i < 2; i++) {
			res_reset(&R[i]);
			s_fstat(&S[i], &o, &R[i]);
		}
		tc_check("open fd state", b, -1);
		if (slots[sl].isdir)
			continue;
		int fd[2], tmp[2];
		for (int i = 0; i < 2; i++) {
			res_reset(&R[i]);
			fd[i] = readable_fd(sl, slots[sl].fd[i], &tmp[i]);
			res_sys(&R[i], fd[i] < 0 ? -1 : 0);
		}
		tc_check("reopen of open fd for reading", b, -1);
		if (fd[1] >= 0)
			tc_content(b, fd);
		for (int i = 0; i < 2; i++)
			if (tmp[i] >= 0)
				close(tmp[i]);
	}
	if (op_timeout)
		alarm(0);
}

/* ------------------------------------------------------------------------------------------ */

__attribute__((noreturn)) static void usage(const char *msg)
{
	FILE *out = msg ? stderr : stdout;
	if (msg)
		fprintf(stderr, "difftest: %s\n", msg);
	fprintf(out,
		"usage: difftest [--seed S] [--ops N] [--files K] [--tree-every N] [--op-timeout SEC]\n"
		"                [--behind BACK [--behind-pct P]] [--verbose] DIR_A DIR_B\n"
		"  Replays one seeded random sequence of file-system operations on DIR_A (e.g. the FUSE\n"
		"  mount) and DIR_B (a plain directory) and stops at the first differing result.\n"
		"  Both directories must exist, be different and be empty; difftest fills them.\n"
		"  --seed S        PRNG seed (default 1); the same seed replays the same ops\n"
		"  --ops N         number of operations (default 10000)\n"
		"  --files K       file names in the namespace, spread over . d0 d1 d0/d2 (1..%d, default 12)\n"
		"  --tree-every N  full tree compare every N ops, 0 = only at the end (default 5000)\n"
		"  --op-timeout S  report an op that hangs longer than S seconds, 0 = never (default 60)\n"
		"  --behind BACK   DIR_A's original reached behind the mount (e.g. a bind mount made before\n"
		"                  it): P%% of the steps (default 5) make a rename, unlink, link, symlink,\n"
		"                  chmod, chown, utimens, truncate, mkdir or rmdir there instead of through\n"
		"                  DIR_A, and DIR_A must show it (stat, parent listing) within 1 s\n"
		"  --verbose       print every op and its result to stderr\n"
		"  (a step that is a compound, e.g. a write plus its read-back, may run 1-2 ops past N)\n"
		"exit: 0 all results equal, 1 mismatch, 2 usage or setup error\n",
		MAXFILES);
	exit(msg ? 2 : 0);
}

static unsigned long long num_arg(const char *opt, const char *v, unsigned long long min, unsigned long long max)
{
	char *end;
	char msg[128];
	if (!v) {
		snprintf(msg, sizeof msg, "%s needs a value", opt);
		usage(msg);
	}
	errno = 0;
	unsigned long long x = strtoull(v, &end, 0);
	if (errno || end == v || *end || v[0] == '-' || x < min || x > max) {
		snprintf(msg, sizeof msg, "%s: invalid value '%s' (expected %llu..%llu)", opt, v, min, max);
		usage(msg);
	}
	return x;
}

static void setup_side(struct side *s, int idx, const char *root)
{
	struct dent *d;
	size_t n;
	s->idx = idx;
	s->label = idx ? "B" : "A";
	s->root = root;
	s->dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		fprintf(stderr, "difftest: DIR_%s %s: %s\n", s->label, root, strerror(errno));
		exit(2);
	}
	int rc = list_dir(s->dirfd, ".", &d, &n);
	if (rc < 0) {
		fprintf(stderr, "difftest: DIR_%s %s: cannot list: %s\n", s->label, root, strerror(-rc));
		exit(2);
	}
	dents_free(d, n);
	if (n) {
		fprintf(stderr, "difftest: DIR_%s %s is not empty (difftest creates and deletes files there)\n",
			s->label, root);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	const char *dirs[2];
	int ndirs = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--seed"))
			seed = num_arg(a, i + 1 < argc ? argv[++i] : NULL, 0, UINT64_MAX);
		else if (!strcmp(a, "--ops"))
			nops = num_arg(a, i + 1 < argc ? argv[++i] : NULL, 1, 1000000000ULL);
		else if (!strcmp(a, "--files"))
			nfiles = (int)num_arg(a, i + 1 < argc ? argv[++i] : NULL, 1, MAXFILES);
		else if (!strcmp(a, "--tree-every"))
			tree_every = num_arg(a, i + 1 < argc ? argv[++i] : NULL, 0, 1000000000ULL);
		else if (!strcmp(a, "--op-timeout"))
			op_timeout = (unsigned)num_arg(a, i + 1 < argc ? argv[++i] : NULL, 0, 86400);
		else if (!strcmp(a, "--inject-fault"))
			inject_n = num_arg(a, i + 1 < argc ? argv[++i] : NULL, 1, 1000000000ULL);
		else if (!strcmp(a, "--behind")) {
			if (i + 1 >= argc)
				usage("--behind needs a directory");
			back_root = argv[++i];
		}
		else if (!strcmp(a, "--behind-pct"))
			behind_pct = (unsigned)num_arg(a, i + 1 < argc ? argv[++i] : NULL, 1, 100);
		else if (!strcmp(a, "--verbose") || !strcmp(a, "-v"))
			verbose = 1;
		else if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			usage(NULL);
		else if (a[0] == '-' && a[1]) {
			char msg[128];
			snprintf(msg, sizeof msg, "unknown option '%s'", a);
			usage(msg);
		} else if (ndirs < 2)
			dirs[ndirs++] = a;
		else
			usage("too many arguments: expected exactly DIR_A and DIR_B");
	}
	if (ndirs != 2)
		usage("expected exactly two directories, DIR_A and DIR_B");

	umask(022);
	setup_side(&S[0], 0, dirs[0]);
	setup_side(&S[1], 1, dirs[1]);
	if (back_root) {
		setup_side(&Sback, 0, back_root);
		Sback.label = "A (behind)";
	}
	struct stat sa, sb;
	if (fstat(S[0].dirfd, &sa) || fstat(S[1].dirfd, &sb))
		die("fstat");
	if (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino) {
		fprintf(stderr, "difftest: DIR_A and DIR_B are the same directory\n");
		exit(2);
	}

	wbuf = malloc(MAXIO + MAXREAD);
	tmpbuf[0] = malloc(MAXREAD + CHUNK);
	tmpbuf[1] = malloc(MAXREAD + CHUNK);
	if (!wbuf || !tmpbuf[0] || !tmpbuf[1])
		die("out of memory");
	for (int i = 0; i < NSLOTS; i++)
		slots[i].fd[0] = slots[i].fd[1] = -1;
	for (int i = 0; i < nfiles; i++)
		snprintf(file_paths[i], sizeof file_paths[i], "%sf%d", prefixes[i % 4], i / 4);

	struct sigaction sa_alrm = {.sa_handler = on_alarm}, sa_bus = {.sa_handler = on_sigbus};
	sigemptyset(&sa_alrm.sa_mask);
	sigemptyset(&sa_bus.sa_mask);
	sa_bus.sa_flags = SA_NODEFER;
	if (sigaction(SIGALRM, &sa_alrm, NULL) || sigaction(SIGBUS, &sa_bus, NULL))
		die("sigaction");

	rng_state = seed;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	/* start with the subdirectories in place so paths below them work from the beginning */
	for (int i = 0; i < 3 && opno < nops; i++) {
		struct op o;
		op_init(&o);
		o.p1 = dir_paths[i];
		o.mode = 0755;
		desc(&o, "mkdir(%s, 0755)", o.p1);
		run(K_MKDIR, &o, s_mkdir);
	}

	int total = 0;
	for (int k = 0; k < K_N; k++)
		total += kinds[k].weight;
	unsigned long next_tree = tree_every;
	while (opno < nops) {
		if (tree_every && opno >= next_tree) {
			tree_compare();
			next_tree += tree_every;
		}
		if (back_root && chance((int)behind_pct)) {
			g_behind();
			continue;
		}
		long long r = rnd(total);
		int k = 0;
		while (r >= kinds[k].weight)
			r -= kinds[k++].weight;
		kinds[k].gen();
	}
	tree_compare();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	printf("difftest: seed=%" PRIu64 " ops=%lu ok (%.1fs, %.0f ops/s, %lu tree compares; count/errors:",
	       seed, opno, el, el > 0 ? (double)opno / el : 0.0, ntree);
	for (int k = 0; k < K_N; k++)
		printf(" %s=%lu/%lu", kinds[k].name, counts[k], errcounts[k]);
	printf(")\n");
	if (back_root)
		printf("difftest: %lu changes behind the cache, each seen through the mount within %lu ms\n",
		       nbehind, behind_worst_ms);
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i].used) {
			close(slots[i].fd[0]);
			close(slots[i].fd[1]);
		}
	return 0;
}
