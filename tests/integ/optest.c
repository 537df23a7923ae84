/* optest: operation-coverage transcript for CacheMax. `optest DIR [SECTION...]` runs a fixed,
 * deterministic script of filesystem operations inside the (empty) DIR and prints one line per
 * step to stdout. Run it on a plain directory and on a CacheMax mount and diff the transcripts:
 * only facts a correct pass-through mount must reproduce are printed (no inode numbers, st_dev,
 * atime/ctime, st_blocks, absolute paths or pids). Exit 0 when it ran to the end, 2 on usage error. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define KIB 1024L
#define MIB (1024L * 1024L)
#define FNV0 0xcbf29ce484222325ULL

static int g_top = -1;
static const char *g_section = "";

/* ------------------------------------------------------------------------------------------ */
/* Output helpers                                                                              */

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
}

/* Rotating scratch strings, so several formatted values can appear in one out() call. */
#define RB_N 16
#define RB_SZ 1024
static char *rbuf(void) {
  static char bufs[RB_N][RB_SZ];
  static unsigned next;
  return bufs[next++ % RB_N];
}

static const char *L(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *L(const char *fmt, ...) {
  char *b = rbuf();
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, RB_SZ, fmt, ap);
  va_end(ap);
  return b;
}

static const char *ename(int e) {
  if (e == 0) return "0";
  const char *n = strerrorname_np(e);
  if (n) return n;
  char *b = rbuf();
  snprintf(b, RB_SZ, "E%d", e);
  return b;
}

/* Escape bytes for a one-line transcript: printable ASCII as is, the rest as \n, \0 or \xNN.
 * Names also escape space; long strings are cut with their length noted. */
static const char *esc_(const void *p, size_t len, int name) {
  const unsigned char *s = p;
  char *b = rbuf();
  size_t o = 0, lim = len > 120 ? 120 : len;
  for (size_t i = 0; i < lim; i++) {
    unsigned c = s[i];
    if (c > 0x20 && c < 0x7f && c != '\\' && c != '"') b[o++] = (char)c;
    else if (c == ' ' && !name) b[o++] = ' ';
    else if (c == '\n') { b[o++] = '\\'; b[o++] = 'n'; }
    else if (c == 0) { b[o++] = '\\'; b[o++] = '0'; }
    else o += (size_t)snprintf(b + o, RB_SZ - o, "\\x%02x", c);
  }
  if (lim < len) o += (size_t)snprintf(b + o, RB_SZ - o, "...(%zu bytes)", len);
  b[o] = 0;
  return b;
}
static const char *N(const char *name) { return esc_(name, strlen(name), 1); }
static const char *Q(const void *p, ssize_t n) {
  if (n < 0) return "";
  return L("\"%s\"", esc_(p, (size_t)n, 0));
}
static const char *yesno(int x) { return x ? "yes" : "no"; }

static void step(const char *label, long rc, int e) {
  if (rc < 0) out("%s: %ld %s", label, rc, ename(e));
  else out("%s: %ld", label, rc);
}
/* STEP prints "label: rc" or "label: -1 ENAME"; the label is formatted after errno is saved. */
#define STEP(label, expr)                                                                        \
  do {                                                                                           \
    errno = 0;                                                                                   \
    long r_ = (long)(expr);                                                                      \
    int e_ = errno;                                                                              \
    step((label), r_, e_);                                                                       \
  } while (0)

/* For calls returning a descriptor: prints "label: ok" (fd numbers are not printed). */
static int sfd(int fd, const char *label) {
  int e = errno;
  if (fd < 0) out("%s: -1 %s", label, ename(e));
  else out("%s: ok", label);
  return fd;
}
#define OPEN(label, expr) sfd((expr), (label))

/* For reads: "label: n "data"". */
static void sdata_(ssize_t n, const void *buf, const char *label) {
  int e = errno;
  if (n < 0) out("%s: -1 %s", label, ename(e));
  else out("%s: %zd %s", label, n, Q(buf, n));
}
#define DATA(label, expr, buf)                                                                   \
  do {                                                                                           \
    errno = 0;                                                                                   \
    ssize_t n_ = (expr);                                                                         \
    sdata_(n_, (buf), (label));                                                                  \
  } while (0)

static const char *ftype(mode_t m) {
  if (S_ISREG(m)) return "reg";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "lnk";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "sock";
  if (S_ISCHR(m)) return "chr";
  if (S_ISBLK(m)) return "blk";
  return "unknown";
}

static const char *sstr(const struct stat *st) {
  char *b = rbuf();
  int n = snprintf(b, RB_SZ, "%s %04o", ftype(st->st_mode), (unsigned)(st->st_mode & 07777));
  if (S_ISREG(st->st_mode) || S_ISLNK(st->st_mode))
    n += snprintf(b + n, RB_SZ - (size_t)n, " size=%lld", (long long)st->st_size);
  if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
    n += snprintf(b + n, RB_SZ - (size_t)n, " rdev=%u:%u", major(st->st_rdev), minor(st->st_rdev));
  snprintf(b + n, RB_SZ - (size_t)n, " nlink=%lu uid=%u gid=%u", (unsigned long)st->st_nlink,
           (unsigned)st->st_uid, (unsigned)st->st_gid);
  return b;
}

static void pstat_(const char *how, const char *path, int flags) {
  struct stat st;
  if (fstatat(AT_FDCWD, path, &st, flags) < 0) out("%s %s: -1 %s", how, N(path), ename(errno));
  else out("%s %s: %s", how, N(path), sstr(&st));
}
static void pstat(const char *path) { pstat_("stat", path, 0); }
static void plstat(const char *path) { pstat_("lstat", path, AT_SYMLINK_NOFOLLOW); }
static void pfstat(const char *label, int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) out("%s: -1 %s", label, ename(errno));
  else out("%s: %s", label, sstr(&st));
}
/* Prints one field: size of a path (follows symlinks). */
static void psize(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0) out("size %s: -1 %s", N(path), ename(errno));
  else out("size %s: %lld", N(path), (long long)st.st_size);
}
static void pfsize(const char *label, int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) out("%s: -1 %s", label, ename(errno));
  else out("%s: size=%lld nlink=%lu", label, (long long)st.st_size, (unsigned long)st.st_nlink);
}

static int same_inode(const char *a, const char *b) {
  struct stat sa, sb;
  if (lstat(a, &sa) < 0 || lstat(b, &sb) < 0) return -1;
  return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}
static void psame(const char *a, const char *b) {
  int r = same_inode(a, b);
  if (r < 0) out("same-inode %s %s: -1 %s", N(a), N(b), ename(errno));
  else out("same-inode %s %s: %s", N(a), N(b), yesno(r));
}

/* ------------------------------------------------------------------------------------------ */
/* I/O helpers                                                                                 */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

static void pattern(unsigned char *b, size_t n, unsigned seed) {
  uint32_t x = seed * 2654435761u + 1u;
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    b[i] = (unsigned char)(x >> 16);
  }
}

static int allzero(const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++)
    if (s[i]) return 0;
  return 1;
}
static int allbyte(const void *p, size_t n, unsigned char c) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++)
    if (s[i] != c) return 0;
  return 1;
}

static ssize_t wall(int fd, const void *p, size_t n) {
  const char *c = p;
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fd, c + done, n - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (w == 0) break;
    done += (size_t)w;
  }
  return (ssize_t)done;
}

static ssize_t pread_all(int fd, void *p, size_t n, off_t off) {
  char *c = p;
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, c + done, n - done, off + (off_t)done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    done += (size_t)r;
  }
  return (ssize_t)done;
}

/* Creates/overwrites path with data; prints a "setup" line only when that fails. */
static int put(const char *path, const void *data, size_t len, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0 || wall(fd, data, len) != (ssize_t)len) {
    out("setup write %s: -1 %s", N(path), ename(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  if (close(fd) < 0) {
    out("setup close %s: -1 %s", N(path), ename(errno));
    return -1;
  }
  return 0;
}
static int puts_(const char *path, const char *s) { return put(path, s, strlen(s), 0644); }

static ssize_t slurp(const char *path, void *buf, size_t cap) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = pread_all(fd, buf, cap, 0);
  int e = errno;
  close(fd);
  errno = e;
  return n;
}
static void pcat(const char *path) {
  char buf[256];
  DATA(L("cat %s", N(path)), slurp(path, buf, sizeof buf), buf);
}

/* opendir + closedir: 0 or -1 with errno. */
static int try_opendir(const char *path) {
  DIR *d = opendir(path);
  if (!d) return -1;
  closedir(d);
  return 0;
}

static void setup_mkdir(const char *path, mode_t mode) {
  if (mkdir(path, mode) < 0) out("setup mkdir %s: -1 %s", N(path), ename(errno));
}

/* ------------------------------------------------------------------------------------------ */
/* Directory listing                                                                           */

struct names {
  char **v;
  size_t n, cap;
};

static int cmpstr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}
static void names_add(struct names *nl, const char *s) {
  if (nl->n == nl->cap) {
    size_t nc = nl->cap ? nl->cap * 2 : 64;
    char **nv = realloc(nl->v, nc * sizeof *nv);
    if (!nv) abort();
    nl->v = nv;
    nl->cap = nc;
  }
  nl->v[nl->n] = strdup(s);
  if (!nl->v[nl->n]) abort();
  nl->n++;
}
static void names_free(struct names *nl) {
  for (size_t i = 0; i < nl->n; i++) free(nl->v[i]);
  free(nl->v);
  memset(nl, 0, sizeof *nl);
}
static uint64_t names_sum(const struct names *nl) {
  uint64_t h = FNV0;
  for (size_t i = 0; i < nl->n; i++) h = fnv(h, nl->v[i], strlen(nl->v[i]) + 1);
  return h;
}

/* The first n names, escaped, each preceded by a space (malloc'd). */
static char *join_names(const struct names *nl, size_t n) {
  size_t cap = 1, o = 0;
  for (size_t i = 0; i < n; i++) cap += 1 + 4 * strlen(nl->v[i]) + 32;
  char *b = malloc(cap);
  if (!b) abort();
  b[0] = 0;
  for (size_t i = 0; i < n; i++) o += (size_t)snprintf(b + o, cap - o, " %s", N(nl->v[i]));
  return b;
}

/* Reads a directory's names except . and .. (counted in *dots), sorted. */
static int names_read(const char *path, struct names *nl, int *dots) {
  memset(nl, 0, sizeof *nl);
  *dots = 0;
  DIR *d = opendir(path);
  if (!d) return -1;
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) (*dots)++;
    else names_add(nl, de->d_name);
    errno = 0;
  }
  int e = errno;
  closedir(d);
  if (e) {
    names_free(nl);
    errno = e;
    return -1;
  }
  if (nl->n > 1) qsort(nl->v, nl->n, sizeof *nl->v, cmpstr);
  return 0;
}

/* "label: count=N dots=2 sum=..." plus the names when there are at most show_max. */
static void plist(const char *label, const char *path, size_t show_max) {
  struct names nl;
  int dots;
  if (names_read(path, &nl, &dots) < 0) {
    out("%s: -1 %s", label, ename(errno));
    return;
  }
  char *b = join_names(&nl, nl.n <= show_max ? nl.n : 0);
  out("%s: count=%zu dots=%d sum=%016" PRIx64 "%s%s", label, nl.n, dots, names_sum(&nl),
      nl.n <= show_max ? " names:" : "", b);
  free(b);
  names_free(&nl);
}

/* ------------------------------------------------------------------------------------------ */
/* Child processes (for other users and for lock conflicts between processes)                  */

static void on_alarm(int sig) {
  char msg[256];
  size_t n = (size_t)snprintf(msg, sizeof msg, "TIMEOUT in section %s\n", g_section);
  ssize_t r = write(STDOUT_FILENO, msg, n < sizeof msg ? n : sizeof msg - 1);
  (void)r;
  _exit(3);
}

static void child_end(int code) __attribute__((noreturn));
static void child_end(int code) {
  fflush(stdout);
  _exit(code);
}

/* Forks; in the child drops to uid/gid ((uid_t)-1 keeps root). Returns as fork() does. */
static pid_t child_begin(uid_t uid, gid_t gid) {
  fflush(stdout);
  pid_t p = fork();
  if (p < 0) {
    out("fork: -1 %s", ename(errno));
    return -1;
  }
  if (p == 0) {
    alarm(60);
    if (gid != (gid_t)-1 && (setgroups(0, NULL) < 0 || setgid(gid) < 0)) {
      out("child setgid %u: -1 %s", (unsigned)gid, ename(errno));
      child_end(1);
    }
    if (uid != (uid_t)-1 && setuid(uid) < 0) {
      out("child setuid %u: -1 %s", (unsigned)uid, ename(errno));
      child_end(1);
    }
  }
  return p;
}

static void child_wait(pid_t p) {
  int st;
  if (p <= 0) return;
  while (waitpid(p, &st, 0) < 0)
    if (errno != EINTR) {
      out("waitpid: -1 %s", ename(errno));
      return;
    }
  if (WIFSIGNALED(st)) out("child killed by signal %d", WTERMSIG(st));
  else if (WEXITSTATUS(st) != 0) out("child exit %d", WEXITSTATUS(st));
}

/* ------------------------------------------------------------------------------------------ */
/* Sections                                                                                    */

static void sec_lookup(void) {
  puts_("f", "hello\n");
  setup_mkdir("d", 0755);
  puts_("d/g", "x");
  if (symlink("f", "sl") < 0) out("setup symlink: -1 %s", ename(errno));
  if (symlink("d", "sld") < 0) out("setup symlink: -1 %s", ename(errno));
  pstat("f");
  plstat("f");
  pstat("d");
  pstat("d/g");
  pstat("sl");
  plstat("sl");
  pstat("sld/g");
  pstat("d/../f");
  pstat("./d/./g");
  pstat("d/");
  pstat("f/");
  pstat("missing");
  pstat("d/missing");
  pstat("f/x");
  pstat("");
  STEP("symlink loop1->loop2", symlink("loop2", "loop1"));
  STEP("symlink loop2->loop1", symlink("loop1", "loop2"));
  pstat("loop1");
  plstat("loop1");

  int fd = OPEN("open f", open("f", O_RDONLY));
  if (fd >= 0) {
    pfstat("fstat f", fd);
    struct stat st;
    STEP("fstatat AT_EMPTY_PATH", fstatat(fd, "", &st, AT_EMPTY_PATH));
    close(fd);
  }
  fd = OPEN("open sl O_NOFOLLOW", open("sl", O_RDONLY | O_NOFOLLOW));
  if (fd >= 0) close(fd);
  /* A regular file opened with O_NOFOLLOW must open (a server that reopens through
   * /proc/self/fd with the flags as given gets ELOOP: found by difftest). */
  fd = OPEN("open f O_NOFOLLOW", open("f", O_RDWR | O_NOFOLLOW));
  if (fd >= 0) close(fd);
  fd = OPEN("open sl O_PATH|O_NOFOLLOW", open("sl", O_PATH | O_NOFOLLOW));
  if (fd >= 0) {
    pfstat("fstat O_PATH symlink", fd);
    close(fd);
  }
  fd = OPEN("open f O_DIRECTORY", open("f", O_RDONLY | O_DIRECTORY));
  if (fd >= 0) close(fd);
  int dfd = OPEN("open d O_DIRECTORY", open("d", O_RDONLY | O_DIRECTORY));
  if (dfd >= 0) {
    struct stat st;
    if (fstatat(dfd, "g", &st, 0) < 0) out("fstatat d g: -1 %s", ename(errno));
    else out("fstatat d g: %s", sstr(&st));
    if (fstatat(dfd, "../sl", &st, AT_SYMLINK_NOFOLLOW) < 0)
      out("fstatat d ../sl nofollow: -1 %s", ename(errno));
    else out("fstatat d ../sl nofollow: %s", sstr(&st));
    fd = OPEN("openat d g", openat(dfd, "g", O_RDONLY));
    if (fd >= 0) {
      char buf[16];
      DATA("read d/g", read(fd, buf, sizeof buf), buf);
      close(fd);
    }
    STEP("mkdirat d sub", mkdirat(dfd, "sub", 0700));
    pstat("d/sub");
    STEP("unlinkat d sub AT_REMOVEDIR", unlinkat(dfd, "sub", AT_REMOVEDIR));
    STEP("unlinkat d g", unlinkat(dfd, "g", 0));
    STEP("unlinkat d g again", unlinkat(dfd, "g", 0));
    close(dfd);
  }
  plist("list .", ".", 20);
}

static void sec_chmod(void) {
  puts_("f", "data\n");
  setup_mkdir("d", 0755);
  if (symlink("f", "sl") < 0) out("setup symlink: -1 %s", ename(errno));
  static const mode_t modes[] = {0600, 0755, 0000, 04755, 02755, 01644, 07777, 0644};
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    STEP(L("chmod f %04o", (unsigned)modes[i]), chmod("f", modes[i]));
    pstat("f");
  }
  int fd = OPEN("open f", open("f", O_RDONLY));
  if (fd >= 0) {
    STEP("fchmod f 0640", fchmod(fd, 0640));
    pfstat("fstat f", fd);
    close(fd);
  }
  STEP("chmod d 01777", chmod("d", 01777));
  pstat("d");
  STEP("chmod d 0700", chmod("d", 0700));
  pstat("d");
  STEP("chmod sl 0600 (follows)", chmod("sl", 0600));
  pstat("f");
  plstat("sl");
  STEP("fchmodat sl AT_SYMLINK_NOFOLLOW", fchmodat(AT_FDCWD, "sl", 0644, AT_SYMLINK_NOFOLLOW));
  plstat("sl");
  STEP("chmod missing", chmod("missing", 0644));
}

