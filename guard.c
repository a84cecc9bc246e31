/*
 * guard.c - files in the workspace that run later, *outside* the jail.
 *
 * Jailed code may write the workspace, but not plant code that the user's own tools run
 * unjailed afterwards: git hooks and config, hook-framework configs, editor tasks. Before
 * the run, what exists is bound read-only over itself (guard_protect). What a bind cannot
 * cover (a file that does not exist yet, a git indirection such as .git/commondir, a
 * nested repository) is checked after the run, when the jail is dead and nothing races
 * us (guard_check): git indirections that appeared are quarantined, the rest is named.
 */
#include "guard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Walk bound for the nested-repository check after the run. */
#define GUARD_WALK_MAX_ENTRIES 200000
#define GUARD_WALK_MAX_DEPTH   12

/* Bound read-only when they exist: each is read by a tool that runs code. */
static const char *const protected_files[] = {
	".gitmodules",		 /* submodule URLs, fetched by `git submodule update` */
	".pre-commit-config.yaml", /* run by the pre-commit hook */
	"lefthook.yml", ".lefthook.yml", "lefthook-local.yml", /* lefthook */
	".husky",		 /* husky's hook scripts (hooksPath .husky/_ calls them) */
	".vscode", ".idea",	 /* editor tasks and settings */
	".devcontainer",	 /* initializeCommand runs on the host */
	NULL,
};

/* Checked after the run: created during it, they are named in a warning. */
static const char *const later_files[] = {
	".gitmodules", ".pre-commit-config.yaml", "lefthook.yml", ".lefthook.yml",
	"lefthook-local.yml", ".husky", ".vscode", ".idea", ".devcontainer", NULL,
};

/* In the git dir: indirections git follows to config and hooks elsewhere. */
static const char *const git_indirections[] = { "commondir", "config.worktree", NULL };
/* In the git dir: operations whose todo lists can hold `exec` lines. */
static const char *const git_todos[] = { "rebase-merge", "rebase-apply", "sequencer", NULL };

static struct {
	struct timespec start;
	char *ws;
	char *gitdir;	      /* the workspace's own git dir, or NULL */
	char *gitdirs[4];     /* every git dir the jail could write: quarantined after */
	size_t ngitdirs;
	struct link {
		char *path, *target;
		dev_t dev;
		ino_t ino;
	} links[16];	      /* protected entries that are symlinks: the link is writable */
	size_t nlinks;
	char *planted;	      /* the empty .gitmodules we created, or NULL */
	ino_t planted_ino;
	int reaper_fd;
	bool had_dotgit;      /* the workspace had a .git before the run */
	unsigned warnings;
} g;

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

static void add_ro(struct policy *p, const char *path)
{
	const char *err;

	if (policy_add_mount(p, path, MOUNT_RO, true, "protected", &err))
		die("cannot protect %s: %s", path, err);
}

/*
 * A protected entry that is a symlink: its target can be bound, the link itself cannot (it
 * sits in a writable directory), so the jail could replace it by a directory of its own.
 * Remember it; after the run a replaced link is moved aside and restored.
 */
static void remember_link(const char *path, const struct stat *st)
{
	char target[PATH_MAX];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	struct link *l;

	if (n < 0)
		return;
	if (g.nlinks == sizeof(g.links) / sizeof(g.links[0]))
		die("too many protected entries are symbolic links (%s); refusing", path);
	target[n] = '\0';
	l = &g.links[g.nlinks++];
	l->path = xstrdup(path);
	l->target = xstrdup(target);
	l->dev = st->st_dev;
	l->ino = st->st_ino;
}

static void remember_gitdir(const char *dir)
{
	if (g.ngitdirs < sizeof(g.gitdirs) / sizeof(g.gitdirs[0]))
		g.gitdirs[g.ngitdirs++] = xstrdup(dir);
}

/*
 * Protect ws-relative rel: bound read-only if it exists; a missing directory is created
 * first when mkdir_ok (an empty .git/hooks is an ordinary git state). A symlink is
 * protected at its target when that is inside the workspace; elsewhere the jail does not
 * see it anyway.
 */
