/* cachemax start, stop, enable, disable: a directory's start options come from the option
 * table (config/config_options.h) on the command line and from the config file
 * (config/config_file.h) for enable and --all; the same checks run before a start and before
 * an enable. Exit codes as in cli.h. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config_file.h"
#include "config/config_options.h"
#include "control/control.h"
#include "control/control_trust.h"
#include "control/control_uring.h"
#include "daemon/daemon.h"
#include "util/size.h"

#define STOP_WAIT_SECONDS 10

/* The options of start and enable that are not daemon options (not in the table). */
enum { OPTION_ALL = 1, OPTION_CONFIG, OPTION_LAZY };

static bool path_inside(const char *inner, const char *outer)
{
	size_t n = strlen(outer);
	if (!strcmp(outer, "/"))
		return true;
	return !strncmp(inner, outer, n) && (inner[n] == '\0' || inner[n] == '/');
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[CONTROL_PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The cache directory may not exist yet: resolve what exists (realpath) and keep the rest. */
static int resolve_cache(const char *path, char *out, size_t size)
{
	char resolved[CONTROL_PATH_MAX];
	if (realpath(path, resolved)) {
		if (strlen(resolved) >= size)
			return -ENAMETOOLONG;
		strcpy(out, resolved);
		return 0;
	}
	return control_resolve_path(path, out, size);
}

/* Mounting over DIR covers every mount below it: refuse, and say which. */
static bool refuse_submounts(const char *dir)
{
	char list[2048];
	int count = control_submounts(dir, list, sizeof(list));

	if (count < 0) {
		fprintf(stderr, "cachemax: cannot list the mounts below '%s': %s\n", dir, strerror(-count));
		return true;
	}
	if (count == 0)
		return false;
	fprintf(stderr, "cachemax: cannot accelerate '%s': %d file system%s mounted below it: %s\n"
	        "the mount would cover them; choose a directory without mounts below it, or pass "
	        "--allow-submounts to serve them through the mount as well\n",
	        dir, count, count == 1 ? " is" : "s are", list);
	return true;
}

/* What other running caches on the file system of `cache` claim, and that file system's size
 * and free space. A cache's claim is its capacity: what it may fill, part of which it already
 * has (and is then no longer free). */
struct fs_claims {
	dev_t dev;
	const char *dir;        /* the directory being started: its own record does not count */
	uint64_t claimed;
	unsigned caches;
};

static int claims_one(const struct control_state *st, void *arg)
{
	struct fs_claims *c = arg;
	struct stat s;
	if (!strcmp(st->dir, c->dir) || !st->cache_on || !control_pid_alive(st->daemon_pid) ||
	    stat(st->cache, &s) < 0 || s.st_dev != c->dev)
		return 0;
	c->claimed += st->cache_size;
	c->caches++;
	return 0;
}

/* The file system the cache directory is (or will be) on: that of its nearest existing
 * ancestor (named in at). */
static int cache_fs(const char *cache, struct statvfs *sv, dev_t *dev, char *at, size_t size)
{
	char path[CONTROL_PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s", cache);
	while (statvfs(path, sv) < 0 || stat(path, &st) < 0) {
		char *slash = strrchr(path, '/');
		if (errno != ENOENT || !slash || !strcmp(path, "/"))
			return -errno;
		slash[slash == path] = '\0';  /* "/a" -> "/", "/a/b" -> "/a" */
	}
	*dev = st.st_dev;
	snprintf(at, size, "%s", path);
	return 0;
}

/* --size against the cache file system, and the default size at a first start: a share of
 * the free space less what the other running caches on it may still fill, so that several
 * caches on one file system do not each count on the same free space. `claims` receives a
 * sentence for the user when other caches share it (empty otherwise). */
static int size_check(struct config_start *s, char *claims, size_t claims_size)
{
	struct daemon_options *o = &s->daemon;
	struct fs_claims c = { .dir = o->dir };
	char at[CONTROL_PATH_MAX], given[32], fs_size[32], claimed[32];
	uint64_t total, free_bytes, unclaimed;
	struct statvfs sv;
	int rc = cache_fs(o->cache, &sv, &c.dev, at, sizeof(at));

	claims[0] = '\0';
	if (rc < 0) {
		fprintf(stderr, "cachemax: cannot find the size of the file system of '%s': %s\n", o->cache,
		        strerror(-rc));
		return 1;
	}
	total = (uint64_t)sv.f_blocks * sv.f_frsize;
	free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (o->size > total) {
		fprintf(stderr, "cachemax: --size %s is larger than the cache's file system (%s in all, at "
		        "'%s'): give at most %lluM\n", size_format(o->size, given, sizeof(given)),
		        size_format(total, fs_size, sizeof(fs_size)), at, (unsigned long long)(total >> 20));
		return 1;
	}
	control_state_each(claims_one, &c);
	/* The others' claims partly hold data already (then it is not free): what they may still
	 * fill is at most their claim, and at most what the file system has besides them. */
	unclaimed = total > c.claimed ? total - c.claimed : 0;
	if (unclaimed > free_bytes)
		unclaimed = free_bytes;
	o->size_default = unclaimed / 100 * DAEMON_SIZE_DEFAULT_PERCENT;
	if (o->size_default < DAEMON_SIZE_MIN)
		o->size_default = DAEMON_SIZE_MIN;
	if (c.caches)
		snprintf(claims, claims_size, "%u other running cache%s on the file system at %s claim%s %s of "
		         "its %s", c.caches, c.caches == 1 ? "" : "s", at, c.caches == 1 ? "s" : "",
		         size_format(c.claimed, claimed, sizeof(claimed)), size_format(total, fs_size, sizeof(fs_size)));
	return 0;
}

/* Every check start makes before it starts, for `given` (DIR as typed) and s; resolves
 * s->daemon.dir and .cache. `enabling`: for enable, which does not start (a DIR already
 * accelerated is fine, nothing is created). Returns 0 or the exit code. */
static int start_check(const char *given, struct config_start *s, bool enabling, char *claims,
                       size_t claims_size)
{
	struct daemon_options *o = &s->daemon;
	char why[CONTROL_WHY_MAX];
	struct stat st;

	if (geteuid() != 0) {
		fprintf(stderr, enabling ? "cachemax: 'enable' records what root's service starts: run it as root\n" :
		        "cachemax: must run as root: mounting in place and passthrough need CAP_SYS_ADMIN\n");
		return 1;
	}
	if (stat(given, &st) < 0) {
		fprintf(stderr, "cachemax: cannot accelerate '%s': %s\n", given, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "cachemax: cannot accelerate '%s': not a directory\n", given);
		return 1;
	}
	/* The kernel's resolution ("x/.." is the parent of x's target), not a lexical one. */
	if (!realpath(given, o->dir) || resolve_cache(s->cache, o->cache, sizeof(o->cache)) < 0) {
		fprintf(stderr, "cachemax: cannot resolve the paths given\n");
		return 1;
	}
	if (control_pseudo_dir(o->dir, why, sizeof(why)) < 0) {
		fprintf(stderr, "cachemax: %s\n", why);
		return 1;
	}
	if (!enabling && control_is_accelerated(o->dir)) {
		fprintf(stderr, "cachemax: '%s' is already accelerated (see 'cachemax status')\n", o->dir);
		return 1;
	}
	if (path_inside(o->cache, o->dir)) {
		fprintf(stderr, "cachemax: the cache directory '%s' is inside '%s': choose a cache directory outside it\n",
		        o->cache, o->dir);
		return 1;
	}
	if (path_inside(o->dir, o->cache)) {
		fprintf(stderr, "cachemax: '%s' is inside the cache directory '%s': choose a cache directory elsewhere\n",
		        o->dir, o->cache);
		return 1;
	}
	if (stat(o->cache, &st) == 0 && !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "cachemax: the cache '%s' exists and is not a directory\n", o->cache);
		return 1;
	}
	/* The kernel keeps file data across opens only where the watcher sees every change, and
	 * it watches the original's own file system only. */
	if (o->openless && s->allow_submounts) {
		fprintf(stderr, "cachemax: --openless cannot be combined with --allow-submounts: changes "
		        "in file systems mounted below '%s' are not watched; drop one of the two\n", o->dir);
		return 1;
	}
	/* Once accelerated, the mount covers any submount: only checkable before. */
	if (!s->allow_submounts && !control_is_accelerated(o->dir) && refuse_submounts(o->dir))
		return 1;
	if (size_check(s, claims, claims_size))
		return 1;
	/* Checked as far as it exists (start creates the rest, then checks it whole). */
	if (control_trust_path(o->cache, "the cache directory", why, sizeof(why)) < 0) {
		fprintf(stderr, "cachemax: %s\n", why);
		return 1;
	}
	if (config_start_format(s, true, o->options_text, sizeof(o->options_text)) < 0)
		snprintf(o->options_text, sizeof(o->options_text), "(too many to record)");
	return 0;
}

/* Start s, checked by start_check. Returns the exit code. */
static int start_launch(struct config_start *s, const char *claims)
{
	struct daemon_options *o = &s->daemon;
	char summary[512], why[CONTROL_WHY_MAX];
	int rc = mkdir_p(o->cache, 0700);

	if (rc < 0) {
		fprintf(stderr, "cachemax: cannot create the cache directory '%s': %s\n", o->cache, strerror(-rc));
		return 1;
	}
	/* Created by root, then checked whole: nobody else can have made or changed any part of
	 * it in between. */
	if (control_trust_path(o->cache, "the cache directory", why, sizeof(why)) < 0) {
		fprintf(stderr, "cachemax: %s\n", why);
		return 1;
	}
	if (s->foreground)
		return daemon_run_foreground(o) == 0 ? 0 : 1;
	if (daemon_start(o, summary, sizeof(summary)) < 0)
		return 1;
	printf("accelerated %s (cache %s, %s)\n", o->dir, o->cache, summary);
	if (claims[0])
		printf("  note: %s\n", claims);
	return 0;
}

/* The getopt loop of start and enable: the table's options into s, and --all / --config. */
static int start_options_parse(const char *cmd, int argc, char **argv, struct config_start *s,
                               bool *all, const char **config)
{
	static const struct option own[] = {
		{ "all", no_argument, NULL, OPTION_ALL },
		{ "config", required_argument, NULL, OPTION_CONFIG },
	};
	static struct option opts[CONFIG_OPTION_MAX + sizeof(own) / sizeof(own[0]) + 1];
	char msg[CONFIG_MESSAGE_MAX];
	int c;

	if (!strcmp(cmd, "start"))
		config_options_getopt(opts, own, 2);
	else
		config_options_getopt(opts, own + 1, 1);  /* enable: --config, not --all */
	config_start_init(s);
	while ((c = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		const struct config_option *opt = config_option_by_val(c);
		if (c == OPTION_ALL) {
			*all = true;
		} else if (c == OPTION_CONFIG) {
			*config = optarg;
		} else if (!opt) {
			return cli_option_error(cmd, c, argv);
		} else if (!strcmp(cmd, "enable") && (opt->flags & CONFIG_NOT_IN_FILE)) {
			return cli_usage_error("'enable' records options for the service: --%s is for 'start' only",
			                       opt->name);
		} else if (config_option_set(opt, optarg, s, "--", msg, sizeof(msg)) < 0) {
			return cli_usage_error("%s", msg);
		}
	}
	return 0;
}

/* Shorter paths first; the file's order among equals (lines are unique per section). */
static int section_outer_first(const void *a, const void *b)
{
	const struct config_section *x = a, *y = b;
	size_t lx = strlen(x->dir), ly = strlen(y->dir);
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* The config file of start --all and stop --all, its mistakes printed: 1 to go on; 0 when
 * nothing is enabled (said); -1 when it cannot be read (said). */
static int enabled_load(const char *path, struct config_file *cf)
{
	char msg[CONFIG_MESSAGE_MAX + CONTROL_PATH_MAX];
	int rc = config_file_load(path, cf, msg, sizeof(msg));

	if (rc == -ENOENT) {
		printf("no directory is enabled (%s does not exist; see 'cachemax enable')\n", path);
		return 0;
	}
	if (rc < 0) {
		fprintf(stderr, "cachemax: %s\n", msg);
		return -1;
	}
	if (cf->errors)
		fprintf(stderr, "%s", cf->errors);
	return 1;
}

/* start --all: every section of the config file; each reported. */
static int start_all(const char *config_path)
{
	static struct config_file cf;
	char claims[CONTROL_PATH_MAX + 128];
	const char *path = config_file_path(config_path);
	unsigned failed = 0, started = 0, running = 0;
	int rc = enabled_load(path, &cf);

	if (rc <= 0)
		return -rc;
	/* A directory before those below it: started first, its mount then covers theirs (started
	 * after, below it, they would be submounts it refuses). stop --all goes the other way. */
	qsort(cf.sections, cf.count, sizeof(cf.sections[0]), section_outer_first);
	for (size_t i = 0; i < cf.count; i++) {
		struct config_section *sec = &cf.sections[i];
		if (sec->bad) {
			fprintf(stderr, "cachemax: %s: not started: its section in %s (line %u) has mistakes\n",
			        sec->dir, path, sec->line);
			failed++;
			continue;
		}
		if (control_is_accelerated(sec->dir)) {
			printf("%s is already accelerated\n", sec->dir);
			running++;
			continue;
		}
		if (start_check(sec->dir, &sec->start, false, claims, sizeof(claims)) ||
		    start_launch(&sec->start, claims)) {
			fprintf(stderr, "cachemax: %s: not started\n", sec->dir);
			failed++;
			continue;
		}
		started++;
	}
	printf("start --all: %u started, %u already running, %u failed (%s)\n", started, running,
	       failed + (cf.error_count && !failed), path);
	rc = failed || cf.error_count ? 1 : 0;
	config_file_release(&cf);
	return rc;
}

int cmd_start(int argc, char **argv)
{
	static struct config_start s;  /* large (globs): not on the stack */
	char claims[CONTROL_PATH_MAX + 128];
	const char *config = NULL;
	bool all = false;
	int rc = start_options_parse("start", argc, argv, &s, &all, &config);

	if (rc)
		return rc;
	if (all) {
		struct config_start def;
		config_start_init(&def);
		if (optind != argc || memcmp(&s, &def, sizeof(s)))
			return cli_usage_error("%s", "'start --all' takes no directory and no start options: "
			                       "they come from the config file (cachemax enable)");
		if (cli_refuse_non_root("start --all") || cli_refuse_untrusted_run_dir())
			return 1;
		return start_all(config);
	}
	if (config)
		return cli_usage_error("%s", "--config goes with 'start --all'; to record DIR's options, use 'cachemax enable'");
	if (optind + 1 != argc)
		return cli_usage_error("%s", "'start' takes exactly one directory: cachemax start DIR --cache CACHEDIR");
	if (!s.cache[0])
		return cli_usage_error("'start %s' needs --cache CACHEDIR (a directory on the fast device)", argv[optind]);
	rc = start_check(argv[optind], &s, false, claims, sizeof(claims));
	return rc ? rc : start_launch(&s, claims);
}

int cmd_enable(int argc, char **argv)
{
	static struct config_start s;
	char claims[CONTROL_PATH_MAX + 128], body[DAEMON_OPTIONS_TEXT_MAX * 4];
	const char *config = NULL, *path;
	bool all = false;
	int rc = start_options_parse("enable", argc, argv, &s, &all, &config);

	if (rc)
		return rc;
	if (optind + 1 != argc)
		return cli_usage_error("%s", "'enable' takes exactly one directory: cachemax enable DIR --cache CACHEDIR [options]");
	if (!s.cache[0])
		return cli_usage_error("'enable %s' needs --cache CACHEDIR (a directory on the fast device)", argv[optind]);
	rc = start_check(argv[optind], &s, true, claims, sizeof(claims));
	if (rc)
		return rc;
	/* The resolved cache path: the file must not depend on where enable ran. */
	snprintf(s.cache, sizeof(s.cache), "%s", s.daemon.cache);
	if (config_start_format(&s, false, body, sizeof(body)) < 0) {
		fprintf(stderr, "cachemax: the options of '%s' are too long to record\n", s.daemon.dir);
		return 1;
	}
	path = config_file_path(config);
	rc = config_file_put(path, s.daemon.dir, body);
	if (rc < 0) {
		fprintf(stderr, "cachemax: cannot write the config file '%s': %s\n", path, strerror(-rc));
		return 1;
	}
	printf("enabled %s in %s; 'cachemax start --all' (cachemax.service at boot) starts it\n",
	       s.daemon.dir, path);
	if (claims[0])
		printf("  note: %s\n", claims);
	return 0;
}

int cmd_disable(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, OPTION_CONFIG },
		{ NULL, 0, NULL, 0 },
	};
	char dir[CONTROL_PATH_MAX];
	const char *config = NULL, *path;
	int c, rc;

	while ((c = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		if (c != OPTION_CONFIG)
			return cli_option_error("disable", c, argv);
		config = optarg;
	}
	if (optind + 1 != argc)
		return cli_usage_error("%s", "'disable' takes exactly one directory: cachemax disable DIR");
	if (cli_refuse_non_root("disable"))
		return 1;
	/* Lexical where it no longer exists: a removed directory can still be disabled. */
	if (control_resolve_path(argv[optind], dir, sizeof(dir)) < 0) {
		fprintf(stderr, "cachemax: cannot resolve '%s'\n", argv[optind]);
		return 1;
	}
	path = config_file_path(config);
	rc = config_file_remove(path, dir);
	if (rc == -ENOENT) {
		fprintf(stderr, "cachemax: '%s' is not enabled in %s\n", dir, path);
		return 1;
	}
	if (rc < 0) {
		fprintf(stderr, "cachemax: cannot rewrite the config file '%s': %s\n", path, strerror(-rc));
		return 1;
	}
	printf("disabled %s in %s%s\n", dir, path,
	       control_is_accelerated(dir) ? " (it is still accelerated: 'cachemax stop' stops it)" : "");
	return 0;
}

/* An accelerated directory below another one is covered by that one's mount: its own mount
 * is reached through the covering daemon's fd on the original directory. */
struct covering {
	const char *dir;
	struct control_state best;
	size_t best_len;
};

static int covering_one(const struct control_state *st, void *arg)
{
	struct covering *c = arg;
	size_t n = strlen(st->dir);
	if (n > c->best_len && path_inside(c->dir, st->dir) && strcmp(c->dir, st->dir) &&
	    st->origin_fd >= 0 && control_pid_alive(st->daemon_pid) && control_is_accelerated(st->dir)) {
		c->best = *st;
		c->best_len = n;
	}
	return 0;
}

/* The path that reaches the mount at `dir` (dir itself unless it is covered), and the pid of
 * the covering daemon (0: none). */
static void stop_target(const char *dir, char *target, size_t size, pid_t *covering_pid)
{
	struct control_mount m;
	struct covering c = { .dir = dir };
	struct stat st;

	snprintf(target, size, "%s", dir);
	*covering_pid = 0;
	if (control_mount_get(dir, &m) < 0 || stat(dir, &st) < 0 || st.st_dev == m.dev)
		return;  /* reachable at its path (or dead: that answers ENOTCONN at its path) */
	control_state_each(covering_one, &c);
	if (!c.best_len)
		return;
	snprintf(target, size, "/proc/%d/fd/%d%s", (int)c.best.daemon_pid, c.best.origin_fd,
	         dir + strlen(c.best.dir));
	*covering_pid = c.best.daemon_pid;
}

/* Stop one directory, given as typed (`not_accelerated_ok`: for --all, a directory that is not
 * accelerated is reported, not a failure). Returns the exit code. */
static int stop_one(const char *given, bool lazy, bool not_accelerated_ok)
{
	char dir[CONTROL_PATH_MAX], target[CONTROL_PATH_MAX + 64], holders[2048];
	struct control_state state;
	bool have_state;
	pid_t covering_pid;
	struct statx stx;
	struct stat st;
	int count;

	if (control_resolve_path(given, dir, sizeof(dir)) < 0) {
		fprintf(stderr, "cachemax: cannot resolve '%s'\n", given);
		return 1;
	}
	control_uring_release(0, NULL);  /* daemons that died without a watchdog to say so */
	have_state = control_state_find(dir, &state) == 0;
	if (!control_is_accelerated(dir)) {
		if (have_state && !control_pid_alive(state.daemon_pid))
			control_state_remove(dir);
		if (not_accelerated_ok) {
			printf("%s was not accelerated\n", dir);
			return 0;
		}
		fprintf(stderr, "cachemax: '%s' is not accelerated (see 'cachemax status')\n", dir);
		return 1;
	}
	stop_target(dir, target, sizeof(target), &covering_pid);
	/* A dead daemon leaves a mount that answers ENOTCONN: detach it, nothing else can be done.
	 * FORCE_SYNC: attributes the kernel still caches (for the attribute timeout) would hide it. */
	if (statx(AT_FDCWD, target, AT_STATX_FORCE_SYNC, STATX_TYPE, &stx) < 0 &&
	    (errno == ENOTCONN || errno == ECONNABORTED)) {
		if (umount2(target, MNT_DETACH) < 0) {
			fprintf(stderr, "cachemax: cannot clear the dead mount on '%s': %s\n", dir, strerror(errno));
			return 1;
		}
		control_state_remove(dir);
		printf("cleared a dead mount on %s; the original directory is back\n", dir);
		return 0;
	}
	/* The covering daemon holds the nodes its kernel looked up below it: not an application. */
	count = control_holders_except(dir, covering_pid, holders, sizeof(holders));
	if (count > 0 && !lazy) {
		fprintf(stderr, "cachemax: cannot stop '%s': files under it are in use by %s\n"
		        "close them, or run 'cachemax stop --lazy %s' to detach now and finish when they are closed\n",
		        dir, holders, dir);
		return 1;
	}
	if (umount2(target, lazy || covering_pid ? MNT_DETACH : 0) < 0) {
		if (errno == EBUSY)
			fprintf(stderr, "cachemax: cannot stop '%s': it is busy; close the files under it or use --lazy\n", dir);
		else
			fprintf(stderr, "cachemax: cannot unmount '%s': %s\n", dir, strerror(errno));
		return 1;
	}
	if (have_state && count == 0) {
		/* The daemon sees the unmount and exits; wait so that stop means stopped. A covering
		 * daemon lets go of its fds into the detached mount when its kernel looks the name up
		 * again (after the entry timeout) and forgets the old nodes: stat makes it do that. */
		for (int i = 0; i < STOP_WAIT_SECONDS * 20 && !control_pid_wait_exit(state.daemon_pid, 50); i++) {
			if (covering_pid)
				stat(dir, &st);
		}
		if (control_pid_alive(state.daemon_pid))
			fprintf(stderr, "cachemax: warning: daemon %d is still running after the unmount\n",
			        (int)state.daemon_pid);
	}
	if (count > 0)
		printf("detached %s; the daemon serves the %d process(es) still using it until they close their files\n",
		       dir, count);
	else
		printf("stopped %s\n", dir);
	return 0;
}

/* stop --all: every section of the config file, deepest first (an accelerated directory
 * inside another one stops before it). */
static int stop_all(const char *config_path, bool lazy)
{
	static struct config_file cf;
	const char *path = config_file_path(config_path);
	unsigned failed = 0;
	int rc = enabled_load(path, &cf);

	if (rc <= 0)
		return -rc;
	/* Sections with mistakes name a directory all the same: stop it. Those below others first. */
	qsort(cf.sections, cf.count, sizeof(cf.sections[0]), section_outer_first);
	for (size_t i = cf.count; i-- > 0;)
		if (cf.sections[i].dir[0] == '/' && stop_one(cf.sections[i].dir, lazy, true))
			failed++;
	printf("stop --all: %zu enabled, %u failed (%s)\n", cf.count, failed, path);
	rc = failed || cf.error_count ? 1 : 0;
	config_file_release(&cf);
	return rc;
}

int cmd_stop(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lazy", no_argument, NULL, OPTION_LAZY },
		{ "all", no_argument, NULL, OPTION_ALL },
		{ "config", required_argument, NULL, OPTION_CONFIG },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL;
	bool lazy = false, all = false;
	int c;

	while ((c = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		if (c == OPTION_LAZY)
			lazy = true;
		else if (c == OPTION_ALL)
			all = true;
		else if (c == OPTION_CONFIG)
			config = optarg;
		else
			return cli_option_error("stop", c, argv);
	}
	if (all && optind != argc)
		return cli_usage_error("%s", "'stop --all' takes no directory: it stops every enabled one");
	if (!all && config)
		return cli_usage_error("%s", "--config goes with 'stop --all'");
	if (!all && optind + 1 != argc)
		return cli_usage_error("%s", "'stop' takes exactly one directory: cachemax stop DIR [--lazy]");
	if (cli_refuse_non_root("stop") || cli_refuse_untrusted_run_dir())
		return 1;
	return all ? stop_all(config, lazy) : stop_one(argv[optind], lazy, false);
}