static void sec_chown(void) {
  puts_("f", "data\n");
  setup_mkdir("d", 0755);
  if (symlink("f", "sl") < 0) out("setup symlink: -1 %s", ename(errno));
  STEP("chown f 1000:1000", chown("f", 1000, 1000));
  pstat("f");
  STEP("chown f -1:2000", chown("f", (uid_t)-1, 2000));
  pstat("f");
  STEP("chown f 0:0", chown("f", 0, 0));
  pstat("f");
  int fd = OPEN("open f", open("f", O_RDONLY));
  if (fd >= 0) {
    STEP("fchown f 1000:-1", fchown(fd, 1000, (gid_t)-1));
    pfstat("fstat f", fd);
    STEP("fchown f 0:0", fchown(fd, 0, 0));
    pfstat("fstat f", fd);
    close(fd);
  }
  STEP("chown d 1000:1000", chown("d", 1000, 1000));
  pstat("d");
  STEP("chown d 0:0", chown("d", 0, 0));
  pstat("d");
  STEP("lchown sl 1000:1000", lchown("sl", 1000, 1000));
  plstat("sl");
  pstat("sl");
  STEP("lchown sl 0:0", lchown("sl", 0, 0));
  plstat("sl");
  STEP("chown sl 1000:1000 (follows)", chown("sl", 1000, 1000));
  plstat("sl");
  pstat("f");
  STEP("chown f 0:0", chown("f", 0, 0));
  /* chown of an executable clears set-user-ID and (with group exec) set-group-ID. */
  STEP("chmod f 06755", chmod("f", 06755));
  STEP("chown f 1000:1000 (suid)", chown("f", 1000, 1000));
  pstat("f");
  STEP("chmod f 02644", chmod("f", 02644));
  STEP("chown f 0:0 (sgid no gx)", chown("f", 0, 0));
  pstat("f");
  STEP("chown missing", chown("missing", 0, 0));
}

static void sec_truncate(void) {
  char buf[64];
  puts_("f", "0123456789");
  STEP("truncate f 20", truncate("f", 20));
  pcat("f");
  STEP("truncate f 4", truncate("f", 4));
  pcat("f");
  int fd = OPEN("open f rw", open("f", O_RDWR));
  if (fd >= 0) {
    STEP("ftruncate 8192", ftruncate(fd, 8192));
    pfsize("fstat", fd);
    psize("f");
    char *big = malloc(8192);
    if (big) {
      ssize_t n = pread_all(fd, big, 8192, 0);
      out("read 8192: %zd head=%s tail-zero=%s", n, Q(big, n > 4 ? 4 : n),
          yesno(n == 8192 && allzero(big + 4, 8188)));
      free(big);
    }
    STEP("ftruncate 3", ftruncate(fd, 3));
    DATA("pread", pread(fd, buf, sizeof buf, 0), buf);
    STEP("ftruncate 0", ftruncate(fd, 0));
    pfsize("fstat", fd);
    STEP("ftruncate -1", ftruncate(fd, -1));
    close(fd);
  }
  /* A size change through the path is seen by an fd that is already open. */
  fd = OPEN("open g rw", open("g", O_RDWR | O_CREAT, 0644));
  if (fd >= 0) {
    STEP("write g", write(fd, "abcdef", 6));
    STEP("truncate g 2 by path", truncate("g", 2));
    DATA("pread g via open fd", pread(fd, buf, sizeof buf, 0), buf);
    pfsize("fstat g", fd);
    close(fd);
  }
  fd = OPEN("open f rdonly", open("f", O_RDONLY));
  if (fd >= 0) {
    STEP("ftruncate on O_RDONLY", ftruncate(fd, 10));
    close(fd);
  }
  setup_mkdir("d", 0755);
  STEP("truncate d", truncate("d", 0));
  STEP("truncate missing", truncate("missing", 0));
  STEP("truncate f -1", truncate("f", -1));
}

static void ptimes(const char *how, const char *path, int flags) {
  struct stat st;
  if (fstatat(AT_FDCWD, path, &st, flags) < 0) {
    out("%s %s times: -1 %s", how, N(path), ename(errno));
    return;
  }
  out("%s %s times: atime=%lld.%09ld mtime=%lld.%09ld", how, N(path), (long long)st.st_atim.tv_sec,
      st.st_atim.tv_nsec, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}
static int get_times(const char *path, int flags, struct timespec *at, struct timespec *mt) {
  struct stat st;
  if (fstatat(AT_FDCWD, path, &st, flags) < 0) return -1;
  *at = st.st_atim;
  *mt = st.st_mtim;
  return 0;
}
static int ts_eq(struct timespec a, struct timespec b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}
static int recent(struct timespec t) {
  time_t now = time(NULL);
  return t.tv_sec > now - 300 && t.tv_sec < now + 300;
}

static void sec_utimens(void) {
  const struct timespec t1[2] = {{1000000000, 123456789}, {1200000000, 987654321}};
  const struct timespec t2[2] = {{1100000000, 5}, {1300000000, 999999999}};
  struct timespec at, mt;
  puts_("f", "data\n");
  setup_mkdir("d", 0755);
  if (symlink("f", "sl") < 0) out("setup symlink: -1 %s", ename(errno));

  STEP("utimensat f explicit", utimensat(AT_FDCWD, "f", t1, 0));
  ptimes("stat", "f", 0);

  const struct timespec now2[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  STEP("utimensat f UTIME_NOW", utimensat(AT_FDCWD, "f", now2, 0));
  if (get_times("f", 0, &at, &mt) == 0) out("f times after UTIME_NOW: set recent=%s", yesno(recent(mt) && recent(at)));

  STEP("utimensat f explicit", utimensat(AT_FDCWD, "f", t1, 0));
  const struct timespec now_omit[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  STEP("utimensat f atime=NOW mtime=OMIT", utimensat(AT_FDCWD, "f", now_omit, 0));
  if (get_times("f", 0, &at, &mt) == 0)
    out("f after OMIT: mtime unchanged=%s atime recent=%s", yesno(ts_eq(mt, t1[1])), yesno(recent(at)));

  STEP("utimensat f explicit", utimensat(AT_FDCWD, "f", t1, 0));
  const struct timespec omit_set[2] = {{0, UTIME_OMIT}, {1250000000, 42}};
  STEP("utimensat f atime=OMIT mtime=explicit", utimensat(AT_FDCWD, "f", omit_set, 0));
  ptimes("stat", "f", 0);

  STEP("utimensat f NULL", utimensat(AT_FDCWD, "f", NULL, 0));
  if (get_times("f", 0, &at, &mt) == 0) out("f times after NULL: set recent=%s", yesno(recent(mt)));

  int fd = OPEN("open f", open("f", O_RDWR));
  if (fd >= 0) {
    STEP("futimens f explicit", futimens(fd, t2));
    ptimes("stat", "f", 0);
    close(fd);
  }
  struct timeval tv[2] = {{1150000000, 250000}, {1160000000, 750000}};
  STEP("utimes f", utimes("f", tv));
  ptimes("stat", "f", 0);

  /* On a symlink with AT_SYMLINK_NOFOLLOW: the link changes, the target does not. */
  STEP("utimensat f explicit", utimensat(AT_FDCWD, "f", t1, 0));
  STEP("utimensat sl explicit NOFOLLOW", utimensat(AT_FDCWD, "sl", t2, AT_SYMLINK_NOFOLLOW));
  ptimes("lstat", "sl", AT_SYMLINK_NOFOLLOW);
  if (get_times("f", 0, &at, &mt) == 0) out("target f mtime unchanged=%s", yesno(ts_eq(mt, t1[1])));
  STEP("utimensat sl UTIME_NOW NOFOLLOW", utimensat(AT_FDCWD, "sl", now2, AT_SYMLINK_NOFOLLOW));
  if (get_times("sl", AT_SYMLINK_NOFOLLOW, &at, &mt) == 0) out("sl after UTIME_NOW: set recent=%s", yesno(recent(mt)));
  if (get_times("f", 0, &at, &mt) == 0) out("target f mtime unchanged=%s", yesno(ts_eq(mt, t1[1])));
  STEP("utimensat sl explicit (follows)", utimensat(AT_FDCWD, "sl", t2, 0));
  ptimes("stat", "f", 0);

  STEP("utimensat d explicit", utimensat(AT_FDCWD, "d", t1, 0));
  ptimes("stat", "d", 0);

  /* Data and metadata changes move mtime forward from an old explicit value. */
  STEP("utimensat f explicit", utimensat(AT_FDCWD, "f", t1, 0));
  fd = OPEN("open f", open("f", O_WRONLY));
  if (fd >= 0) {
    STEP("write f", write(fd, "x", 1));
    if (get_times("f", 0, &at, &mt) == 0) out("mtime after write (fd open): updated=%s", yesno(!ts_eq(mt, t1[1]) && recent(mt)));
    close(fd);
    if (get_times("f", 0, &at, &mt) == 0) out("mtime after close: updated=%s", yesno(!ts_eq(mt, t1[1]) && recent(mt)));
  }
  STEP("utimensat f explicit", utimensat(AT_FDCWD, "f", t1, 0));
  STEP("truncate f 2", truncate("f", 2));
  if (get_times("f", 0, &at, &mt) == 0) out("mtime after truncate: updated=%s", yesno(!ts_eq(mt, t1[1]) && recent(mt)));
  STEP("utimensat d explicit", utimensat(AT_FDCWD, "d", t1, 0));
  puts_("d/new", "n");
  if (get_times("d", 0, &at, &mt) == 0) out("dir mtime after create: updated=%s", yesno(!ts_eq(mt, t1[1]) && recent(mt)));
  STEP("utimensat missing", utimensat(AT_FDCWD, "missing", t1, 0));
}

static void sec_readdir(void) {
  setup_mkdir("empty", 0755);
  plist("readdir empty", "empty", 20);
  setup_mkdir("one", 0755);
  puts_("one/a", "a");
  plist("readdir one", "one", 20);

  setup_mkdir("big", 0755);
  int ok = 0;
  for (int i = 0; i < 5000; i++) {
    char name[32];
    snprintf(name, sizeof name, "big/entry-%05d", (i * 7919) % 5000);
    int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd >= 0) {
      ok++;
      close(fd);
    }
  }
  out("create big/5000: ok=%d", ok);
  plist("readdir big", "big", 0);

  /* telldir/seekdir: read half, remember, read the rest, seek back, read it again. */
  DIR *d = opendir("big");
  if (!d) {
    out("opendir big: -1 %s", ename(errno));
  } else {
    int first = 0;
    struct dirent *de;
    while (first < 2501 && (de = readdir(d)) != NULL) first++;
    long pos = telldir(d);
    struct names a = {0}, b = {0};
    while ((de = readdir(d)) != NULL) names_add(&a, de->d_name);
    seekdir(d, pos);
    while ((de = readdir(d)) != NULL) names_add(&b, de->d_name);
    int same = a.n == b.n;
    for (size_t i = 0; same && i < a.n; i++) same = !strcmp(a.v[i], b.v[i]);
    out("telldir/seekdir big: first=%d rest=%zu reread=%zu same-order=%s", first, a.n, b.n, yesno(same));
    names_free(&a);
    names_free(&b);
    rewinddir(d);
    int all = 0;
    while ((de = readdir(d)) != NULL) all++;
    out("rewinddir big: count-with-dots=%d", all);
    /* Entries added while open show up after rewinddir. */
    puts_("big/zz-added", "z");
    rewinddir(d);
    all = 0;
    while ((de = readdir(d)) != NULL) all++;
    out("rewinddir after add: count-with-dots=%d", all);
    closedir(d);
  }

  setup_mkdir("types", 0755);
  puts_("types/reg", "r");
  setup_mkdir("types/dir", 0755);
  if (symlink("reg", "types/lnk") < 0) out("setup symlink: -1 %s", ename(errno));
  if (mkfifo("types/fifo", 0644) < 0) out("setup mkfifo: -1 %s", ename(errno));
  d = opendir("types");
  if (!d) {
    out("opendir types: -1 %s", ename(errno));
  } else {
    struct names nl = {0};
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      const char *t = de->d_type == DT_REG ? "reg" : de->d_type == DT_DIR ? "dir" : de->d_type == DT_LNK ? "lnk"
                    : de->d_type == DT_FIFO ? "fifo" : de->d_type == DT_UNKNOWN ? "unknown" : "other";
      names_add(&nl, L("%s=%s", de->d_name, t));
    }
    closedir(d);
    if (nl.n > 1) qsort(nl.v, nl.n, sizeof *nl.v, cmpstr);
    char *b = rbuf();
    size_t o = 0;
    b[0] = 0;
    for (size_t i = 0; i < nl.n; i++) o += (size_t)snprintf(b + o, RB_SZ - o, " %s", nl.v[i]);
    out("readdir d_type:%s", b);
    names_free(&nl);
  }
  /* Removing all entries makes the directory empty again. */
  int removed = 0;
  for (int i = 0; i < 5000; i++) {
    char name[32];
    snprintf(name, sizeof name, "big/entry-%05d", i);
    if (unlink(name) == 0) removed++;
  }
  out("unlink big/5000: ok=%d", removed);
  plist("readdir big after unlink", "big", 20);
  STEP("opendir missing", try_opendir("missing"));
  STEP("opendir file", try_opendir("one/a"));
}

static void sec_open(void) {
  char buf[64];
  int fd = OPEN("open O_CREAT|O_EXCL new", open("x", O_WRONLY | O_CREAT | O_EXCL, 0666));
  if (fd >= 0) close(fd);
  pstat("x");
  fd = OPEN("open O_CREAT|O_EXCL existing", open("x", O_WRONLY | O_CREAT | O_EXCL, 0666));
  if (fd >= 0) close(fd);
  fd = OPEN("open O_CREAT existing", open("x", O_WRONLY | O_CREAT, 0600));
  if (fd >= 0) close(fd);
  pstat("x");
  fd = OPEN("open O_CREAT 0640", open("m640", O_WRONLY | O_CREAT, 0640));
  if (fd >= 0) close(fd);
  pstat("m640");
  fd = OPEN("open O_CREAT 0777 (umask 022)", open("m777", O_WRONLY | O_CREAT, 0777));
  if (fd >= 0) close(fd);
  pstat("m777");
  fd = OPEN("open O_CREAT 0444 then write", open("m444", O_RDWR | O_CREAT, 0444));
  if (fd >= 0) {
    STEP("write to new 0444 file", write(fd, "ok", 2));
    close(fd);
  }
  pstat("m444");

  puts_("t", "abcdef");
  fd = OPEN("open O_TRUNC", open("t", O_WRONLY | O_TRUNC));
  if (fd >= 0) {
    pfsize("fstat after O_TRUNC", fd);
    STEP("write xy", write(fd, "xy", 2));
    close(fd);
  }
  pcat("t");
  puts_("t2", "abcdef");
  fd = OPEN("open O_RDONLY|O_TRUNC", open("t2", O_RDONLY | O_TRUNC));
  if (fd >= 0) close(fd);
  psize("t2");

  fd = OPEN("open O_APPEND|O_CREAT", open("a", O_WRONLY | O_CREAT | O_APPEND, 0644));
  if (fd >= 0) {
    STEP("write hello", write(fd, "hello ", 6));
    STEP("lseek 0", lseek(fd, 0, SEEK_SET));
    STEP("write world", write(fd, "world\n", 6));
    STEP("lseek cur after append", lseek(fd, 0, SEEK_CUR));
    close(fd);
  }
  fd = OPEN("open a rdonly", open("a", O_RDONLY));
  if (fd >= 0) {
    DATA("read-after-append", read(fd, buf, sizeof buf), buf);
    close(fd);
  }
  /* O_APPEND writes go to the current end even when another fd extended the file. */
  int fa = OPEN("open a O_APPEND", open("a", O_WRONLY | O_APPEND));
  int fb = OPEN("open a plain", open("a", O_WRONLY));
  if (fa >= 0 && fb >= 0) {
    STEP("pwrite plain at 12", pwrite(fb, "EXT", 3, 12));
    STEP("write append", write(fa, "END", 3));
    STEP("pwrite on O_APPEND at 0 (appends)", pwrite(fa, "P", 1, 0));
  }
  if (fa >= 0) close(fa);
  if (fb >= 0) close(fb);
  pcat("a");

  setup_mkdir("d", 0755);
  fd = OPEN("open dir O_WRONLY", open("d", O_WRONLY));
  if (fd >= 0) close(fd);
  fd = OPEN("open dir O_RDONLY", open("d", O_RDONLY));
  if (fd >= 0) {
    DATA("read on dir fd", read(fd, buf, sizeof buf), buf);
    close(fd);
  }
  fd = OPEN("open missing", open("missing", O_RDONLY));
  if (fd >= 0) close(fd);
  fd = OPEN("open missing-dir/x O_CREAT", open("missing-dir/x", O_WRONLY | O_CREAT, 0644));
  if (fd >= 0) close(fd);
  fd = OPEN("open O_CREAT|O_DIRECTORY", open("cd", O_RDONLY | O_CREAT | O_DIRECTORY, 0755));
  if (fd >= 0) close(fd);
  plstat("cd");
  fd = OPEN("open x rdonly", open("x", O_RDONLY));
  if (fd >= 0) {
    STEP("write on O_RDONLY fd", write(fd, "z", 1));
    close(fd);
  }
  fd = OPEN("open x wronly", open("x", O_WRONLY));
  if (fd >= 0) {
    STEP("read on O_WRONLY fd", read(fd, buf, 1));
    close(fd);
  }
  /* O_CREAT through a dangling symlink creates the target; with O_EXCL it fails. */
  if (symlink("created-via-link", "dl") < 0) out("setup symlink: -1 %s", ename(errno));
  fd = OPEN("open dangling O_CREAT|O_EXCL", open("dl", O_WRONLY | O_CREAT | O_EXCL, 0644));
  if (fd >= 0) close(fd);
  fd = OPEN("open dangling O_CREAT", open("dl", O_WRONLY | O_CREAT, 0644));
  if (fd >= 0) close(fd);
  pstat("created-via-link");
  STEP("close twice (2nd)", close(fd >= 0 ? fd : 12345));
  plist("list .", ".", 20);
}

static void sec_odirect(void) {
  enum { SZ = 16384 };
  void *wb = NULL, *rb = NULL;
  if (posix_memalign(&wb, 4096, SZ) || posix_memalign(&rb, 4096, SZ)) {
    out("posix_memalign: failed");
    free(wb);
    return;
  }
  pattern(wb, SZ, 7);
  int fd = OPEN("open O_DIRECT|O_CREAT", open("d", O_RDWR | O_CREAT | O_DIRECT, 0644));
  if (fd >= 0) {
    STEP("pwrite 16384 @0 aligned", pwrite(fd, wb, SZ, 0));
    memset(rb, 0, SZ);
    STEP("pread 16384 @0 aligned", pread(fd, rb, SZ, 0));
    out("O_DIRECT read matches: %s", yesno(!memcmp(wb, rb, SZ)));
    STEP("pwrite 4096 @8192 aligned", pwrite(fd, (char *)wb + 4096, 4096, 8192));
    STEP("pread past EOF aligned", pread(fd, rb, 4096, 65536));
    STEP("fsync", fsync(fd));
    close(fd);
  }
  unsigned char *check = malloc(SZ);
  if (check) {
    ssize_t n = slurp("d", check, SZ);
    int ok = n == SZ && !memcmp(check, wb, 8192) && !memcmp(check + 8192, (char *)wb + 4096, 4096) &&
             !memcmp(check + 12288, (char *)wb + 12288, 4096);
    out("buffered read after O_DIRECT write: %zd match=%s", n, yesno(ok));
    free(check);
  }
  /* Buffered write, then an O_DIRECT read must see it. */
  put("b", wb, SZ, 0644);
  fd = OPEN("open b O_DIRECT", open("b", O_RDONLY | O_DIRECT));
  if (fd >= 0) {
    memset(rb, 0, SZ);
    STEP("pread 16384 O_DIRECT", pread(fd, rb, SZ, 0));
    out("O_DIRECT read of buffered data matches: %s", yesno(!memcmp(wb, rb, SZ)));
    close(fd);
  }
  free(wb);
  free(rb);
}

static void sec_tmpfile(void) {
  int fd = OPEN("open O_TMPFILE", open(".", O_TMPFILE | O_RDWR, 0600));
  if (fd >= 0) {
    STEP("write", write(fd, "tmpdata\n", 8));
    pfsize("fstat tmpfile", fd);
    plist("list . with tmpfile", ".", 20);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    STEP("linkat /proc/self/fd -> named", linkat(AT_FDCWD, proc, AT_FDCWD, "named", AT_SYMLINK_FOLLOW));
    pstat("named");
    pfsize("fstat tmpfile after link", fd);
    pcat("named");
    STEP("pwrite via tmpfile fd", pwrite(fd, "TMP", 3, 0));
    pcat("named");
    close(fd);
  }
  fd = OPEN("open O_TMPFILE|O_EXCL", open(".", O_TMPFILE | O_RDWR | O_EXCL, 0600));
  if (fd >= 0) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    STEP("linkat O_EXCL tmpfile", linkat(AT_FDCWD, proc, AT_FDCWD, "named2", AT_SYMLINK_FOLLOW));
    close(fd);
  }
  fd = OPEN("open O_TMPFILE O_RDONLY", open(".", O_TMPFILE | O_RDONLY, 0600));
  if (fd >= 0) close(fd);
  plist("list .", ".", 20);
}