static void protect(struct policy *p, const char *base, const char *rel, bool mkdir_ok)
{
	char *path = xasprintf("%s/%s", base, rel);
	struct stat st;

	if (lstat(path, &st) && errno == ENOENT && mkdir_ok && mkdir(path, 0755) == 0)
		(void)lstat(path, &st);
	if (!lstat(path, &st)) {
		if (!S_ISLNK(st.st_mode)) {
			add_ro(p, path);
		} else {
			char *real = realpath(path, NULL);

			if (real && under(real, g.ws) && strcmp(real, g.ws))
				add_ro(p, real);
			free(real);
			remember_link(path, &st);
		}
	}
	free(path);
}

/* core.hooksPath in a git config, when it names a path inside the workspace. */
static void protect_hooks_path(struct policy *p, const char *gitdir)
{
	char *cfg = xasprintf("%s/config", gitdir), line[1024];
	FILE *f = fopen(cfg, "re");
	bool core = false;

	free(cfg);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *s = line + strspn(line, " \t"), *v, *rel;
		size_t n;

		if (*s == '[') {
			core = !strncasecmp(s, "[core]", 6);
			continue;
		}
		if (!core || strncasecmp(s, "hookspath", 9) || !(v = strchr(s, '=')))
			continue;
		v += 1 + strspn(v + 1, " \t\"");
		v[strcspn(v, "\"\r\n")] = '\0';
		for (n = strlen(v); n && strchr(" \t/", v[n - 1]); n--)
			v[n - 1] = '\0';
		if (!*v || *v == '~')
			continue;
		/* relative to the worktree; only what resolves inside the workspace is ours to
		 * protect ("../x" must not bind a host path into the jail) */
		{
			char *joined = *v == '/' ? xstrdup(v) : xasprintf("%s/%s", g.ws, v);
			char *real = realpath(joined, NULL);

			free(joined);
			if (!real || !under(real, g.ws) || !strcmp(real, g.ws)) {
				free(real);
				continue;
			}
			snprintf(line, sizeof(line), "%s", real + strlen(g.ws) + 1);
			free(real);
			rel = line;
		}
		protect(p, g.ws, rel, false);
		/* husky v9: hooksPath .husky/_ holds stubs that run .husky/<hook> */
		n = strlen(rel);
		if (n > 2 && !strcmp(rel + n - 2, "/_")) {
			rel[n - 2] = '\0';
			protect(p, g.ws, rel, false);
		}
	}
	fclose(f);
}

/*
 * An empty .gitmodules for the run, so that it can be bound read-only (a mount needs an
 * existing target). It must not outlive the run even if agentjail is SIGKILLed, so a
 * small reaper in the host's mount namespace holds the read end of a pipe that only this
 * process writes: EOF means we are gone, however we went, and it removes the file if it
 * is still the empty one we made. (Unlinking works from the host namespace although the
 * file is a mount point in the jail's: the kernel only refuses that in the namespace
 * that has the mount.)
 */
static void plant_gitmodules(void)
{
	char *path = xasprintf("%s/.gitmodules", g.ws);
	struct stat made, now;
	int fd, pfd[2];
	char c;
	pid_t pid;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(path);
		return;
	}
	if (fstat(fd, &made) || pipe2(pfd, O_CLOEXEC)) {
		close(fd);
		unlink(path);
		die_errno("cannot prepare %s", path);
	}
	close(fd);
	pid = fork();
	if (pid < 0) {
		unlink(path);
		die_errno("fork");
	}
	if (pid == 0) {
		/* the reaper: nothing of ours open but the pipe (stdout/stderr must close
		 * with agentjail), and out of agentjail's process group and session, so that
		 * Ctrl-C, a hang-up or kill -PGID that ends agentjail does not end it first */
		(void)setsid();
		/* forked before the proxy took the secrets: drop this copy of them */
		for (char **e = environ; e && *e; e++)
			wipe(*e, strlen(*e));
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGQUIT, SIG_IGN);
		if (dup2(pfd[0], 3) < 0)
			_exit(1);
		syscall(SYS_close_range, 4, ~0U, 0);
		close(0);
		close(1);
		close(2);
		while (read(3, &c, 1) < 0 && errno == EINTR)
			;
		if (!lstat(path, &now) && S_ISREG(now.st_mode) && now.st_size == 0 &&
		    now.st_ino == made.st_ino && now.st_dev == made.st_dev)
			unlink(path);
		_exit(0);
	}
	close(pfd[0]);
	g.reaper_fd = pfd[1]; /* closed only by our exit */
	g.planted = path;
	g.planted_ino = made.st_ino;
}