static void sec_rw(void) {
  char buf[128];
  int fd = OPEN("open f rw", open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));
  if (fd >= 0) {
    STEP("write", write(fd, "hello world\n", 12));
    STEP("lseek cur", lseek(fd, 0, SEEK_CUR));
    DATA("read at EOF", read(fd, buf, sizeof buf), buf);
    STEP("lseek 0", lseek(fd, 0, SEEK_SET));
    DATA("read", read(fd, buf, sizeof buf), buf);
    DATA("pread 5@6", pread(fd, buf, 5, 6), buf);
    DATA("pread 100@10 (short)", pread(fd, buf, 100, 10), buf);
    DATA("pread @12 (EOF)", pread(fd, buf, 10, 12), buf);
    DATA("pread @1000 (past EOF)", pread(fd, buf, 10, 1000), buf);
    DATA("read count 0", read(fd, buf, 0), buf);
    STEP("pwrite XY@20", pwrite(fd, "XY", 2, 20));
    pfsize("fstat", fd);
    DATA("pread 64@0", pread(fd, buf, 64, 0), buf);
    STEP("pwrite overwrite @0", pwrite(fd, "J", 1, 0));
    DATA("pread 5@0", pread(fd, buf, 5, 0), buf);
    struct iovec wv[3] = {{"ab", 2}, {"cde", 3}, {"f\n", 2}};
    STEP("pwritev 3 iov @22", pwritev(fd, wv, 3, 22));
    char r1[4], r2[16];
    struct iovec rv[2] = {{r1, sizeof r1}, {r2, sizeof r2}};
    errno = 0;
    ssize_t n = preadv(fd, rv, 2, 18);
    out("preadv @18: %zd %s %s", n, Q(r1, n < 0 ? -1 : n < 4 ? n : 4), Q(r2, n > 4 ? n - 4 : 0));
    pstat("f");
    close(fd);
  }
  /* Coherence between two open file descriptions without close. */
  int f1 = OPEN("open c1 rw", open("c", O_RDWR | O_CREAT, 0644));
  int f2 = OPEN("open c2 rd", open("c", O_RDONLY));
  if (f1 >= 0 && f2 >= 0) {
    STEP("write c1", write(f1, "abc", 3));
    DATA("read c2", pread(f2, buf, sizeof buf, 0), buf);
    psize("c");
    STEP("pwrite c1 @1", pwrite(f1, "Z", 1, 1));
    DATA("read c2", pread(f2, buf, sizeof buf, 0), buf);
  }
  if (f1 >= 0) close(f1);
  if (f2 >= 0) close(f2);

  /* 3 MiB in one write, then one read on a new fd, and a few odd-sized ranges. */
  size_t sz = 3 * MIB;
  unsigned char *w = malloc(sz), *r = malloc(sz);
  if (w && r) {
    pattern(w, sz, 3);
    fd = OPEN("open big", open("big", O_RDWR | O_CREAT | O_TRUNC, 0644));
    if (fd >= 0) {
      STEP("write 3MiB", write(fd, w, sz));
      close(fd);
    }
    psize("big");
    fd = OPEN("open big rdonly", open("big", O_RDONLY));
    if (fd >= 0) {
      memset(r, 0, sz);
      ssize_t got = 0, k;
      while ((size_t)got < sz && (k = read(fd, r + got, sz - (size_t)got)) > 0) got += k;
      out("read 3MiB: %zd match=%s sum=%016" PRIx64, got, yesno(got == (ssize_t)sz && !memcmp(w, r, sz)),
          fnv(FNV0, r, (size_t)got));
      memset(r, 0, sz);
      ssize_t n2 = pread_all(fd, r, 100000, 1234567);
      out("pread 100000@1234567: %zd match=%s", n2, yesno(n2 == 100000 && !memcmp(r, w + 1234567, 100000)));
      n2 = pread_all(fd, r, 10000, (off_t)sz - 5000);
      out("pread 10000@end-5000: %zd match=%s", n2, yesno(n2 == 5000 && !memcmp(r, w + sz - 5000, 5000)));
      close(fd);
    }
    /* Many small unaligned writes patched into the middle. */
    fd = OPEN("open big rw", open("big", O_RDWR));
    if (fd >= 0) {
      int ok = 1;
      for (int i = 0; i < 100; i++) {
        off_t off = (off_t)(i * 30011 + 17);
        memset(w + off, 'a' + i % 26, 13);
        if (pwrite(fd, w + off, 13, off) != 13) ok = 0;
      }
      out("100 small pwrites: ok=%s", yesno(ok));
      close(fd);
    }
    ssize_t n3 = slurp("big", r, sz);
    out("reread 3MiB: %zd match=%s", n3, yesno(n3 == (ssize_t)sz && !memcmp(w, r, sz)));
  }
  free(w);
  free(r);
  /* Write past EOF leaves a zero-filled gap. */
  fd = OPEN("open gap", open("gap", O_RDWR | O_CREAT | O_TRUNC, 0644));
  if (fd >= 0) {
    STEP("pwrite @100000", pwrite(fd, "end", 3, 100000));
    unsigned char *g = calloc(1, 100003);
    if (g) {
      ssize_t n = pread_all(fd, g, 100003, 0);
      out("read gap: %zd zeros=%s tail=%s", n, yesno(n == 100003 && allzero(g, 100000)), Q(g + 100000, n == 100003 ? 3 : -1));
      free(g);
    }
    close(fd);
  }
}