static bool has_entry(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	struct stat st;
	bool ok = !lstat(p, &st);

	free(p);
	return ok;
}

/* core.worktree of a git dir, resolved (relative to the git dir), or NULL. */
static char *config_worktree(const char *gitdir)
{
	char *cfg = xasprintf("%s/config", gitdir), line[PATH_MAX + 32], *res = NULL;
	FILE *f = fopen(cfg, "re");
	bool core = false;

	free(cfg);
	while (f && !res && fgets(line, sizeof(line), f)) {
		char *s = line + strspn(line, " \t"), *v;

		if (*s == '[') {
			core = !strncasecmp(s, "[core]", 6);
			continue;
		}
		if (!core || strncasecmp(s, "worktree", 8) || !(v = strchr(s, '=')))
			continue;
		v += 1 + strspn(v + 1, " \t\"");
		v[strcspn(v, "\"\r\n")] = '\0';
		if (*v == '/') {
			res = realpath(v, NULL);
		} else {
			char *joined = xasprintf("%s/%s", gitdir, v);

			res = realpath(joined, NULL);
			free(joined);
		}
	}
	if (f)
		fclose(f);
	return res;
}

/* A git dir: HEAD, objects, refs, hooks; and neither / nor holding $HOME. */
static bool plausible_gitdir(const char *dir)
{
	const char *home = getenv("HOME");
	char *rhome = home ? realpath(home, NULL) : NULL;
	bool ok = dir[0] && strcmp(dir, "/") && !(rhome && under(rhome, dir)) &&
		  has_entry(dir, "HEAD") && has_entry(dir, "objects") && has_entry(dir, "refs") &&
		  has_entry(dir, "hooks");

	free(rhome);
	return ok;
}

/* Bind a git dir outside the workspace read-write, its code-bearing parts read-only. */
static void bind_gitdir(struct policy *p, const char *dir, const char *origin)
{
	const char *err;

	if (policy_add_mount(p, dir, MOUNT_RW, false, origin, &err))
		die("cannot bind %s: %s", dir, err);
	protect(p, dir, "hooks", false);
	protect(p, dir, "config", false);
	protect(p, dir, "info", false);
	protect(p, dir, "modules", false);
	/* other worktrees' admin dirs: their commondir/gitdir would redirect those
	 * checkouts (the caller re-binds this worktree's own dir writable) */
	protect(p, dir, "worktrees", false);
	protect_hooks_path(p, dir);
	remember_gitdir(dir);
}

/* A worktree's own admin dir, writable for git, with the files that redirect it read-only. */
static void bind_worktree_admin(struct policy *p, const char *admin)
{
	const char *err;

	if (policy_add_mount(p, admin, MOUNT_RW, false, "worktree", &err))
		die("cannot bind %s: %s", admin, err);
	protect(p, admin, "commondir", false);
	protect(p, admin, "gitdir", false);
	protect(p, admin, "config.worktree", false);
	remember_gitdir(admin);
}

/*
 * A submodule checkout: .git is a file "gitdir: <super>/.git/modules/<name>", and that git
 * dir's core.worktree names this workspace.
 */
static bool protect_submodule(struct policy *p, const char *dotgit, const char *target)
{
	char *wt;
	bool ok;

	if (!strstr(target, "/.git/modules/") || !plausible_gitdir(target))
		return false;
	wt = config_worktree(target);
	ok = wt && !strcmp(wt, g.ws);
	free(wt);
	if (!ok)
		return false;
	bind_gitdir(p, target, "submodule");
	add_ro(p, dotgit);
	return true;
}

/*
 * A linked worktree: .git is a file "gitdir: <common>/worktrees/<name>". Accept it only
 * if it is one: the target's own gitdir file points back at this workspace's .git, and
 * <common> is a git dir (HEAD, objects, refs) that is neither / nor holds $HOME. Then the
 * common dir is bound read-write (git works) with its hooks and config read-only.
 */
static void protect_worktree(struct policy *p, const char *dotgit)
{
	char line[PATH_MAX + 16], *target = NULL, *back = NULL, *common = NULL, *bp, *slash;
	FILE *f = fopen(dotgit, "re");
	bool ok = false;

	if (f && fgets(line, sizeof(line), f) && !strncmp(line, "gitdir: ", 8)) {
		line[strcspn(line, "\r\n")] = '\0';
		target = realpath(line + 8, NULL);
	}
	if (f)
		fclose(f);
	if (target && protect_submodule(p, dotgit, target)) {
		free(target);
		return;
	}
	if (target && (slash = strrchr(target, '/')) && slash - target > 10 &&
	    !strncmp(slash - 10, "/worktrees", 10)) {
		common = xstrndup(target, (size_t)(slash - 10 - target));
		bp = xasprintf("%s/gitdir", target);
		f = fopen(bp, "re");
		free(bp);
		if (f && fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\r\n")] = '\0';
			back = realpath(line, NULL);
		}
		if (f)
			fclose(f);
		ok = back && !strcmp(back, dotgit) && plausible_gitdir(common);
	}
	if (!ok)
		die("%s is neither a linked worktree's nor a submodule's .git file that agentjail "
		    "can verify (the git dir it names must point back at this workspace); refusing "
		    "to bind what it names",
		    dotgit);
	bind_gitdir(p, common, "worktree");
	bind_worktree_admin(p, target);
	add_ro(p, dotgit); /* rewritten, it would point git elsewhere */
	free(target);
	free(back);
	free(common);
}

void guard_protect(struct policy *p, const char *ws)
{
	char *dotgit = xasprintf("%s/.git", ws);
	const char *err;
	struct stat st;
	size_t i;

	g.ws = xstrdup(ws);
	/* The kernel stamps files from its coarse clock (one tick, up to 4 ms, behind the
	 * fine one; multigrain timestamps only ever move forward from it). A fine start time
	 * would call a file the jail wrote in its first tick older than the run. */
	clock_gettime(CLOCK_REALTIME_COARSE, &g.start);
	g.had_dotgit = !lstat(dotgit, &st);
	if (!lstat(dotgit, &st) && S_ISDIR(st.st_mode)) {
		g.gitdir = xstrdup(dotgit);
		remember_gitdir(dotgit);
		/* .git becomes a mount point, so it cannot be renamed away and replaced by a
		 * directory with hooks of the code's choosing (EBUSY). */
		if (policy_add_mount(p, dotgit, MOUNT_RW, false, "protected", &err))
			die("cannot protect %s: %s", dotgit, err);
		protect(p, ws, ".git/hooks", true);
		protect(p, ws, ".git/info", true);
		protect(p, ws, ".git/modules", true); /* submodules' own hooks and config */
		protect(p, ws, ".git/worktrees", false); /* what redirects linked worktrees */
		protect(p, ws, ".git/config", false);
		protect_hooks_path(p, dotgit);
		plant_gitmodules();
	} else if (!lstat(dotgit, &st) && S_ISREG(st.st_mode)) {
		protect_worktree(p, dotgit);
		plant_gitmodules();
	}
	for (i = 0; protected_files[i]; i++)
		protect(p, ws, protected_files[i], false);
	free(dotgit);
}