static void sec_sync(void) {
  int fd = OPEN("open f", open("f", O_RDWR | O_CREAT, 0644));
  if (fd >= 0) {
    STEP("write", write(fd, "sync me\n", 8));
    STEP("fsync", fsync(fd));
    STEP("pwrite", pwrite(fd, "S", 1, 0));
    STEP("fdatasync", fdatasync(fd));
    STEP("sync_file_range", sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
    STEP("syncfs", syncfs(fd));
    STEP("close", close(fd));
  }
  fd = OPEN("open f rdonly", open("f", O_RDONLY));
  if (fd >= 0) {
    STEP("fsync on O_RDONLY fd", fsync(fd));
    STEP("fdatasync on O_RDONLY fd", fdatasync(fd));
    close(fd);
  }
  fd = OPEN("open . dir", open(".", O_RDONLY | O_DIRECTORY));
  if (fd >= 0) {
    STEP("fsync dir", fsync(fd));
    close(fd);
  }
  STEP("fsync closed fd", fsync(12345));
  pcat("f");
}

static void sec_mkdir(void) {
  STEP("mkdir d", mkdir("d", 0755));
  pstat("d");
  STEP("mkdir d existing", mkdir("d", 0755));
  STEP("mkdir d/sub", mkdir("d/sub", 0755));
  pstat("d");
  STEP("mkdir d/sub2 0700", mkdir("d/sub2", 0700));
  pstat("d/sub2");
  STEP("mkdir s 01777 (umask 022)", mkdir("s", 01777));
  pstat("s");
  STEP("mkdir g 02775 (umask 022)", mkdir("g", 02775));
  pstat("g");
  STEP("mkdir missing/x", mkdir("missing/x", 0755));
  puts_("f", "f");
  STEP("mkdir f (file exists)", mkdir("f", 0755));
  STEP("mkdir f/x", mkdir("f/x", 0755));
  if (symlink("d", "sl") < 0) out("setup symlink: -1 %s", ename(errno));
  STEP("mkdir sl (symlink exists)", mkdir("sl", 0755));
  STEP("mkdir d/ (trailing slash)", mkdir("d/", 0755));
  STEP("mkdir t/ (trailing slash, new)", mkdir("t/", 0755));
  pstat("t");
  puts_("d/file", "x");
  STEP("rmdir d (non-empty)", rmdir("d"));
  STEP("rmdir missing", rmdir("missing"));
  STEP("rmdir f (file)", rmdir("f"));
  STEP("rmdir sl (symlink)", rmdir("sl"));
  STEP("rmdir . ", rmdir("."));
  STEP("rmdir d/sub/..", rmdir("d/sub/.."));
  STEP("unlink d/sub (dir)", unlink("d/sub"));
  STEP("rmdir d/sub", rmdir("d/sub"));
  STEP("rmdir d/sub2", rmdir("d/sub2"));
  pstat("d");
  STEP("unlink d/file", unlink("d/file"));
  STEP("rmdir d", rmdir("d"));
  pstat("d");
  STEP("rmdir t/ (trailing slash)", rmdir("t/"));
  plist("list .", ".", 20);
}

static void sec_unlink(void) {
  char buf[64];
  puts_("f", "f");
  STEP("unlink f", unlink("f"));
  pstat("f");
  STEP("unlink f again", unlink("f"));
  STEP("unlink missing/x", unlink("missing/x"));
  if (symlink("target", "sl") < 0) out("setup symlink: -1 %s", ename(errno));
  puts_("target", "t");
  STEP("unlink sl (removes link only)", unlink("sl"));
  pstat("target");
  STEP("unlink target", unlink("target"));

  /* An unlinked file stays usable through its open fd. */
  int fd = OPEN("open g rw", open("g", O_RDWR | O_CREAT | O_TRUNC, 0644));
  if (fd >= 0) {
    STEP("write before", write(fd, "before\n", 7));
    int fd2 = OPEN("open g again rdonly", open("g", O_RDONLY));
    STEP("unlink g (open)", unlink("g"));
    pstat("g");
    pfstat("fstat unlinked", fd);
    STEP("pwrite after unlink", pwrite(fd, "after\n", 6, 7));
    DATA("pread after unlink", pread(fd, buf, sizeof buf, 0), buf);
    if (fd2 >= 0) DATA("pread via 2nd fd", pread(fd2, buf, sizeof buf, 0), buf);
    STEP("fchmod unlinked 0600", fchmod(fd, 0600));
    STEP("ftruncate unlinked 3", ftruncate(fd, 3));
    pfstat("fstat unlinked", fd);
    STEP("fsync unlinked", fsync(fd));
    plist("list . while unlinked file open", ".", 20);
    /* A new file under the same name is independent of the open one. */
    puts_("g", "new");
    pcat("g");
    DATA("pread old fd", pread(fd, buf, sizeof buf, 0), buf);
    if (fd2 >= 0) {
      close(fd2);
      DATA("pread after closing other fd", pread(fd, buf, sizeof buf, 0), buf);
    }
    close(fd);
  }
  plist("list . after close", ".", 20);
  STEP("unlink g", unlink("g"));
  plist("list . end", ".", 20);
}

static long rn2(const char *a, const char *b, unsigned flags) {
  return syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static void sec_rename(void) {
  char buf[64];
  puts_("a", "A");
  STEP("rename a b", rename("a", "b"));
  pstat("a");
  pcat("b");
  puts_("c", "C");
  STEP("rename b c (over file)", rename("b", "c"));
  pcat("c");
  pstat("b");
  STEP("rename c c (self)", rename("c", "c"));
  pcat("c");
  STEP("rename missing x", rename("missing", "x"));

  /* Renaming over a file that is open: the old fd keeps the old data. */
  puts_("x", "X");
  int fd = OPEN("open x", open("x", O_RDONLY));
  puts_("y", "Y");
  STEP("rename y x (x open)", rename("y", "x"));
  if (fd >= 0) {
    DATA("read old x fd", pread(fd, buf, sizeof buf, 0), buf);
    pfstat("fstat old x fd", fd);
    close(fd);
  }
  pcat("x");
  /* Renaming a file that is open: writes through the fd land in the new name. */
  fd = OPEN("open r1 rw", open("r1", O_RDWR | O_CREAT, 0644));
  STEP("rename r1 r2 (open)", rename("r1", "r2"));
  if (fd >= 0) {
    STEP("write via fd", write(fd, "moved", 5));
    close(fd);
  }
  pcat("r2");

  setup_mkdir("d1", 0755);
  puts_("d1/in", "in");
  setup_mkdir("d2", 0755);
  STEP("rename d1 d2 (dir over empty dir)", rename("d1", "d2"));
  pstat("d1");
  plist("list d2", "d2", 20);
  setup_mkdir("d3", 0755);
  puts_("d3/a", "a");
  setup_mkdir("d4", 0755);
  puts_("d4/b", "b");
  STEP("rename d3 d4 (dir over non-empty)", rename("d3", "d4"));
  puts_("file", "file");
  STEP("rename file d2 (file over dir)", rename("file", "d2"));
  STEP("rename d2 file (dir over file)", rename("d2", "file"));
  STEP("rename d2 d2/sub (into itself)", rename("d2", "d2/sub"));
  STEP("rename . x", rename(".", "x2"));

  /* Moving directories between parents updates the parents' link counts. */
  setup_mkdir("p1", 0755);
  setup_mkdir("p2", 0755);
  setup_mkdir("p1/sub", 0755);
  puts_("p1/sub/f", "deep");
  STEP("rename p1/sub p2/sub", rename("p1/sub", "p2/sub"));
  pstat("p1");
  pstat("p2");
  pcat("p2/sub/f");
  STEP("rename p2/sub/f p1/f (across dirs)", rename("p2/sub/f", "p1/f"));
  pcat("p1/f");

  /* Hard links to the same inode: rename is a successful no-op. */
  puts_("h1", "h");
  if (link("h1", "h2") < 0) out("setup link: -1 %s", ename(errno));
  STEP("rename h1 h2 (same inode)", rename("h1", "h2"));
  pstat("h1");
  pstat("h2");

  /* renameat2 flags. */
  puts_("n1", "N1");
  puts_("n2", "N2");
  STEP("renameat2 NOREPLACE n1 n2 (exists)", rn2("n1", "n2", RENAME_NOREPLACE));
  pcat("n1");
  pcat("n2");
  STEP("renameat2 NOREPLACE n1 n3 (free)", rn2("n1", "n3", RENAME_NOREPLACE));
  pstat("n1");
  pcat("n3");
  STEP("renameat2 EXCHANGE n2 n3", rn2("n2", "n3", RENAME_EXCHANGE));
  pcat("n2");
  pcat("n3");
  setup_mkdir("ed", 0755);
  puts_("ed/child", "c");
  puts_("ef", "F");
  STEP("renameat2 EXCHANGE ef ed (file<->dir)", rn2("ef", "ed", RENAME_EXCHANGE));
  pstat("ef");
  pstat("ed");
  pcat("ed");
  plist("list ef", "ef", 20);
  STEP("renameat2 EXCHANGE ef missing", rn2("ef", "missing", RENAME_EXCHANGE));
  STEP("renameat2 NOREPLACE|EXCHANGE", rn2("ef", "ed", RENAME_NOREPLACE | RENAME_EXCHANGE));
  plist("list . end", ".", 30);
}

static void sec_link(void) {
  char buf[64];
  puts_("f", "data");
  int fd = OPEN("open f", open("f", O_RDWR));
  STEP("link f g", link("f", "g"));
  pstat("f");
  pstat("g");
  if (fd >= 0) pfstat("fstat f fd after link", fd);
  psame("f", "g");
  STEP("link g h", link("g", "h"));
  pstat("f");
  psame("f", "h");
  puts_("other", "o");
  psame("f", "other");
  if (fd >= 0) {
    STEP("pwrite via f fd", pwrite(fd, "DATA", 4, 0));
    pcat("h");
  }
  puts_("g", "via-g");
  pcat("f");
  STEP("unlink f", unlink("f"));
  pstat("g");
  if (fd >= 0) {
    pfstat("fstat fd after unlink f", fd);
    DATA("pread fd", pread(fd, buf, sizeof buf, 0), buf);
    close(fd);
  }
  STEP("link missing x", link("missing", "x"));
  STEP("link g h (exists)", link("g", "h"));
  setup_mkdir("d", 0755);
  STEP("link d dl (dir)", link("d", "dl"));
  STEP("link g d/g2 (other dir)", link("g", "d/g2"));
  psame("g", "d/g2");
  pstat("h");
  if (symlink("g", "sl") < 0) out("setup symlink: -1 %s", ename(errno));
  STEP("link sl sl2 (link to symlink)", link("sl", "sl2"));
  plstat("sl2");
  plstat("sl");
  STEP("linkat sl sl3 AT_SYMLINK_FOLLOW", linkat(AT_FDCWD, "sl", AT_FDCWD, "sl3", AT_SYMLINK_FOLLOW));
  plstat("sl3");
  psame("g", "sl3");
  STEP("rename h h-renamed", rename("h", "h-renamed"));
  psame("g", "h-renamed");
  pstat("g");
  plist("list .", ".", 20);
}

static void sec_symlink(void) {
  char buf[5000];
  STEP("symlink target s1", symlink("target", "s1"));
  DATA("readlink s1", readlink("s1", buf, sizeof buf), buf);
  plstat("s1");
  pstat("s1");
  pcat("s1");
  int fd = OPEN("open s1 O_CREAT|O_EXCL (dangling)", open("s1", O_WRONLY | O_CREAT | O_EXCL, 0644));
  if (fd >= 0) close(fd);
  puts_("target", "through the link");
  pstat("s1");
  pcat("s1");
  DATA("readlink s1 bufsize 3", readlink("s1", buf, 3), buf);
  DATA("readlink target (not a link)", readlink("target", buf, sizeof buf), buf);
  DATA("readlink missing", readlink("missing", buf, sizeof buf), buf);
  STEP("symlink x s1 (exists)", symlink("x", "s1"));
  STEP("symlink empty target", symlink("", "s-empty"));

  char *longt = malloc(4097);
  if (longt) {
    for (int i = 0; i < 1000; i++) longt[i] = (char)('a' + i % 26);
    longt[1000] = 0;
    STEP("symlink 1000-byte target", symlink(longt, "s1000"));
    errno = 0;
    ssize_t n = readlink("s1000", buf, sizeof buf);
    if (n < 0) out("readlink s1000: -1 %s", ename(errno));
    else out("readlink s1000: %zd same=%s", n, yesno(n == 1000 && !memcmp(buf, longt, 1000)));
    plstat("s1000");
    memset(longt, 'b', 4095);
    longt[4095] = 0;
    STEP("symlink 4095-byte target", symlink(longt, "s4095"));
    n = readlink("s4095", buf, sizeof buf);
    if (n < 0) out("readlink s4095: -1 %s", ename(errno));
    else out("readlink s4095: %zd same=%s", n, yesno(n == 4095 && !memcmp(buf, longt, 4095)));
    longt[4095] = 'b';
    longt[4096] = 0;
    STEP("symlink 4096-byte target", symlink(longt, "s4096"));
    free(longt);
  }
  setup_mkdir("d", 0755);
  puts_("d/file", "in d");
  STEP("symlink d sd", symlink("d", "sd"));
  pcat("sd/file");
  pstat("sd");
  plist("list sd", "sd", 20);
  STEP("symlink ../target d/up", symlink("../target", "d/up"));
  pcat("d/up");
  STEP("symlink /nonexistent/abs sabs", symlink("/nonexistent/abs", "sabs"));
  DATA("readlink sabs", readlink("sabs", buf, sizeof buf), buf);
  pstat("sabs");
  STEP("symlink dangling sdang", symlink("no-such-file", "sdang"));
  pstat("sdang");
  plstat("sdang");
  STEP("symlink chain s2->s1", symlink("s1", "s2"));
  pcat("s2");
  STEP("symlink name with slash target", symlink("d/file", "sfile"));
  pcat("sfile");
  STEP("readlinkat AT_FDCWD d/up", readlinkat(AT_FDCWD, "d/up", buf, sizeof buf));
  plist("list .", ".", 20);
}

static void sec_special(void) {
  char buf[16];
  STEP("mkfifo p 0644", mkfifo("p", 0644));
  pstat("p");
  STEP("mkfifo p existing", mkfifo("p", 0644));
  int w0 = OPEN("open fifo O_WRONLY|O_NONBLOCK (no reader)", open("p", O_WRONLY | O_NONBLOCK));
  if (w0 >= 0) close(w0);
  int r = OPEN("open fifo O_RDONLY|O_NONBLOCK", open("p", O_RDONLY | O_NONBLOCK));
  int w = OPEN("open fifo O_WRONLY|O_NONBLOCK", open("p", O_WRONLY | O_NONBLOCK));
  if (r >= 0) {
    DATA("read empty fifo", read(r, buf, sizeof buf), buf);
  }
  if (w >= 0) {
    STEP("write fifo", write(w, "abc", 3));
    STEP("lseek fifo", lseek(w, 0, SEEK_SET));
  }
  if (r >= 0) DATA("read fifo", read(r, buf, sizeof buf), buf);
  if (w >= 0) close(w);
  if (r >= 0) {
    DATA("read fifo after writer closed", read(r, buf, sizeof buf), buf);
    close(r);
  }
  pstat("p");
  STEP("mknod S_IFIFO 0600", mknod("n", S_IFIFO | 0600, 0));
  pstat("n");
  STEP("mknod S_IFREG 0640", mknod("r", S_IFREG | 0640, 0));
  pstat("r");
  STEP("mknod S_IFCHR 1:3", mknod("c", S_IFCHR | 0644, makedev(1, 3)));
  pstat("c");
  STEP("mknod S_IFBLK 7:0", mknod("b", S_IFBLK | 0600, makedev(7, 0)));
  pstat("b");
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s >= 0) {
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, "sock");
    STEP("bind unix socket", bind(s, (struct sockaddr *)&sun, sizeof sun));
    pstat("sock");
    STEP("bind unix socket again", bind(s, (struct sockaddr *)&sun, sizeof sun));
    close(s);
    int s2 = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s2 >= 0) {
      STEP("bind existing socket path", bind(s2, (struct sockaddr *)&sun, sizeof sun));
      close(s2);
    }
  }
  plist("list .", ".", 20);
  STEP("unlink p", unlink("p"));
  STEP("unlink sock", unlink("sock"));
  STEP("unlink c", unlink("c"));
}

static void sec_statfs(void) {
  struct statvfs sv;
  errno = 0;
  if (statvfs(".", &sv) < 0) out("statvfs: -1 %s", ename(errno));
  else out("statvfs: ok namemax=%lu", (unsigned long)sv.f_namemax);
  struct statfs sf;
  if (statfs(".", &sf) < 0) out("statfs: -1 %s", ename(errno));
  else out("statfs: ok namelen=%ld", (long)sf.f_namelen);
  int fd = open(".", O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    if (fstatvfs(fd, &sv) < 0) out("fstatvfs: -1 %s", ename(errno));
    else out("fstatvfs: ok namemax=%lu", (unsigned long)sv.f_namemax);
    close(fd);
  }
  if (statvfs("missing", &sv) < 0) out("statvfs missing: -1 %s", ename(errno));
  else out("statvfs missing: ok");
}

static void plistxattr(const char *label, const char *path, int nofollow) {
  char buf[4096];
  errno = 0;
  ssize_t n = nofollow ? llistxattr(path, buf, sizeof buf) : listxattr(path, buf, sizeof buf);
  if (n < 0) {
    out("%s: -1 %s", label, ename(errno));
    return;
  }
  struct names nl = {0};
  for (ssize_t i = 0; i < n;) {
    names_add(&nl, buf + i);
    i += (ssize_t)strlen(buf + i) + 1;
  }
  if (nl.n > 1) qsort(nl.v, nl.n, sizeof *nl.v, cmpstr);
  char *b = join_names(&nl, nl.n);
  out("%s: %zd%s", label, n, b);
  free(b);
  names_free(&nl);
}

static void sec_xattr(void) {
  char buf[4096];
  puts_("f", "x");
  STEP("setxattr user.a", setxattr("f", "user.a", "1", 1, 0));
  DATA("getxattr user.a", getxattr("f", "user.a", buf, sizeof buf), buf);
  STEP("getxattr user.a size query", getxattr("f", "user.a", NULL, 0));
  STEP("setxattr user.b", setxattr("f", "user.b", "value-b", 7, 0));
  plistxattr("listxattr", "f", 0);
  STEP("listxattr size query", listxattr("f", NULL, 0));
  STEP("listxattr small buffer", listxattr("f", buf, 3));
  STEP("getxattr small buffer", getxattr("f", "user.b", buf, 3));
  STEP("setxattr XATTR_CREATE existing", setxattr("f", "user.a", "2", 1, XATTR_CREATE));
  STEP("setxattr XATTR_REPLACE missing", setxattr("f", "user.zz", "2", 1, XATTR_REPLACE));
  STEP("setxattr XATTR_REPLACE existing", setxattr("f", "user.a", "22", 2, XATTR_REPLACE));
  DATA("getxattr user.a", getxattr("f", "user.a", buf, sizeof buf), buf);
  STEP("setxattr XATTR_CREATE new", setxattr("f", "user.c", "c", 1, XATTR_CREATE));
  STEP("removexattr user.a", removexattr("f", "user.a"));
  DATA("getxattr removed", getxattr("f", "user.a", buf, sizeof buf), buf);
  STEP("removexattr missing", removexattr("f", "user.a"));
  STEP("setxattr empty value", setxattr("f", "user.empty", "", 0, 0));
  DATA("getxattr empty value", getxattr("f", "user.empty", buf, sizeof buf), buf);
  char big[2000];
  pattern((unsigned char *)big, sizeof big, 11);
  STEP("setxattr 2000-byte value", setxattr("f", "user.big", big, sizeof big, 0));
  errno = 0;
  ssize_t n = getxattr("f", "user.big", buf, sizeof buf);
  if (n < 0) out("getxattr user.big: -1 %s", ename(errno));
  else out("getxattr user.big: %zd same=%s", n, yesno(n == 2000 && !memcmp(buf, big, 2000)));
  STEP("setxattr binary value", setxattr("f", "user.bin", "\0\xff\n", 3, 0));
  DATA("getxattr binary value", getxattr("f", "user.bin", buf, sizeof buf), buf);
  plistxattr("listxattr", "f", 0);
  STEP("getxattr missing file", getxattr("missing", "user.a", buf, sizeof buf));
  char longname[300];
  memset(longname, 'n', sizeof longname);
  memcpy(longname, "user.", 5);
  longname[sizeof longname - 1] = 0;
  STEP("setxattr 298-byte name", setxattr("f", longname, "v", 1, 0));
  STEP("setxattr unknown namespace", setxattr("f", "foo.bar", "v", 1, 0));
  STEP("setxattr trusted.t (root)", setxattr("f", "trusted.t", "t", 1, 0));
  DATA("getxattr trusted.t", getxattr("f", "trusted.t", buf, sizeof buf), buf);

  int fd = OPEN("open f", open("f", O_RDONLY));
  if (fd >= 0) {
    STEP("fsetxattr user.fd", fsetxattr(fd, "user.fd", "FD", 2, 0));
    DATA("fgetxattr user.fd", fgetxattr(fd, "user.fd", buf, sizeof buf), buf);
    STEP("fremovexattr user.fd", fremovexattr(fd, "user.fd"));
    close(fd);
  }
  setup_mkdir("d", 0755);
  STEP("setxattr dir user.d", setxattr("d", "user.d", "D", 1, 0));
  DATA("getxattr dir user.d", getxattr("d", "user.d", buf, sizeof buf), buf);
  plistxattr("listxattr d", "d", 0);
  if (symlink("f", "sl") < 0) out("setup symlink: -1 %s", ename(errno));
  STEP("lsetxattr symlink user.l", lsetxattr("sl", "user.l", "L", 1, 0));
  DATA("getxattr via symlink (follows)", getxattr("sl", "user.b", buf, sizeof buf), buf);
  DATA("lgetxattr symlink user.b", lgetxattr("sl", "user.b", buf, sizeof buf), buf);
  plistxattr("llistxattr sl", "sl", 1);
  /* xattrs survive rename and hard links. */
  STEP("rename f f2", rename("f", "f2"));
  DATA("getxattr after rename", getxattr("f2", "user.b", buf, sizeof buf), buf);
  STEP("link f2 f3", link("f2", "f3"));
  DATA("getxattr via link", getxattr("f3", "user.b", buf, sizeof buf), buf);
}

/* Inodes with no xattrs: the mount answers these from what it learned (fs_xattr.c), so every
 * answer is asked twice, and again after a change through the mount. */
static void xattr_none_ask(const char *label, const char *path) {
  static const char *const names[] = {"security.selinux", "system.posix_acl_access",
                                      "system.posix_acl_default", "security.capability",
                                      "user.none", "trusted.none", "foo.bar"};
  char buf[256], l[128];
  for (int round = 0; round < 2; round++)
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
      snprintf(l, sizeof l, "%s lgetxattr %s #%d", label, names[i], round);
      DATA(l, lgetxattr(path, names[i], buf, sizeof buf), buf);
      snprintf(l, sizeof l, "%s lgetxattr %s size query #%d", label, names[i], round);
      STEP(l, lgetxattr(path, names[i], NULL, 0));
    }
  snprintf(l, sizeof l, "%s llistxattr", label);
  plistxattr(l, path, 1);
  snprintf(l, sizeof l, "%s llistxattr size query", label);
  STEP(l, llistxattr(path, NULL, 0));
}

static void sec_xattr_none(void) {
  char buf[256];
  puts_("f", "x");
  setup_mkdir("d", 0755);
  if (symlink("f", "sl") < 0) out("setup symlink: -1 %s", ename(errno));
  if (mkfifo("fifo", 0644) < 0) out("setup mkfifo: -1 %s", ename(errno));
  xattr_none_ask("file", "f");
  xattr_none_ask("dir", "d");
  xattr_none_ask("symlink", "sl");
  xattr_none_ask("fifo", "fifo");
  STEP("setxattr user.a", setxattr("f", "user.a", "1", 1, 0));
  DATA("getxattr user.a after set", getxattr("f", "user.a", buf, sizeof buf), buf);
  xattr_none_ask("file with user.a", "f");
  STEP("removexattr user.a", removexattr("f", "user.a"));
  xattr_none_ask("file, user.a removed", "f");
  STEP("setxattr dir trusted.t", setxattr("d", "trusted.t", "T", 1, 0));
  xattr_none_ask("dir with trusted.t", "d");
  STEP("chmod f 0600", chmod("f", 0600));
  xattr_none_ask("file after chmod", "f");
}

static void sec_fallocate(void) {
  unsigned char *buf = malloc(65536);
  if (!buf) return;
  int fd = OPEN("open f", open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));
  if (fd < 0) {
    free(buf);
    return;
  }
  STEP("write abc", write(fd, "abc", 3));
  STEP("fallocate mode 0 0..65536", fallocate(fd, 0, 0, 65536));
  pfsize("fstat", fd);
  ssize_t n = pread_all(fd, buf, 65536, 0);
  out("read: %zd head=%s rest-zero=%s", n, Q(buf, n >= 3 ? 3 : -1), yesno(n == 65536 && allzero(buf + 3, 65533)));
  STEP("fallocate KEEP_SIZE 65536+65536", fallocate(fd, FALLOC_FL_KEEP_SIZE, 65536, 65536));
  pfsize("fstat", fd);
  STEP("fallocate mode 0 inside file", fallocate(fd, 0, 100, 1000));
  pfsize("fstat", fd);
  memset(buf, 0xab, 65536);
  STEP("pwrite 65536 x 0xab", pwrite(fd, buf, 65536, 0));
  STEP("fallocate PUNCH_HOLE|KEEP_SIZE 4096+8192", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192));
  pfsize("fstat", fd);
  n = pread_all(fd, buf, 65536, 0);
  out("read after punch: %zd hole-zero=%s before-intact=%s after-intact=%s", n, yesno(n == 65536 && allzero(buf + 4096, 8192)),
      yesno(allbyte(buf, 4096, 0xab)), yesno(n == 65536 && allbyte(buf + 12288, 65536 - 12288, 0xab)));
  STEP("fallocate PUNCH_HOLE|KEEP_SIZE 30000+50 (unaligned)",
       fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 30000, 50));
  n = pread_all(fd, buf, 65536, 0);
  out("read after unaligned punch: %zd zero=%s edges-intact=%s", n, yesno(n == 65536 && allzero(buf + 30000, 50)),
      yesno(n == 65536 && buf[29999] == 0xab && buf[30050] == 0xab));
  STEP("fallocate PUNCH_HOLE without KEEP_SIZE", fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096));
  STEP("fallocate PUNCH_HOLE past EOF", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100000, 4096));
  pfsize("fstat", fd);
  STEP("fallocate ZERO_RANGE 40960+4096", fallocate(fd, FALLOC_FL_ZERO_RANGE, 40960, 4096));
  n = pread_all(fd, buf, 65536, 0);
  out("read after zero-range: %zd zero=%s", n, yesno(n == 65536 && allzero(buf + 40960, 4096)));
  STEP("fallocate len 0", fallocate(fd, 0, 0, 0));
  STEP("fallocate negative offset", fallocate(fd, 0, -1, 10));
  STEP("posix_fallocate to 100000 (returns errno)", -posix_fallocate(fd, 0, 100000));
  pfsize("fstat", fd);
  close(fd);
  fd = OPEN("open f rdonly", open("f", O_RDONLY));
  if (fd >= 0) {
    STEP("fallocate on O_RDONLY fd", fallocate(fd, 0, 0, 4096));
    close(fd);
  }
  fd = OPEN("open f O_APPEND", open("f", O_WRONLY | O_APPEND));
  if (fd >= 0) {
    STEP("fallocate PUNCH_HOLE on O_APPEND fd", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
    close(fd);
  }
  free(buf);
}

static void pseek(const char *label, int fd, off_t off, int whence) {
  errno = 0;
  off_t r = lseek(fd, off, whence);
  if (r < 0) out("%s: -1 %s", label, ename(errno));
  else out("%s: %lld", label, (long long)r);
}

static void sec_lseek(void) {
  char buf[16];
  int fd = OPEN("open f", open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));
  if (fd >= 0) {
    STEP("write", write(fd, "0123456789", 10));
    pseek("SEEK_SET 3", fd, 3, SEEK_SET);
    DATA("read 2", read(fd, buf, 2), buf);
    pseek("SEEK_CUR +2", fd, 2, SEEK_CUR);
    DATA("read 1", read(fd, buf, 1), buf);
    pseek("SEEK_END -2", fd, -2, SEEK_END);
    DATA("read 10", read(fd, buf, 10), buf);
    pseek("SEEK_CUR 0", fd, 0, SEEK_CUR);
    pseek("SEEK_SET 100", fd, 100, SEEK_SET);
    DATA("read past EOF", read(fd, buf, 10), buf);
    pseek("SEEK_SET -1", fd, -1, SEEK_SET);
    pseek("SEEK_CUR -200", fd, -200, SEEK_CUR);
    pseek("SEEK_END +5", fd, 5, SEEK_END);
    STEP("write past EOF", write(fd, "Z", 1));
    pfsize("fstat", fd);
    pseek("whence 99", fd, 0, 99);
    close(fd);
  }
  /* 1 MiB data, 8 MiB hole, 1 MiB data. */
  unsigned char *mb = malloc(MIB);
  if (!mb) return;
  memset(mb, 'D', MIB);
  fd = OPEN("open h", open("h", O_RDWR | O_CREAT | O_TRUNC, 0644));
  if (fd >= 0) {
    STEP("pwrite 1MiB @0", pwrite(fd, mb, MIB, 0));
    STEP("pwrite 1MiB @9MiB", pwrite(fd, mb, MIB, 9 * MIB));
    pfsize("fstat h", fd);
    for (int pass = 0; pass < 2; pass++) {
      if (pass == 1) STEP("fsync h", fsync(fd));
      const char *p = pass ? "synced" : "unsynced";
      pseek(L("%s SEEK_DATA 0", p), fd, 0, SEEK_DATA);
      pseek(L("%s SEEK_HOLE 0", p), fd, 0, SEEK_HOLE);
      pseek(L("%s SEEK_DATA 1MiB", p), fd, MIB, SEEK_DATA);
      pseek(L("%s SEEK_DATA 5MiB", p), fd, 5 * MIB, SEEK_DATA);
      pseek(L("%s SEEK_HOLE 2MiB", p), fd, 2 * MIB, SEEK_HOLE);
      pseek(L("%s SEEK_HOLE 9MiB", p), fd, 9 * MIB, SEEK_HOLE);
      pseek(L("%s SEEK_DATA 9.5MiB", p), fd, 9 * MIB + MIB / 2, SEEK_DATA);
      pseek(L("%s SEEK_DATA 10MiB (EOF)", p), fd, 10 * MIB, SEEK_DATA);
      pseek(L("%s SEEK_HOLE 10MiB (EOF)", p), fd, 10 * MIB, SEEK_HOLE);
      pseek(L("%s SEEK_DATA 20MiB", p), fd, 20 * MIB, SEEK_DATA);
    }
    ssize_t n = pread_all(fd, mb, MIB, 4 * MIB);
    out("read 1MiB in hole: %zd zero=%s", n, yesno(n == MIB && allzero(mb, MIB)));
    close(fd);
  }
  free(mb);
  /* A file that is all hole. */
  fd = OPEN("open e", open("e", O_RDWR | O_CREAT | O_TRUNC, 0644));
  if (fd >= 0) {
    STEP("ftruncate e 1MiB", ftruncate(fd, MIB));
    pseek("all-hole SEEK_DATA 0", fd, 0, SEEK_DATA);
    pseek("all-hole SEEK_HOLE 0", fd, 0, SEEK_HOLE);
    pseek("all-hole SEEK_HOLE 4096", fd, 4096, SEEK_HOLE);
    close(fd);
  }
  fd = OPEN("open z (empty)", open("z", O_RDWR | O_CREAT | O_TRUNC, 0644));
  if (fd >= 0) {
    pseek("empty SEEK_DATA 0", fd, 0, SEEK_DATA);
    pseek("empty SEEK_HOLE 0", fd, 0, SEEK_HOLE);
    pseek("empty SEEK_END 0", fd, 0, SEEK_END);
    close(fd);
  }
}

static void sec_copy_file_range(void) {
  enum { SZ = 200000 };
  unsigned char *src = malloc(SZ), *chk = malloc(SZ);
  if (!src || !chk) {
    free(src);
    free(chk);
    return;
  }
  pattern(src, SZ, 5);
  put("src", src, SZ, 0644);
  int in = OPEN("open src", open("src", O_RDONLY));
  int outfd = OPEN("open dst", open("dst", O_WRONLY | O_CREAT | O_TRUNC, 0644));
  if (in >= 0 && outfd >= 0) {
    ssize_t total = 0, r = 0;
    int calls = 0;
    errno = 0;
    while (total < SZ && (r = copy_file_range(in, NULL, outfd, NULL, (size_t)(SZ - total), 0)) > 0) {
      total += r;
      calls++;
    }
    if (r < 0) out("copy_file_range full: -1 %s (after %zd)", ename(errno), total);
    else out("copy_file_range full: %zd", total);
    pseek("src offset after copy", in, 0, SEEK_CUR);
    pseek("dst offset after copy", outfd, 0, SEEK_CUR);
    close(outfd);
    outfd = -1;
    ssize_t n = slurp("dst", chk, SZ);
    out("dst: %zd match=%s", n, yesno(n == SZ && !memcmp(src, chk, SZ)));
  }
  if (outfd >= 0) close(outfd);
  memset(chk, 'z', 10000);
  put("dst2", chk, 10000, 0644);
  int o2 = OPEN("open dst2", open("dst2", O_RDWR));
  if (in >= 0 && o2 >= 0) {
    loff_t oi = 1000, oo = 5000;
    STEP("copy_file_range partial 3000 src@1000 -> dst2@5000", copy_file_range(in, &oi, o2, &oo, 3000, 0));
    out("offsets after: in=%lld out=%lld", (long long)oi, (long long)oo);
    ssize_t n = pread_all(o2, chk, SZ, 0);
    out("dst2: %zd copied-match=%s untouched=%s", n, yesno(n == 10000 && !memcmp(chk + 5000, src + 1000, 3000)),
        yesno(allbyte(chk, 5000, 'z') && n == 10000 && allbyte(chk + 8000, 2000, 'z')));
    oi = SZ - 10;
    oo = 9998;
    STEP("copy_file_range across src EOF (10 left) -> extends dst2", copy_file_range(in, &oi, o2, &oo, 100, 0));
    pfsize("fstat dst2", o2);
    oi = SZ + 1000;
    oo = 0;
    STEP("copy_file_range from past src EOF", copy_file_range(in, &oi, o2, &oo, 100, 0));
    oi = 0;
    oo = 100;
    STEP("copy_file_range overlapping same file", copy_file_range(o2, &oi, o2, &oo, 1000, 0));
    oi = 0;
    oo = 0;
    STEP("copy_file_range flags=1", copy_file_range(in, &oi, o2, &oo, 10, 1));
    oi = 0;
    oo = 0;
    STEP("copy_file_range to O_RDONLY fd", copy_file_range(o2, &oi, in, &oo, 10, 0));
  }
  if (o2 >= 0) close(o2);
  if (in >= 0) close(in);
  free(src);
  free(chk);
}

static const char *lkname(short t) {
  return t == F_RDLCK ? "rdlck" : t == F_WRLCK ? "wrlck" : t == F_UNLCK ? "unlck" : "?";
}
static int lk(int fd, int cmd, short type, off_t start, off_t len, struct flock *res) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  int r = fcntl(fd, cmd, &fl);
  if (res) *res = fl;
  return r;
}
/* Prints a GETLK result without the pid; expect_pid > 0 reports whether it is that process. */
static void pgetlk(const char *label, int fd, int cmd, short type, off_t s, off_t l, pid_t expect_pid) {
  struct flock fl;
  if (lk(fd, cmd, type, s, l, &fl) < 0) {
    out("%s: -1 %s", label, ename(errno));
    return;
  }
  if (fl.l_type == F_UNLCK) {
    out("%s: unlck", label);
    return;
  }
  const char *who = "";
  if (expect_pid > 0) who = fl.l_pid == expect_pid ? " owner=parent" : " owner=other";
  else if (expect_pid < 0) who = fl.l_pid == -1 ? " pid=-1" : " pid=other";
  out("%s: %s start=%lld len=%lld whence=%d%s", label, lkname(fl.l_type), (long long)fl.l_start,
      (long long)fl.l_len, fl.l_whence, who);
}

static void sec_posix_locks(void) {
  char data[1000];
  memset(data, 'L', sizeof data);
  put("f", data, sizeof data, 0644);
  int fd = OPEN("open f rw", open("f", O_RDWR));
  if (fd < 0) return;
  pid_t me = getpid();
  STEP("F_SETLK wrlck 100+100", lk(fd, F_SETLK, F_WRLCK, 100, 100, NULL));
  STEP("F_SETLK rdlck 500+10", lk(fd, F_SETLK, F_RDLCK, 500, 10, NULL));
  pgetlk("own F_GETLK (own locks invisible)", fd, F_GETLK, F_WRLCK, 0, 0, me);
  pid_t p = child_begin((uid_t)-1, (gid_t)-1);
  if (p == 0) {
    int cfd = open("f", O_RDWR);
    if (cfd < 0) {
      out("child open: -1 %s", ename(errno));
      child_end(1);
    }
    STEP("child F_SETLK wrlck 150+10 (conflict)", lk(cfd, F_SETLK, F_WRLCK, 150, 10, NULL));
    STEP("child F_SETLK rdlck 199+1 (conflict)", lk(cfd, F_SETLK, F_RDLCK, 199, 1, NULL));
    pgetlk("child F_GETLK wrlck whole", cfd, F_GETLK, F_WRLCK, 0, 0, me);
    pgetlk("child F_GETLK wrlck 300+10", cfd, F_GETLK, F_WRLCK, 300, 10, me);
    pgetlk("child F_GETLK wrlck 505+1", cfd, F_GETLK, F_WRLCK, 505, 1, me);
    pgetlk("child F_GETLK rdlck 505+1", cfd, F_GETLK, F_RDLCK, 505, 1, me);
    STEP("child F_SETLK wrlck 300+10 (free)", lk(cfd, F_SETLK, F_WRLCK, 300, 10, NULL));
    STEP("child F_SETLK rdlck 500+10 (shared)", lk(cfd, F_SETLK, F_RDLCK, 500, 10, NULL));
    STEP("child F_SETLK wrlck 500+10 (conflict)", lk(cfd, F_SETLK, F_WRLCK, 500, 10, NULL));
    STEP("child F_SETLK wrlck 200+0 (to EOF, free)", lk(cfd, F_SETLK, F_WRLCK, 600, 0, NULL));
    child_end(0);
  }
  child_wait(p);
  /* Locks of an exited process are gone. */
  pgetlk("F_GETLK wrlck 300+10 after child exit", fd, F_GETLK, F_WRLCK, 300, 10, me);
  /* POSIX locks belong to the process: a second fd in the same process does not conflict,
   * and closing any fd of the file drops all of the process's locks on it. */
  int fd2 = OPEN("open f 2nd fd", open("f", O_RDWR));
  if (fd2 >= 0) {
    STEP("F_SETLK wrlck 150+10 via 2nd fd (same process)", lk(fd2, F_SETLK, F_WRLCK, 150, 10, NULL));
    close(fd2);
  }
  p = child_begin((uid_t)-1, (gid_t)-1);
  if (p == 0) {
    int cfd = open("f", O_RDWR);
    pgetlk("child F_GETLK after parent closed 2nd fd", cfd, F_GETLK, F_WRLCK, 0, 0, me);
    child_end(0);
  }
  child_wait(p);
  /* A blocked F_SETLKW completes once the holder unlocks. */
  STEP("F_SETLK wrlck 0+10", lk(fd, F_SETLK, F_WRLCK, 0, 10, NULL));
  p = child_begin((uid_t)-1, (gid_t)-1);
  if (p == 0) {
    int cfd = open("f", O_RDWR);
    STEP("child F_SETLKW wrlck 0+10 (waits for parent)", lk(cfd, F_SETLKW, F_WRLCK, 0, 10, NULL));
    child_end(0);
  }
  int unl = -1, unl_e = 0;
  if (p > 0) {
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    unl = lk(fd, F_SETLK, F_UNLCK, 0, 10, NULL);
    unl_e = errno;
  }
  child_wait(p);
  step("F_SETLK unlck 0+10 (while child waits)", unl, unl_e);
  STEP("F_SETLK unlck all", lk(fd, F_SETLK, F_UNLCK, 0, 0, NULL));
  STEP("F_SETLK bad type", lk(fd, F_SETLK, 42, 0, 10, NULL));
  int ro = open("f", O_RDONLY);
  if (ro >= 0) {
    STEP("F_SETLK wrlck on O_RDONLY fd", lk(ro, F_SETLK, F_WRLCK, 0, 10, NULL));
    close(ro);
  }
  close(fd);
}