static bool changed_since_start(const struct stat *st)
{
	return st->st_ctim.tv_sec > g.start.tv_sec ||
	       (st->st_ctim.tv_sec == g.start.tv_sec && st->st_ctim.tv_nsec >= g.start.tv_nsec);
}

static void __attribute__((format(printf, 1, 2))) warn(const char *fmt, ...)
{
	char buf[PATH_MAX + 512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	msg("%s", buf);
	g.warnings++;
}

/* A git indirection that appeared during the run is moved aside: git must not follow it. */
static void quarantine_indirections(const char *gitdir)
{
	char *path, *aside;
	struct stat st;
	size_t i;

	for (i = 0; git_indirections[i]; i++) {
		path = xasprintf("%s/%s", gitdir, git_indirections[i]);
		if (!lstat(path, &st) && changed_since_start(&st)) {
			aside = xasprintf("%s.agentjail-quarantine", path);
			if (rename(path, aside) == 0)
				warn("warning: the jailed command wrote %s, which would make git "
				     "take its config and hooks from elsewhere; moved aside to "
				     "*.agentjail-quarantine",
				     path);
			else
				warn("warning: the jailed command wrote %s, which makes git take its "
				     "config and hooks from elsewhere; remove it before running git",
				     path);
			free(aside);
		}
		free(path);
	}
	for (i = 0; git_todos[i]; i++) {
		path = xasprintf("%s/%s", gitdir, git_todos[i]);
		if (!lstat(path, &st) && changed_since_start(&st))
			warn("warning: the jailed command left %s: its todo list can run commands "
			     "(exec lines) when you continue; read it first",
			     path);
		free(path);
	}
}

/* A protected symlink the jail replaced: move the replacement aside, put the link back. */
static void restore_links(void)
{
	struct stat st;
	size_t i;

	for (i = 0; i < g.nlinks; i++) {
		const struct link *l = &g.links[i];
		char *aside;

		if (!lstat(l->path, &st) && S_ISLNK(st.st_mode) && st.st_dev == l->dev &&
		    st.st_ino == l->ino)
			continue;
		aside = xasprintf("%s.agentjail-quarantine", l->path);
		if ((lstat(l->path, &st) && errno == ENOENT) || rename(l->path, aside) == 0) {
			if (symlink(l->target, l->path) == 0)
				warn("warning: the jailed command replaced the link %s; the "
				     "replacement is moved aside to *.agentjail-quarantine and the "
				     "link restored",
				     l->path);
			else
				warn("warning: the jailed command replaced the link %s; restore it "
				     "(-> %s) before running git",
				     l->path, l->target);
		} else {
			warn("warning: the jailed command replaced the link %s (-> %s); remove what "
			     "is there now before running git",
			     l->path, l->target);
		}
		free(aside);
	}
}

/* A nested repository created or changed in the run: git status can run its config. */
static void check_nested_repo(const char *path)
{
	static const char *const parts[] = { "", "/config", "/hooks", "/commondir" };
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		char *p = xasprintf("%s%s", path, parts[i]);
		int rc = lstat(p, &st);

		free(p);
		if (!rc && changed_since_start(&st)) {
			warn("warning: the jailed command created or changed the nested repository "
			     "%s; git in the outer repository can run its config (e.g. "
			     "core.fsmonitor): inspect it before running git here",
			     path);
			return;
		}
	}
}

struct walk {
	size_t entries;
	bool truncated;
};

/* d_type, or where the filesystem does not say (DT_UNKNOWN), lstat. Never a link. */
static bool is_dir(DIR *d, const struct dirent *e)
{
	struct stat st;

	if (e->d_type != DT_UNKNOWN)
		return e->d_type == DT_DIR;
	return !fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) && S_ISDIR(st.st_mode);
}