static void sec_ofd_locks(void) {
  puts_("f", "ofd lock file contents");
  int a = OPEN("open f #1", open("f", O_RDWR));
  int b = OPEN("open f #2", open("f", O_RDWR));
  if (a < 0 || b < 0) {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
    return;
  }
  STEP("#1 F_OFD_SETLK wrlck 0+100", lk(a, F_OFD_SETLK, F_WRLCK, 0, 100, NULL));
  STEP("#2 F_OFD_SETLK wrlck 50+10 (conflict)", lk(b, F_OFD_SETLK, F_WRLCK, 50, 10, NULL));
  STEP("#2 F_OFD_SETLK rdlck 99+1 (conflict)", lk(b, F_OFD_SETLK, F_RDLCK, 99, 1, NULL));
  pgetlk("#2 F_OFD_GETLK wrlck whole", b, F_OFD_GETLK, F_WRLCK, 0, 0, -1);
  STEP("#2 F_OFD_SETLK wrlck 100+10 (adjacent)", lk(b, F_OFD_SETLK, F_WRLCK, 100, 10, NULL));
  STEP("#1 F_OFD_SETLK unlck 0+100", lk(a, F_OFD_SETLK, F_UNLCK, 0, 100, NULL));
  STEP("#2 F_OFD_SETLK wrlck 50+10 (now free)", lk(b, F_OFD_SETLK, F_WRLCK, 50, 10, NULL));
  /* OFD and classic POSIX locks conflict even within one process. */
  STEP("#1 F_SETLK (posix) wrlck 55+1", lk(a, F_SETLK, F_WRLCK, 55, 1, NULL));
  pgetlk("#1 F_GETLK (posix) wrlck 50+10", a, F_GETLK, F_WRLCK, 50, 10, -1);
  /* Closing #2 releases its OFD locks. */
  close(b);
  STEP("#1 F_OFD_SETLK wrlck 0+200 after #2 closed", lk(a, F_OFD_SETLK, F_WRLCK, 0, 200, NULL));
  pid_t p = child_begin((uid_t)-1, (gid_t)-1);
  if (p == 0) {
    int c = open("f", O_RDWR);
    STEP("child F_OFD_SETLK wrlck 10+1 (conflict)", lk(c, F_OFD_SETLK, F_WRLCK, 10, 1, NULL));
    pgetlk("child F_GETLK (posix) sees OFD lock", c, F_GETLK, F_WRLCK, 0, 0, -1);
    child_end(0);
  }
  child_wait(p);
  STEP("F_OFD_SETLK with l_pid set", ({
         struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1, .l_pid = 1};
         fcntl(a, F_OFD_SETLK, &fl);
       }));
  close(a);
}

static void sec_flock(void) {
  puts_("f", "flock");
  int a = OPEN("open f #1", open("f", O_RDONLY));
  int b = OPEN("open f #2", open("f", O_RDONLY));
  if (a < 0 || b < 0) {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
    return;
  }
  STEP("#1 flock LOCK_EX", flock(a, LOCK_EX));
  STEP("#2 flock LOCK_EX|LOCK_NB (conflict)", flock(b, LOCK_EX | LOCK_NB));
  STEP("#2 flock LOCK_SH|LOCK_NB (conflict)", flock(b, LOCK_SH | LOCK_NB));
  STEP("#1 flock LOCK_EX again (convert no-op)", flock(a, LOCK_EX | LOCK_NB));
  STEP("#1 flock LOCK_UN", flock(a, LOCK_UN));
  STEP("#2 flock LOCK_SH|LOCK_NB", flock(b, LOCK_SH | LOCK_NB));
  STEP("#1 flock LOCK_SH|LOCK_NB (shared)", flock(a, LOCK_SH | LOCK_NB));
  STEP("#1 flock LOCK_EX|LOCK_NB (upgrade blocked)", flock(a, LOCK_EX | LOCK_NB));
  pid_t p = child_begin((uid_t)-1, (gid_t)-1);
  if (p == 0) {
    int c = open("f", O_RDONLY);
    STEP("child flock LOCK_EX|LOCK_NB (conflict)", flock(c, LOCK_EX | LOCK_NB));
    STEP("child flock LOCK_SH|LOCK_NB", flock(c, LOCK_SH | LOCK_NB));
    /* An inherited fd shares the parent's open file description and lock. */
    STEP("child flock LOCK_SH|LOCK_NB on inherited #2", flock(b, LOCK_SH | LOCK_NB));
    child_end(0);
  }
  child_wait(p);
  int d = dup(b);
  STEP("dup(#2) flock LOCK_UN (releases #2's lock)", flock(d, LOCK_UN));
  close(d);
  STEP("#1 flock LOCK_EX|LOCK_NB (now only #1)", flock(a, LOCK_EX | LOCK_NB));
  close(a);
  STEP("#2 flock LOCK_EX|LOCK_NB after #1 closed", flock(b, LOCK_EX | LOCK_NB));
  STEP("flock bad op", flock(b, 0));
  close(b);
  /* flock and POSIX locks are independent. */
  a = open("f", O_RDWR);
  if (a >= 0) {
    STEP("flock LOCK_EX", flock(a, LOCK_EX | LOCK_NB));
    p = child_begin((uid_t)-1, (gid_t)-1);
    if (p == 0) {
      int c = open("f", O_RDWR);
      STEP("child F_SETLK wrlck while other holds flock", lk(c, F_SETLK, F_WRLCK, 0, 0, NULL));
      child_end(0);
    }
    child_wait(p);
    close(a);
  }
}

static void sec_access(void) {
  puts_("r600", "secret");
  chmod("r600", 0600);
  puts_("r644", "public");
  puts_("x755", "#!/bin/sh\n");
  chmod("x755", 0755);
  puts_("r000", "none");
  chmod("r000", 0);
  setup_mkdir("d700", 0700);
  puts_("d700/f", "hidden");
  setup_mkdir("d711", 0711);
  puts_("d711/f", "traverse-only");
  STEP("access r600 F_OK", access("r600", F_OK));
  STEP("access r600 R_OK|W_OK", access("r600", R_OK | W_OK));
  STEP("access r600 X_OK (root)", access("r600", X_OK));
  STEP("access x755 X_OK", access("x755", X_OK));
  STEP("access r000 R_OK|W_OK (root)", access("r000", R_OK | W_OK));
  STEP("access d700 X_OK", access("d700", X_OK));
  STEP("access missing F_OK", access("missing", F_OK));
  STEP("faccessat r600 AT_EACCESS", faccessat(AT_FDCWD, "r600", R_OK | W_OK, AT_EACCESS));
  int fd = OPEN("open r000 O_RDWR (root)", open("r000", O_RDWR));
  if (fd >= 0) close(fd);
  pid_t p = child_begin(65534, 65534);
  if (p == 0) {
    char buf[32];
    STEP("nobody access r600 F_OK", access("r600", F_OK));
    STEP("nobody access r600 R_OK", access("r600", R_OK));
    STEP("nobody access r600 W_OK", access("r600", W_OK));
    int f = OPEN("nobody open r600 O_RDONLY", open("r600", O_RDONLY));
    if (f >= 0) close(f);
    STEP("nobody access r644 R_OK", access("r644", R_OK));
    STEP("nobody access r644 W_OK", access("r644", W_OK));
    f = OPEN("nobody open r644 O_RDONLY", open("r644", O_RDONLY));
    if (f >= 0) {
      DATA("nobody read r644", read(f, buf, sizeof buf), buf);
      close(f);
    }
    f = OPEN("nobody open r644 O_WRONLY", open("r644", O_WRONLY));
    if (f >= 0) close(f);
    STEP("nobody access x755 X_OK", access("x755", X_OK));
    STEP("nobody access r644 X_OK", access("r644", X_OK));
    pstat("d700/f");
    STEP("nobody opendir d700", try_opendir("d700"));
    pstat("d711/f");
    STEP("nobody opendir d711", try_opendir("d711"));
    pcat("d711/f");
    STEP("nobody access . W_OK", access(".", W_OK));
    f = OPEN("nobody create in root's 0755 dir", open("new", O_WRONLY | O_CREAT, 0644));
    if (f >= 0) close(f);
    STEP("nobody mkdir in root's dir", mkdir("newd", 0755));
    STEP("nobody unlink r644", unlink("r644"));
    STEP("nobody rename r644", rename("r644", "r644b"));
    STEP("nobody chmod r644", chmod("r644", 0666));
    STEP("nobody chown r644", chown("r644", 65534, 65534));
    STEP("nobody truncate r644", truncate("r644", 0));
    STEP("nobody utimensat r644 NULL", utimensat(AT_FDCWD, "r644", NULL, 0));
    const struct timespec ts[2] = {{1, 0}, {1, 0}};
    STEP("nobody utimensat r644 explicit", utimensat(AT_FDCWD, "r644", ts, 0));
    STEP("nobody setxattr user.x r644", setxattr("r644", "user.x", "x", 1, 0));
    STEP("nobody getxattr user.x r644", getxattr("r644", "user.x", buf, sizeof buf));
    STEP("nobody setxattr trusted.x r644", setxattr("r644", "trusted.x", "x", 1, 0));
    STEP("nobody link r644", link("r644", "r644-link"));
    STEP("nobody symlink in root's dir", symlink("r644", "nobody-link"));
    child_end(0);
  }
  child_wait(p);
  pstat("r644");
  plist("list .", ".", 20);
}

static void sec_owner(void) {
  /* Files created by other users get their uid/gid; setgid dirs pass their group on. */
  if (chmod(".", 0777) < 0) out("setup chmod .: -1 %s", ename(errno));
  setup_mkdir("sg", 0755);
  if (chown("sg", 0, 2000) < 0 || chmod("sg", 02777) < 0) out("setup sg: -1 %s", ename(errno));
  pstat("sg");
  puts_("suid", "#!/bin/sh\n");
  if (chown("suid", 1000, 1000) < 0 || chmod("suid", 06755) < 0) out("setup suid: -1 %s", ename(errno));
  puts_("sgid-nox", "data");
  if (chown("sgid-nox", 1000, 1000) < 0 || chmod("sgid-nox", 02644) < 0) out("setup sgid-nox: -1 %s", ename(errno));
  puts_("rootfile", "r");
  chmod("rootfile", 0666);
  setup_mkdir("sticky", 0755);
  chmod("sticky", 01777);
  puts_("sticky/rootf", "r");
  chmod("sticky/rootf", 0666);
  pid_t p = child_begin(1000, 1000);
  if (p == 0) {
    int f = OPEN("u1000 create file", open("ufile", O_RDWR | O_CREAT | O_EXCL, 0644));
    if (f >= 0) {
      STEP("u1000 write", write(f, "mine\n", 5));
      pfstat("u1000 fstat ufile", f);
      close(f);
    }
    STEP("u1000 mkdir udir", mkdir("udir", 0755));
    pstat("udir");
    STEP("u1000 symlink ulink", symlink("ufile", "ulink"));
    plstat("ulink");
    STEP("u1000 mkfifo ufifo", mkfifo("ufifo", 0640));
    pstat("ufifo");
    STEP("u1000 mknod S_IFREG", mknod("unod", S_IFREG | 0600, 0));
    pstat("unod");
    f = OPEN("u1000 create in setgid dir", open("sg/f", O_WRONLY | O_CREAT, 0664));
    if (f >= 0) close(f);
    pstat("sg/f");
    STEP("u1000 mkdir in setgid dir", mkdir("sg/sub", 0755));
    pstat("sg/sub");
    f = OPEN("u1000 create in inherited setgid subdir", open("sg/sub/g", O_WRONLY | O_CREAT, 0644));
    if (f >= 0) close(f);
    pstat("sg/sub/g");
    STEP("u1000 chmod ufile 0600", chmod("ufile", 0600));
    pstat("ufile");
    STEP("u1000 chmod ufile 02755 (own group)", chmod("ufile", 02755));
    pstat("ufile");
    STEP("u1000 chmod sg/f 02755 (not in group 2000: sgid dropped)", chmod("sg/f", 02755));
    pstat("sg/f");
    STEP("u1000 chown ufile 0:-1", chown("ufile", 0, (gid_t)-1));
    STEP("u1000 chown ufile -1:2000 (not member)", chown("ufile", (uid_t)-1, 2000));
    STEP("u1000 chown ufile 1000:1000 (no-op)", chown("ufile", 1000, 1000));
    STEP("u1000 chmod rootfile", chmod("rootfile", 0600));
    const struct timespec ts[2] = {{1, 0}, {1, 0}};
    STEP("u1000 utimensat rootfile NULL (has write perm)", utimensat(AT_FDCWD, "rootfile", NULL, 0));
    STEP("u1000 utimensat rootfile explicit (not owner)", utimensat(AT_FDCWD, "rootfile", ts, 0));
    STEP("u1000 utimensat ufile explicit (owner)", utimensat(AT_FDCWD, "ufile", ts, 0));
    f = OPEN("u1000 open suid", open("suid", O_WRONLY));
    if (f >= 0) {
      STEP("u1000 write suid", write(f, "#", 1));
      pfstat("u1000 fstat suid after write", f);
      close(f);
    }
    pstat("suid");
    f = OPEN("u1000 open sgid-nox", open("sgid-nox", O_WRONLY));
    if (f >= 0) {
      STEP("u1000 write sgid-nox", write(f, "D", 1));
      close(f);
    }
    pstat("sgid-nox");
    STEP("u1000 unlink sticky/rootf", unlink("sticky/rootf"));
    STEP("u1000 rename sticky/rootf", rename("sticky/rootf", "sticky/x"));
    f = OPEN("u1000 create sticky/mine", open("sticky/mine", O_WRONLY | O_CREAT, 0644));
    if (f >= 0) close(f);
    STEP("u1000 rename sticky/mine", rename("sticky/mine", "sticky/mine2"));
    STEP("u1000 link rootfile (protected_hardlinks)", link("rootfile", "rootfile-link"));
    STEP("u1000 rename ufile ufile2", rename("ufile", "ufile2"));
    STEP("u1000 rmdir udir", rmdir("udir"));
    STEP("u1000 mkdir udir again", mkdir("udir", 0700));
    child_end(0);
  }
  child_wait(p);
  /* root's view of what the user made. */
  pstat("ufile2");
  pstat("udir");
  plstat("ulink");
  pstat("sg/f");
  pstat("sg/sub");
  pstat("sg/sub/g");
  pstat("suid");
  plist("list sticky", "sticky", 20);
  /* root chowning a file to a user; a new file by root in the setgid dir. */
  puts_("sg/rootnew", "r");
  pstat("sg/rootnew");
  STEP("mkdir sg/rootdir", mkdir("sg/rootdir", 0755));
  pstat("sg/rootdir");
  plist("list .", ".", 30);
}

/* Set-id bits and file capabilities cleared by writes, truncates and chowns (the daemon does
 * it: FUSE_HANDLE_KILLPRIV_V2), kept by root's writes and by utimensat(OMIT, OMIT). */
static void mkpriv(const char *name, mode_t mode, uid_t uid, gid_t gid, int caps) {
  /* vfs_cap_data revision 2: permitted CAP_NET_RAW, not effective */
  const uint32_t cap[5] = {0x02000000u, 1u << 13, 0, 0, 0};
  puts_(name, "0123456789abcdef");
  if (chown(name, uid, gid) < 0 || chmod(name, mode) < 0) out("setup %s: -1 %s", name, ename(errno));
  if (caps && setxattr(name, "security.capability", cap, sizeof cap, 0) < 0)
    out("setup %s caps: -1 %s", name, ename(errno));
}
static void ppriv(const char *name) {
  pstat(name);
  ssize_t n = getxattr(name, "security.capability", NULL, 0);
  if (n < 0) out("caps %s: -1 %s", name, ename(errno));
  else out("caps %s: %zd bytes", name, n);
}
static void sec_killpriv(void) {
  static const char *const names[] = {"w-u", "w-u-nox", "w-root", "w-root-caps", "w-root-caps-suid",
                                      "w-u-caps", "t-u", "ft-u", "o-u", "o-root", "fa-u", "pw-u",
                                      "ch-root", "ch-root-nox", "ut-root", "ut-u", "cfr-u", "src"};
  const struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  mkpriv("w-u", 06777, 0, 0, 0);
  mkpriv("w-u-nox", 02666, 0, 0, 0);
  mkpriv("w-root", 06755, 0, 0, 0);
  mkpriv("w-root-caps", 0755, 0, 0, 1);
  mkpriv("w-root-caps-suid", 04755, 0, 0, 1);
  mkpriv("w-u-caps", 0777, 0, 0, 1);
  mkpriv("t-u", 06777, 0, 0, 0);
  mkpriv("ft-u", 06777, 0, 0, 0);
  mkpriv("o-u", 06777, 0, 0, 0);
  mkpriv("o-root", 06777, 0, 0, 0);
  mkpriv("fa-u", 06777, 0, 0, 0);
  mkpriv("pw-u", 06777, 0, 0, 0);
  mkpriv("ch-root", 06755, 1000, 1000, 0);
  mkpriv("ch-root-nox", 02644, 1000, 1000, 0);
  mkpriv("ut-root", 06755, 0, 0, 0);
  mkpriv("ut-u", 06777, 1000, 1000, 0);
  mkpriv("cfr-u", 06777, 0, 0, 0);
  mkpriv("src", 0644, 0, 0, 0);
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) ppriv(names[i]);

  int f = OPEN("root open w-root", open("w-root", O_WRONLY));
  if (f >= 0) { STEP("root write w-root", write(f, "x", 1)); close(f); }
  f = OPEN("root open w-root-caps", open("w-root-caps", O_WRONLY));
  if (f >= 0) { STEP("root write w-root-caps", write(f, "x", 1)); close(f); }
  f = OPEN("root open w-root-caps-suid", open("w-root-caps-suid", O_WRONLY));
  if (f >= 0) { STEP("root write w-root-caps-suid", write(f, "x", 1)); close(f); }
  f = OPEN("root open o-root O_TRUNC", open("o-root", O_WRONLY | O_TRUNC));
  if (f >= 0) close(f);
  STEP("root chown ch-root -1:-1", chown("ch-root", (uid_t)-1, (gid_t)-1));
  STEP("root chown ch-root-nox -1:-1", chown("ch-root-nox", (uid_t)-1, (gid_t)-1));
  STEP("root utimensat ut-root OMIT OMIT", utimensat(AT_FDCWD, "ut-root", omit, 0));

  pid_t p = child_begin(1000, 1000);
  if (p == 0) {
    f = OPEN("u1000 open w-u", open("w-u", O_WRONLY));
    if (f >= 0) {
      STEP("u1000 write w-u", write(f, "x", 1));
      pfstat("u1000 fstat w-u", f);
      STEP("u1000 write w-u again", write(f, "y", 1));
      close(f);
    }
    f = OPEN("u1000 open w-u-nox", open("w-u-nox", O_WRONLY));
    if (f >= 0) { STEP("u1000 write w-u-nox", write(f, "x", 1)); close(f); }
    f = OPEN("u1000 open w-u-caps", open("w-u-caps", O_WRONLY));
    if (f >= 0) { STEP("u1000 write w-u-caps", write(f, "x", 1)); close(f); }
    STEP("u1000 truncate t-u", truncate("t-u", 3));
    f = OPEN("u1000 open ft-u", open("ft-u", O_WRONLY));
    if (f >= 0) { STEP("u1000 ftruncate ft-u", ftruncate(f, 5)); close(f); }
    f = OPEN("u1000 open o-u O_TRUNC", open("o-u", O_WRONLY | O_TRUNC));
    if (f >= 0) close(f);
    f = OPEN("u1000 open fa-u", open("fa-u", O_WRONLY));
    if (f >= 0) { STEP("u1000 fallocate fa-u", fallocate(f, 0, 0, 8192)); close(f); }
    f = OPEN("u1000 open pw-u", open("pw-u", O_RDWR));
    if (f >= 0) { STEP("u1000 pwrite pw-u", pwrite(f, "zz", 2, 100)); close(f); }
    STEP("u1000 utimensat ut-u OMIT OMIT", utimensat(AT_FDCWD, "ut-u", omit, 0));
    int in = OPEN("u1000 open src", open("src", O_RDONLY));
    f = OPEN("u1000 open cfr-u", open("cfr-u", O_WRONLY));
    if (in >= 0 && f >= 0) STEP("u1000 copy_file_range src cfr-u", copy_file_range(in, NULL, f, NULL, 4, 0));
    if (in >= 0) close(in);
    if (f >= 0) close(f);
    child_end(0);
  }
  child_wait(p);
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) ppriv(names[i]);
}

static void sec_names(void) {
  char name[300];
  memset(name, 'n', sizeof name);
  name[255] = 0;
  int fd = OPEN("create 255-byte name", open(name, O_WRONLY | O_CREAT, 0644));
  if (fd >= 0) {
    STEP("write 255-byte name", write(fd, "long", 4));
    close(fd);
  }
  {
    struct stat st;
    if (stat(name, &st) < 0) out("stat 255-byte name: -1 %s", ename(errno));
    else out("stat 255-byte name: %s", sstr(&st));
  }
  char name2[300];
  memcpy(name2, name, sizeof name2);
  name2[254] = 'm';
  STEP("rename 255 -> 255", rename(name, name2));
  STEP("mkdir 255-byte name", mkdir(name, 0755));
  plist("list . (255)", ".", 0);
  name[255] = 'n';
  name[256] = 0;
  fd = OPEN("create 256-byte name", open(name, O_WRONLY | O_CREAT, 0644));
  if (fd >= 0) close(fd);
  STEP("stat 256-byte name", ({ struct stat st_; stat(name, &st_); }));
  STEP("mkdir 256-byte name", mkdir(name, 0755));
  STEP("symlink to 256-byte name", symlink("x", name));
  STEP("rename to 256-byte name", rename(name2, name));
  STEP("unlink 255-byte name", unlink(name2));
  STEP("rmdir 255-byte name dir", ({ name[255] = 0; rmdir(name); }));

  char *longp = malloc(8300);
  if (longp) {
    size_t o = 0;
    while (o < 8200) {
      memcpy(longp + o, "a/", 2);
      o += 2;
    }
    longp[o] = 0;
    STEP("stat 8200-byte path", ({ struct stat st_; stat(longp, &st_); }));
    free(longp);
  }

  static const char *const odd[] = {
      "with space",  "new\nline",    "utf8-\xe6\x97\xa5\xe6\x9c\xac-\xc3\xa9", "\xff\xfe-bytes",
      "-dash",       ".hidden",      "trailing.",                              "tab\tname",
      "colon:star*?", "back\\slash", "quote\"'",                               " lead-space",
      "\x01\x1f-ctl", "..dots",      "UPPER",                                  "upper",
  };
  size_t nodd = sizeof odd / sizeof odd[0];
  for (size_t i = 0; i < nodd; i++) {
    STEP(L("create %s", N(odd[i])), puts_(odd[i], odd[i]));
    pstat(odd[i]);
  }
  plist("list .", ".", 40);
  int ok = 0;
  for (size_t i = 0; i < nodd; i++) {
    char buf[64];
    ssize_t n = slurp(odd[i], buf, sizeof buf);
    if (n == (ssize_t)strlen(odd[i]) && !memcmp(buf, odd[i], (size_t)n)) ok++;
  }
  out("read back odd names: %d/%zu", ok, nodd);
  ok = 0;
  for (size_t i = 0; i < nodd; i++) {
    char to[64];
    snprintf(to, sizeof to, "%s.r", odd[i]);
    if (rename(odd[i], to) == 0) ok++;
  }
  out("rename odd names: %d/%zu", ok, nodd);
  setup_mkdir("\xff dir\n", 0755);
  puts_("\xff dir\n/\xfe file", "nested");
  pcat("\xff dir\n/\xfe file");
  plist("list . after rename", ".", 40);
  STEP("open name with embedded NUL (truncated to 'with')", ({
         int f_ = open("with\0space", O_RDONLY);
         if (f_ >= 0) close(f_);
         f_ >= 0 ? 0 : -1;
       }));
}

static void sec_mmap(void) {
  enum { SZ = 16384 };
  unsigned char pat[SZ], buf[SZ];
  pattern(pat, SZ, 9);
  int fd = OPEN("open f rw", open("f", O_RDWR | O_CREAT | O_TRUNC, 0644));
  if (fd >= 0) {
    STEP("ftruncate 16384", ftruncate(fd, SZ));
    void *m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      out("mmap MAP_SHARED rw: -1 %s", ename(errno));
    } else {
      out("mmap MAP_SHARED rw: ok");
      memcpy(m, pat, SZ);
      /* Visible to pread on the same file before msync. */
      ssize_t n = pread_all(fd, buf, SZ, 0);
      out("pread before msync: %zd match=%s", n, yesno(n == SZ && !memcmp(buf, pat, SZ)));
      STEP("msync MS_SYNC", msync(m, SZ, MS_SYNC));
      STEP("munmap", munmap(m, SZ));
    }
    STEP("close", close(fd));
    ssize_t n = slurp("f", buf, SZ);
    out("read() after mmap write: %zd match=%s", n, yesno(n == SZ && !memcmp(buf, pat, SZ)));
    pstat("f");
  }
  puts_("g", "written with write()\n");
  fd = OPEN("open g rdonly", open("g", O_RDONLY));
  if (fd >= 0) {
    char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      out("mmap g read: -1 %s", ename(errno));
    } else {
      out("mmap g read: %s rest-zero=%s", Q(m, 21), yesno(allzero(m + 21, 4096 - 21)));
      /* A write() through another fd shows up in the existing mapping. */
      int w = open("g", O_WRONLY);
      if (w >= 0) {
        STEP("pwrite via other fd", pwrite(w, "WRITTEN", 7, 0));
        close(w);
      }
      out("mapping after pwrite: %s", Q(m, 21));
      munmap(m, 4096);
    }
    STEP("mmap PROT_WRITE MAP_SHARED on O_RDONLY fd", mmap(NULL, 4096, PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ? -1 : 0);
    char *pm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (pm == MAP_FAILED) {
      out("mmap MAP_PRIVATE rw on O_RDONLY fd: -1 %s", ename(errno));
    } else {
      out("mmap MAP_PRIVATE rw on O_RDONLY fd: ok");
      memcpy(pm, "private", 7);
      munmap(pm, 4096);
    }
    close(fd);
  }
  pcat("g");
  /* Writing into the mapped tail of the last page does not extend the file. */
  puts_("h", "0123456789");
  fd = OPEN("open h rw", open("h", O_RDWR));
  if (fd >= 0) {
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      out("mmap h: -1 %s", ename(errno));
    } else {
      memcpy(m + 5, "ABCDEFGHIJ", 10);
      STEP("msync h", msync(m, 4096, MS_SYNC));
      munmap(m, 4096);
    }
    close(fd);
  }
  pcat("h");
  puts_("empty", "");
  fd = open("empty", O_RDONLY);
  if (fd >= 0) {
    STEP("mmap length 0", mmap(NULL, 0, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED ? -1 : 0);
    close(fd);
  }
}

static void sec_sparse(void) {
  unsigned char *buf = malloc(65536);
  if (!buf) return;
  puts_("s", "");
  STEP("truncate s 64MiB", truncate("s", 64 * MIB));
  pstat("s");
  int fd = OPEN("open s rw", open("s", O_RDWR));
  if (fd >= 0) {
    static const long offs[] = {0, 4096, 32 * MIB - 100, 48 * MIB, 64 * MIB - 65536};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
      memset(buf, 1, 65536);
      ssize_t n = pread_all(fd, buf, 65536, offs[i]);
      out("pread 65536@%ld: %zd zero=%s", offs[i], n, yesno(n == 65536 && allzero(buf, 65536)));
    }
    ssize_t n = pread_all(fd, buf, 65536, 64 * MIB - 100);
    out("pread 65536@64MiB-100: %zd zero=%s", n, yesno(n == 100 && allzero(buf, 100)));
    n = pread_all(fd, buf, 65536, 64 * MIB);
    out("pread @64MiB: %zd", n);
    STEP("pwrite mid @40MiB", pwrite(fd, "mid", 3, 40 * MIB));
    DATA("pread @40MiB-2", pread(fd, buf, 7, 40 * MIB - 2), buf);
    pfsize("fstat", fd);
    STEP("pwrite far @5GiB", pwrite(fd, "far", 3, 5L * 1024 * MIB));
    pfsize("fstat", fd);
    DATA("pread @5GiB", pread(fd, buf, 16, 5L * 1024 * MIB), buf);
    DATA("pread @4GiB", pread(fd, buf, 4, 4L * 1024 * MIB), buf);
    STEP("ftruncate 3GiB", ftruncate(fd, 3L * 1024 * MIB));
    pfsize("fstat", fd);
    STEP("ftruncate 0", ftruncate(fd, 0));
    close(fd);
  }
  free(buf);
}

static void sec_many(void) {
  uint64_t h = FNV0;
  int created = 0, statted = 0, unlinked = 0, readok = 0;
  long long total = 0;
  for (int i = 0; i < 1000; i++) {
    char name[32], data[64];
    snprintf(name, sizeof name, "m%04d", i);
    int len = snprintf(data, sizeof data, "file %d %s\n", i, i % 3 ? "x" : "yyyyyyyyyyyyyyyyyy");
    int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) continue;
    if (wall(fd, data, (size_t)len) == len) created++;
    close(fd);
  }
  for (int i = 0; i < 1000; i++) {
    char name[32], data[64];
    struct stat st;
    snprintf(name, sizeof name, "m%04d", i);
    if (stat(name, &st) == 0) {
      statted++;
      total += st.st_size;
      h = fnv(h, &st.st_size, sizeof st.st_size);
    }
    ssize_t n = slurp(name, data, sizeof data);
    if (n > 0) {
      readok++;
      h = fnv(h, data, (size_t)n);
    }
  }
  out("many: created=%d stat=%d read=%d bytes=%lld sum=%016" PRIx64, created, statted, readok, total, h);
  plist("list . (1000)", ".", 0);
  for (int i = 0; i < 1000; i++) {
    char name[32];
    snprintf(name, sizeof name, "m%04d", i);
    if (unlink(name) == 0) unlinked++;
  }
  out("many: unlinked=%d", unlinked);
  plist("list . after unlink", ".", 20);
}

/* ---- issue 17: exactly like the original ------------------------------------------------- */

/* xattrs on a symlink itself: trusted.* and security.* work (root), user.* is refused. */
static void sec_symlink_xattr(void) {
  char buf[256];
  puts_("f", "x");
  if (symlink("f", "sl") < 0) out("setup symlink: -1 %s", ename(errno));
  STEP("lsetxattr sl trusted.t", lsetxattr("sl", "trusted.t", "T", 1, 0));
  STEP("lsetxattr sl security.cmtest", lsetxattr("sl", "security.cmtest", "S", 1, 0));
  STEP("lsetxattr sl user.u", lsetxattr("sl", "user.u", "U", 1, 0));
  STEP("lsetxattr sl trusted.t XATTR_CREATE", lsetxattr("sl", "trusted.t", "2", 1, XATTR_CREATE));
  STEP("lsetxattr sl trusted.n XATTR_REPLACE", lsetxattr("sl", "trusted.n", "2", 1, XATTR_REPLACE));
  DATA("lgetxattr sl trusted.t", lgetxattr("sl", "trusted.t", buf, sizeof buf), buf);
  STEP("lgetxattr sl trusted.t size query", lgetxattr("sl", "trusted.t", NULL, 0));
  DATA("lgetxattr sl user.u", lgetxattr("sl", "user.u", buf, sizeof buf), buf);
  DATA("getxattr sl trusted.t (follows: target has none)", getxattr("sl", "trusted.t", buf, sizeof buf), buf);
  plistxattr("llistxattr sl", "sl", 1);
  STEP("llistxattr sl size query", llistxattr("sl", NULL, 0));
  plistxattr("listxattr f (target untouched)", "f", 0);
  STEP("lremovexattr sl trusted.t", lremovexattr("sl", "trusted.t"));
  STEP("lremovexattr sl trusted.t again", lremovexattr("sl", "trusted.t"));
  STEP("lremovexattr sl user.u", lremovexattr("sl", "user.u"));
  DATA("lgetxattr sl trusted.t after remove", lgetxattr("sl", "trusted.t", buf, sizeof buf), buf);
  plistxattr("llistxattr sl", "sl", 1);
  STEP("rename sl sl2", rename("sl", "sl2"));
  DATA("lgetxattr sl2 security.cmtest after rename", lgetxattr("sl2", "security.cmtest", buf, sizeof buf), buf);
}