static void walk(struct walk *w, int dfd, const char *path, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;

	if (!d) {
		close(dfd);
		return;
	}
	while ((e = readdir(d))) {
		char *child;
		int fd;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (++w->entries > GUARD_WALK_MAX_ENTRIES) {
			w->truncated = true;
			break;
		}
		child = xasprintf("%s/%s", path, e->d_name);
		if (!strcmp(e->d_name, ".git")) {
			/* the workspace's own .git is checked by guard_check; a new one is not */
			if (depth > 0 || !g.had_dotgit)
				check_nested_repo(child);
		} else if (is_dir(d, e)) {
			if (depth >= GUARD_WALK_MAX_DEPTH) {
				w->truncated = true;
			} else {
				fd = openat(dirfd(d), e->d_name,
					    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (fd >= 0)
					walk(w, fd, child, depth + 1);
			}
		}
		free(child);
	}
	closedir(d);
}

/* Did the run write git's index (in any git dir it could write)? */
static bool index_written(void)
{
	struct stat st;
	bool changed = false;

	for (size_t i = 0; i < g.ngitdirs && !changed; i++) {
		char *p = xasprintf("%s/index", g.gitdirs[i]);

		changed = !lstat(p, &st) && changed_since_start(&st);
		free(p);
	}
	return changed;
}

/* The submodule paths .gitmodules names (bound read-only for the run: as it was before). */
static void check_submodules(void)
{
	char *path = xasprintf("%s/.gitmodules", g.ws), line[PATH_MAX + 64];
	FILE *f = fopen(path, "re");

	free(path);
	while (f && fgets(line, sizeof(line), f)) {
		char *s = line + strspn(line, " \t"), *v;

		if (strncmp(s, "path", 4) || !(v = strchr(s, '=')))
			continue;
		v += 1 + strspn(v + 1, " \t\"");
		v[strcspn(v, "\"\r\n")] = '\0';
		if (!*v || *v == '/' || strstr(v, ".."))
			continue;
		path = xasprintf("%s/%s/.git", g.ws, v);
		check_nested_repo(path);
		free(path);
	}
	if (f)
		fclose(f);
}

/*
 * Nested repositories matter because the outer git follows gitlinks in its index (git
 * status runs a submodule's config, e.g. core.fsmonitor). A new gitlink needs a new index,
 * so the whole workspace is walked (bounded) only when the run wrote the index; otherwise
 * only the submodules .gitmodules names are checked. A workspace that was no repository
 * has no outer git: only a .git created at its top is named. (A full walk of a 100,000-entry
 * workspace after every run cost ~44 ms, seven times the start-up.)
 */
static void nested_repos(void)
{
	struct walk w = { 0 };
	char *top;
	int fd;

	if (!g.had_dotgit) {
		top = xasprintf("%s/.git", g.ws);
		check_nested_repo(top);
		free(top);
		return;
	}
	if (!index_written()) {
		check_submodules();
		return;
	}
	fd = open(g.ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		walk(&w, fd, g.ws, 0);
	if (w.truncated)
		msg("note: the workspace has over %d entries or is deeper than %d levels; nested "
		    "repositories beyond that were not checked",
		    GUARD_WALK_MAX_ENTRIES, GUARD_WALK_MAX_DEPTH);
}

void guard_check(void)
{
	struct stat st;
	size_t i;

	if (!g.ws)
		return;
	guard_abort();
	restore_links();
	for (i = 0; i < g.ngitdirs; i++)
		quarantine_indirections(g.gitdirs[i]);
	for (i = 0; later_files[i]; i++) {
		char *p = xasprintf("%s/%s", g.ws, later_files[i]);

		if ((!g.planted || strcmp(p, g.planted)) && !lstat(p, &st) &&
		    changed_since_start(&st))
			warn("warning: the jailed command created %s, which tools may run later "
			     "outside the jail; review it",
			     p);
		free(p);
	}
	nested_repos();
}

void guard_abort(void)
{
	struct stat st;

	if (g.planted && !lstat(g.planted, &st) && S_ISREG(st.st_mode) && st.st_size == 0 &&
	    st.st_ino == g.planted_ino)
		unlink(g.planted);
}