/* POSIX ACL xattr values (the kernel's posix_acl_xattr format, version 2). */
enum { ACL_UOBJ = 0x01, ACL_NAMED_USER = 0x02, ACL_GOBJ = 0x04, ACL_MASKTAG = 0x10, ACL_OTHERTAG = 0x20 };
struct acl_entry_x { uint16_t tag, perm; uint32_t id; };
static size_t acl_value(unsigned char *buf, const struct acl_entry_x *e, size_t n) {
  uint32_t version = 2;
  memcpy(buf, &version, 4);
  for (size_t i = 0; i < n; i++) memcpy(buf + 4 + 8 * i, &e[i], 8);
  return 4 + 8 * n;
}
/* u::rwx g::rwx o::r-x */
static int set_default_acl(const char *dir) {
  const struct acl_entry_x e[] = {{ACL_UOBJ, 7, (uint32_t)-1}, {ACL_GOBJ, 7, (uint32_t)-1}, {ACL_OTHERTAG, 5, (uint32_t)-1}};
  unsigned char v[64];
  return setxattr(dir, "system.posix_acl_default", v, acl_value(v, e, 3), 0);
}
static void pacl(const char *path) {
  ssize_t a = getxattr(path, "system.posix_acl_access", NULL, 0);
  int ea = errno;
  ssize_t d = getxattr(path, "system.posix_acl_default", NULL, 0);
  int ed = errno;
  out("acl %s: access=%s default=%s", N(path), a < 0 ? ename(ea) : L("%zd", a), d < 0 ? ename(ed) : L("%zd", d));
}
static void tmpfile_link(const char *dir, const char *name, mode_t mode) {
  int fd = open(dir, O_TMPFILE | O_RDWR, mode);
  if (fd < 0) {
    out("O_TMPFILE in %s: -1 %s", N(dir), ename(errno));
    return;
  }
  char proc[64], path[256];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  STEP(L("linkat tmpfile %s", N(path)), linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW));
  close(fd);
  pstat(path);
}
/* The creations of one directory with umask um (restored after). */
static void creations(const char *dir, mode_t um) {
  char p[256];
  mode_t old = umask(um);
  out("creations in %s with umask %03o", N(dir), (unsigned)um);
  snprintf(p, sizeof p, "%s/d", dir);
  STEP("mkdir d 0777", mkdir(p, 0777));
  pstat(p);
  snprintf(p, sizeof p, "%s/f", dir);
  int fd = OPEN("creat f 0666", open(p, O_WRONLY | O_CREAT | O_EXCL, 0666));
  if (fd >= 0) close(fd);
  pstat(p);
  snprintf(p, sizeof p, "%s/p", dir);
  STEP("mkfifo p 0666", mkfifo(p, 0666));
  pstat(p);
  snprintf(p, sizeof p, "%s/n", dir);
  STEP("mknod n S_IFREG 0666", mknod(p, S_IFREG | 0666, 0));
  pstat(p);
  snprintf(p, sizeof p, "%s/s", dir);
  STEP("symlink s", symlink("f", p));
  plstat(p);
  tmpfile_link(dir, "t", 0666);
  snprintf(p, sizeof p, "%s/d", dir);
  pacl(p);
  snprintf(p, sizeof p, "%s/f", dir);
  pacl(p);
  umask(old);
}
/* The umask of the creating process, unless the parent has a default ACL (which replaces it);
 * setgid directories keep group write. */
static void sec_umask(void) {
  setup_mkdir("plain", 0777);
  chmod("plain", 0777);
  creations("plain", 022);
  setup_mkdir("plain077", 0777);
  chmod("plain077", 0777);
  creations("plain077", 077);
  setup_mkdir("plain000", 0777);
  chmod("plain000", 0777);
  creations("plain000", 0);
  setup_mkdir("acl", 0755);
  STEP("set default ACL on acl", set_default_acl("acl"));
  pacl("acl");
  creations("acl", 022);
  setup_mkdir("acl077", 0755);
  STEP("set default ACL on acl077", set_default_acl("acl077"));
  creations("acl077", 077);
  setup_mkdir("sg", 0755);
  if (chown("sg", 0, 2000) < 0 || chmod("sg", 02775) < 0) out("setup sg: -1 %s", ename(errno));
  STEP("set default ACL on sg", set_default_acl("sg"));
  creations("sg", 022);
  pstat("sg/d");
  setup_mkdir("sg-noacl", 0755);
  if (chown("sg-noacl", 0, 2000) < 0 || chmod("sg-noacl", 02777) < 0) out("setup sg-noacl: -1 %s", ename(errno));
  creations("sg-noacl", 002);
  /* Another user, with its own umask. */
  if (chmod(".", 0777) < 0) out("setup chmod .: -1 %s", ename(errno));
  pid_t p = child_begin(1000, 1000);
  if (p == 0) {
    setup_mkdir("u-plain", 0777);
    creations("u-plain", 027);
    setup_mkdir("u-acl", 0755);
    STEP("u1000 set default ACL on u-acl", set_default_acl("u-acl"));
    creations("u-acl", 077);
    child_end(0);
  }
  child_wait(p);
}

/* The mode as `stat -c %a` or `ls` ask for it: statx with STATX_MODE alone (the kernel then
 * answers from its cache unless the mode itself was invalidated). */
static void pmode(const char *path) {
  struct statx stx;
  if (statx(AT_FDCWD, path, 0, STATX_MODE, &stx) < 0) out("statx mode %s: -1 %s", N(path), ename(errno));
  else out("statx mode %s: %04o", N(path), (unsigned)(stx.stx_mode & 07777));
}

/* setfacl changes the group bits of the mode: stat sees it at once. */
static void sec_acl_mode(void) {
  unsigned char v[128];
  puts_("f", "x");
  chmod("f", 0644);
  setup_mkdir("d", 0755);
  pmode("f");
  pstat("f");
  pmode("d");
  pstat("d");
  const struct acl_entry_x named[] = {{ACL_UOBJ, 6, (uint32_t)-1}, {ACL_NAMED_USER, 7, 1000}, {ACL_GOBJ, 4, (uint32_t)-1},
                                      {ACL_MASKTAG, 7, (uint32_t)-1}, {ACL_OTHERTAG, 4, (uint32_t)-1}};
  STEP("setxattr f access ACL u::rw- u:1000:rwx g::r-- m::rwx o::r--",
       setxattr("f", "system.posix_acl_access", v, acl_value(v, named, 5), 0));
  pmode("f");
  pstat("f");
  pacl("f");
  const struct acl_entry_x minimal[] = {{ACL_UOBJ, 7, (uint32_t)-1}, {ACL_GOBJ, 0, (uint32_t)-1}, {ACL_OTHERTAG, 0, (uint32_t)-1}};
  STEP("setxattr f access ACL u::rwx g::--- o::---", setxattr("f", "system.posix_acl_access", v, acl_value(v, minimal, 3), 0));
  pmode("f");
  pstat("f");
  STEP("setxattr f access ACL named again", setxattr("f", "system.posix_acl_access", v, acl_value(v, named, 5), 0));
  pmode("f");
  pstat("f");
  STEP("removexattr f access ACL", removexattr("f", "system.posix_acl_access"));
  pmode("f");
  pstat("f");
  pacl("f");
  int fd = OPEN("open f", open("f", O_RDONLY));
  if (fd >= 0) {
    STEP("fsetxattr f access ACL minimal", fsetxattr(fd, "system.posix_acl_access", v, acl_value(v, minimal, 3), 0));
    pfstat("fstat f", fd);
    close(fd);
  }
  STEP("setxattr d access ACL named", setxattr("d", "system.posix_acl_access", v, acl_value(v, named, 5), 0));
  pmode("d");
  pstat("d");
  STEP("setxattr d access ACL minimal", setxattr("d", "system.posix_acl_access", v, acl_value(v, minimal, 3), 0));
  pmode("d");
  pstat("d");
  /* As the owner (not root). */
  if (chown("f", 1000, 1000) < 0) out("setup chown f: -1 %s", ename(errno));
  pid_t p = child_begin(1000, 1000);
  if (p == 0) {
    pmode("f");
  pstat("f");
    STEP("u1000 setxattr f access ACL named", setxattr("f", "system.posix_acl_access", v, acl_value(v, named, 5), 0));
    pmode("f");
  pstat("f");
    child_end(0);
  }
  child_wait(p);
  pmode("f");
  pstat("f");
}

static int ts_after(struct timespec a, struct timespec b) {
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}
/* Longer than a tick of the coarse clock file times come from (CONFIG_HZ 100: 10 ms). */
static void tick(void) {
  struct timespec ts = {0, 30 * 1000 * 1000};
  nanosleep(&ts, NULL);
}
/* mtime and ctime of path after a change, against the explicit old mtime and the ctime before. */
static void pmoved(const char *label, const char *path, int flags, struct timespec old_m, struct timespec old_c) {
  struct stat st;
  if (fstatat(AT_FDCWD, path, &st, flags) < 0) {
    out("%s: -1 %s", label, ename(errno));
    return;
  }
  out("%s: mtime moved=%s ctime moved=%s", label, yesno(ts_after(st.st_mtim, old_m)), yesno(ts_after(st.st_ctim, old_c)));
}
static int stat_times(const char *path, int flags, struct timespec *m, struct timespec *c) {
  struct stat st;
  if (fstatat(AT_FDCWD, path, &st, flags) < 0) {
    out("stat %s: -1 %s", N(path), ename(errno));
    return -1;
  }
  *m = st.st_mtim;
  *c = st.st_ctim;
  return 0;
}

/* A write through a shared mapping moves mtime and ctime, as stat sees them after msync (a
 * local file system moves them at the first write fault already; through FUSE without
 * passthrough, the kernel tells the daemon of such a write only when it writes the page back).
 * The file is written before (written), created empty (neither), or opened by a reader first
 * (with_reader): on the mount after a completed first read, that is a cache hit, and the
 * writer's mapping maps the cache copy. */
static void mmap_write_times(const char *name, int written, int with_reader) {
  enum { SZ = 8192 };
  const struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
  struct timespec m0, c0;
  if (written) {
    puts_(name, "0123456789abcdef");
  } else {
    int c = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (c < 0) out("setup create %s: -1 %s", name, ename(errno));
    else close(c);
  }
  if (truncate(name, SZ) < 0) out("setup truncate: -1 %s", ename(errno));
  if (with_reader) {
    char buf[SZ];
    slurp(name, buf, sizeof buf);  /* a first read: the mount completes the file behind it */
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  int rd = with_reader ? OPEN(L("open %s reader", name), open(name, O_RDONLY)) : -1;
  STEP(L("utimensat %s old", name), utimensat(AT_FDCWD, name, old, 0));
  if (stat_times(name, 0, &m0, &c0) < 0) return;
  tick();
  int fd = OPEN(L("open %s rw", name), open(name, O_RDWR));
  if (fd >= 0) {
    pmoved(L("stat %s after open", name), name, 0, m0, c0);
    char *m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      out("mmap %s: -1 %s", name, ename(errno));
    } else {
      /* (mmap drops the cached atime: this stat asks the file system, later ones need not) */
      pmoved(L("stat %s after mmap", name), name, 0, m0, c0);
      memcpy(m + 100, "mapped", 6);
      STEP(L("msync %s", name), msync(m, SZ, MS_SYNC));
      pmoved(L("stat %s after msync", name), name, 0, m0, c0);
      struct stat st;
      if (fstat(fd, &st) == 0) out("fstat %s after msync: mtime moved=%s", name, yesno(ts_after(st.st_mtim, m0)));
      munmap(m, SZ);
    }
    close(fd);
    pmoved(L("stat %s after close", name), name, 0, m0, c0);
  }
  if (rd >= 0) close(rd);
  char buf[16];
  int r = open(name, O_RDONLY);
  DATA(L("pread %s @100", name), pread(r, buf, 6, 100), buf);
  close(r);
}
static void sec_mmap_times(void) {
  mmap_write_times("f", 1, 0);
  mmap_write_times("e", 0, 0);
  mmap_write_times("g", 1, 1);
}

/* chown(path, -1, -1) changes nothing but ctime, which it moves (as every chown does). */
static void sec_ctime(void) {
  struct timespec m0, c0;
  puts_("f", "data");
  setup_mkdir("d", 0755);
  if (symlink("f", "sl") < 0) out("setup symlink: -1 %s", ename(errno));
  puts_("x", "#!/bin/sh\n");
  chmod("x", 0755);
  static const struct { const char *path; int flags; } cases[] = {
      {"f", 0}, {"d", 0}, {"sl", AT_SYMLINK_NOFOLLOW}, {"x", 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *p = cases[i].path;
    int fl = cases[i].flags;
    tick();
    if (stat_times(p, fl, &m0, &c0) < 0) continue;
    tick();
    STEP(L("%s %s -1 -1", fl ? "lchown" : "chown", p), fchownat(AT_FDCWD, p, (uid_t)-1, (gid_t)-1, fl));
    pmoved(L("stat %s", p), p, fl, m0, c0);
    fl ? plstat(p) : pstat(p);
  }
  int fd = OPEN("open f", open("f", O_RDONLY));
  if (fd >= 0) {
    tick();
    if (stat_times("f", 0, &m0, &c0) == 0) {
      tick();
      STEP("fchown f -1 -1", fchown(fd, (uid_t)-1, (gid_t)-1));
      pmoved("stat f", "f", 0, m0, c0);
    }
    close(fd);
  }
  /* A chown to the same owner moves ctime too. */
  tick();
  if (stat_times("f", 0, &m0, &c0) == 0) {
    tick();
    STEP("chown f 0 0 (same)", chown("f", 0, 0));
    pmoved("stat f", "f", 0, m0, c0);
  }
}

/* ------------------------------------------------------------------------------------------ */

static void tree(const char *path, int depth) {
  struct names nl;
  int dots;
  if (names_read(path, &nl, &dots) < 0) {
    out("tree %s: -1 %s", N(path), ename(errno));
    return;
  }
  if (nl.n > 64) {
    out("tree %s/: entries=%zu sum=%016" PRIx64 " (not listed)", N(path), nl.n, names_sum(&nl));
    names_free(&nl);
    return;
  }
  for (size_t i = 0; i < nl.n; i++) {
    size_t len = strlen(path) + strlen(nl.v[i]) + 2;
    char *p = malloc(len);
    if (!p) abort();
    if (!strcmp(path, ".")) snprintf(p, len, "%s", nl.v[i]);
    else snprintf(p, len, "%s/%s", path, nl.v[i]);
    struct stat st;
    if (lstat(p, &st) < 0) {
      out("tree %s: -1 %s", N(p), ename(errno));
    } else {
      out("tree %s: %s", N(p), sstr(&st));
      if (S_ISDIR(st.st_mode) && depth < 8) tree(p, depth + 1);
    }
    free(p);
  }
  names_free(&nl);
}

struct section {
  const char *name;
  void (*fn)(void);
};
static const struct section sections[] = {
    {"lookup", sec_lookup},
    {"chmod", sec_chmod},
    {"chown", sec_chown},
    {"truncate", sec_truncate},
    {"utimens", sec_utimens},
    {"readdir", sec_readdir},
    {"open", sec_open},
    {"odirect", sec_odirect},
    {"tmpfile", sec_tmpfile},
    {"rw", sec_rw},
    {"sync", sec_sync},
    {"mkdir", sec_mkdir},
    {"unlink", sec_unlink},
    {"rename", sec_rename},
    {"link", sec_link},
    {"symlink", sec_symlink},
    {"special", sec_special},
    {"statfs", sec_statfs},
    {"xattr", sec_xattr},
    {"xattr-none", sec_xattr_none},
    {"fallocate", sec_fallocate},
    {"lseek", sec_lseek},
    {"copy_file_range", sec_copy_file_range},
    {"posix-locks", sec_posix_locks},
    {"ofd-locks", sec_ofd_locks},
    {"flock", sec_flock},
    {"access", sec_access},
    {"owner", sec_owner},
    {"killpriv", sec_killpriv},
    {"names", sec_names},
    {"mmap", sec_mmap},
    {"sparse", sec_sparse},
    {"many", sec_many},
    {"symlink-xattr", sec_symlink_xattr},
    {"umask", sec_umask},
    {"acl-mode", sec_acl_mode},
    {"mmap-times", sec_mmap_times},
    {"ctime", sec_ctime},
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

static void run_section(const struct section *s) {
  out("== %s", s->name);
  g_section = s->name;
  if (fchdir(g_top) < 0 || mkdir(s->name, 0755) < 0 || chdir(s->name) < 0) {
    out("section setup: -1 %s", ename(errno));
    return;
  }
  alarm(120);
  s->fn();
  alarm(0);
  fflush(stdout);
  if (fchdir(g_top) < 0) out("fchdir top: -1 %s", ename(errno));
}

int main(int argc, char **argv) {
  if (argc < 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: optest DIR [SECTION...]\nsections:");
    for (size_t i = 0; i < NSECTIONS; i++) fprintf(stderr, " %s", sections[i].name);
    fprintf(stderr, "\n");
    return 2;
  }
  for (int a = 2; a < argc; a++) {
    size_t i = 0;
    while (i < NSECTIONS && strcmp(argv[a], sections[i].name)) i++;
    if (i == NSECTIONS) {
      fprintf(stderr, "optest: unknown section '%s'\n", argv[a]);
      return 2;
    }
  }
  g_top = open(argv[1], O_RDONLY | O_DIRECTORY);
  if (g_top < 0) {
    fprintf(stderr, "optest: %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  struct names nl;
  int dots;
  if (names_read(argv[1], &nl, &dots) < 0 || nl.n != 0) {
    fprintf(stderr, "optest: %s: must be an empty directory\n", argv[1]);
    return 2;
  }
  names_free(&nl);
  setvbuf(stdout, NULL, _IOLBF, 0);
  umask(022);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  if (geteuid() != 0) out("note: not running as root; ownership and other-user steps will differ");
  for (size_t i = 0; i < NSECTIONS; i++) {
    int selected = argc == 2;
    for (int a = 2; a < argc; a++) selected |= !strcmp(argv[a], sections[i].name);
    if (selected) run_section(&sections[i]);
  }
  if (fchdir(g_top) < 0) out("fchdir top: -1 %s", ename(errno));
  out("== tree");
  tree(".", 0);
  out("== end");
  fflush(stdout);
  return 0;
}
