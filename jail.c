/*
 * jail.c - namespaces, uid/gid maps, the filesystem view, pivot_root, /dev, /proc, and
 * init (PID 1), which reaps orphans, forwards signals and runs the command.
 *
 * Order inside init, each step fatal on failure (never half a jail):
 *   maps -> lo up (+ proxy listener) -> hostname -> mounts -> pivot_root -> fork command
 *   -> command: fds, setsid, caps, no_new_privs, seccomp, exec.
 *
 * The filesystem is built the way bubblewrap does it: a tmpfs is mounted over /tmp in the
 * new mount namespace and made the root with pivot_root, so the host's tree stays
 * reachable at /oldroot while the jail's root is assembled at /newroot; a second
 * pivot_root switches to /newroot and the old root is detached. Mount targets are opened
 * with openat2(RESOLVE_IN_ROOT) relative to /newroot and mounted through /proc/self/fd,
 * so a symlink planted in the workspace resolves inside the jail, never to the host.
 */
#include "jail.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy.h"
#include "seccomp.h"

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
struct mount_attr {
	unsigned long long attr_set, attr_clr, propagation, userns_fd;
};
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

#define CLONE_NS_ALL                                                                               \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | \
	 CLONE_NEWCGROUP)

#define OLDROOT "/oldroot"
#define NEWROOT "/newroot"

const char *const jail_system_dirs[] = { "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
					 "/libx32", NULL };

/* What programs need from /etc; the rest of the host's /etc does not exist inside. */
static const char *const etc_files[] = {
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "localtime", "timezone",
	/* trust stores and OpenSSL config, never the private-key dirs beside them (a root
	 * caller owns those, so permission bits alone would not keep them out) */
	"ssl/certs", "ssl/openssl.cnf", "ca-certificates", "ca-certificates.conf",
	"pki/tls/certs", "pki/tls/openssl.cnf", "pki/ca-trust/extracted", "pki/ca-trust/source",
	"crypto-policies", "alternatives",
	"host.conf", "gai.conf", "protocols", "services", "mime.types", "os-release",
	"debian_version", "lsb-release", "locale.alias", "locale.conf", "default/locale",
	"bash.bashrc", "profile", "profile.d", "inputrc", "environment", "magic", "mailcap",
	"gitconfig", "python3", "python3.11", "perl", "terminfo", "ld.so.preload", NULL,
};

/* Bundle paths that tools read for the system trust store (Debian, Fedora, Alpine, SUSE). */
static const char *const ca_bundle_paths[] = {
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
	"/etc/ssl/ca-bundle.pem",
	NULL,
};

static volatile sig_atomic_t child_pid;

/*
 * /etc files up to this size are copied into the jail's tmpfs; larger ones (ld.so.cache,
 * mime.types) are bound: copying 40-70 KiB cost ~0.15 ms each, a bind ~0.04 ms.
 */
#define ETC_COPY_MAX (16 << 10)

/* ---- mount plan ---------------------------------------------------------------------- */

enum op_kind {
	OP_TMPFS,   /* empty writable tmpfs ($HOME, /tmp) */
	OP_BIND_RW,
	OP_BIND_RO,
	OP_OVERLAY,
	OP_PROTECT, /* read-only bind of a path over itself inside a writable bind */
	OP_HIDE,
};

struct op {
	const char *path;
	const char *src; /* host path (links resolved) for binds and overlays */
	enum op_kind kind;
	bool optional;
	int depth;
	unsigned mode; /* OP_TMPFS */
};

static VEC(struct op) plan;
static int newroot_fd = -1;
static bool have_setattr = true; /* mount_setattr(2), Linux 5.12+ */
static int overlay_seq;

static int path_depth(const char *p)
{
	int d = 0;

	for (; *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			d++;
	return d;
}

static void plan_add(const char *path, const char *src, enum op_kind kind, bool optional,
		     unsigned mode)
{
	struct op *o = VEC_PUSH(plan);

	o->path = path;
	o->src = src;
	o->kind = kind;
	o->optional = optional;
	o->depth = path_depth(path);
	o->mode = mode;
}

/* Parents before children; at one path, tmpfs, then binds, then protect/hide on top. */
static int op_cmp(const void *a, const void *b)
{
	const struct op *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth - y->depth;
	if (x->kind != y->kind)
		return (int)x->kind - (int)y->kind;
	return 0;
}

/* ---- small filesystem helpers ---------------------------------------------------------- */

/* Open path (absolute, as seen inside the jail) under /newroot without leaving it. */
static int open_in_root(const char *path, int flags)
{
	struct open_how how = {
		.flags = (unsigned long long)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};

	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	return (int)syscall(SYS_openat2, newroot_fd, path, &how, sizeof(how));
}

/*
 * Create path under /newroot as a directory (or, when file is set, its last component as
 * an empty file) so it can serve as a mount point; missing parents are created first.
 * Every step is opened with RESOLVE_IN_ROOT, so nothing is created outside /newroot.
 * The common case, a target that exists, costs one openat2.
 */
static int make_mountpoint(const char *path, bool file)
{
	char parent[PATH_MAX];
	const char *base = strrchr(path, '/');
	size_t plen;
	int fd, pfd, rc;

	fd = open_in_root(path, O_PATH);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != ENOENT || !base)
		return -1;
	plen = (size_t)(base - path);
	if (plen >= sizeof(parent))
		return errno = ENAMETOOLONG, -1;
	memcpy(parent, path, plen);
	parent[plen] = '\0';
	if (plen && make_mountpoint(parent, false))
		return -1;
	pfd = open_in_root(plen ? parent : "/", O_PATH | O_DIRECTORY);
	if (pfd < 0)
		return -1;
	if (file) {
		fd = openat(pfd, base + 1, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		rc = fd < 0 ? -1 : close(fd);
	} else {
		rc = mkdirat(pfd, base + 1, 0755);
	}
	if (rc && errno == EEXIST)
		rc = 0;
	close(pfd);
	return rc;
}

/* The staging root has no /proc of its own: the host's is reachable under /oldroot. */
static void fd_path(char *buf, size_t len, int fd)
{
	snprintf(buf, len, OLDROOT "/proc/self/fd/%d", fd);
}

/*
 * Make the mount at dst (and everything below it) read-only. mount_setattr() does it
 * recursively in one call; older kernels get a remount of the top mount, which must
 * repeat the flags the kernel locked on it (nosuid, nodev, noexec) or it fails with EPERM.
 */
static int make_readonly(const char *dst)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
	char p[64];
	struct statvfs sv;
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
	int fd = open_in_root(dst, O_PATH), rc;

	if (fd < 0)
		return -1;
	rc = have_setattr ? (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE,
					 &attr, sizeof(attr))
			  : -1;
	if (rc && (!have_setattr || errno == ENOSYS)) {
		have_setattr = false;
		fd_path(p, sizeof(p), fd);
		rc = statvfs(p, &sv);
		if (!rc) {
			flags |= (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) |
				 (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
				 (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
			rc = mount(NULL, p, NULL, flags, NULL);
		}
	}
	close(fd);
	return rc;
}

/*
 * Open a host path (seen under /oldroot). Strict: no symbolic link anywhere in it, for
 * sources the monitor already resolved; a link found now was swapped in meanwhile.
 */
static int open_source(const char *hostpath, bool strict)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	char src[PATH_MAX + sizeof(OLDROOT)];

	snprintf(src, sizeof(src), OLDROOT "%s", hostpath);
	if (!strict)
		return open(src, O_PATH | O_CLOEXEC);
	return (int)syscall(SYS_openat2, AT_FDCWD, src, &how, sizeof(how));
}

/* Bind the host's src (seen at /oldroot) to path in the jail. */
static int bind_from(const char *srcpath, const char *path, bool ro, bool optional, bool strict)
{
	char sp[64], dp[64];
	struct stat st;
	int sfd, dfd, rc;

	sfd = open_source(srcpath, strict);
	if (sfd < 0) {
		if (optional && errno == ENOENT)
			return 0;
		if (errno == ELOOP)
			die("cannot bind %s: a symbolic link appeared in %s while the jail was "
			    "being built; refusing",
			    path, srcpath);
		die_errno("cannot bind %s", path);
	}
	if (fstat(sfd, &st))
		die_errno("stat %s", path);
	if (make_mountpoint(path, !S_ISDIR(st.st_mode)))
		die_errno("cannot create mount point %s", path);
	dfd = open_in_root(path, O_PATH);
	if (dfd < 0)
		die_errno("cannot open mount point %s", path);
	fd_path(sp, sizeof(sp), sfd);
	fd_path(dp, sizeof(dp), dfd);
	rc = mount(sp, dp, NULL, MS_BIND | MS_REC, NULL);
	close(sfd);
	close(dfd);
	if (rc)
		die_errno("cannot bind %s", path);
	if (ro && make_readonly(path))
		die_errno("cannot make %s read-only", path);
	return 0;
}

/* Bind a trusted host path (system dirs, /etc entries, /dev nodes) at the same path. */
static int bind_path(const char *path, bool ro, bool optional)
{
	return bind_from(path, path, ro, optional, false);
}

static void mount_tmpfs_at(const char *path, unsigned mode, uid_t uid, gid_t gid, bool ro)
{
	char opts[96], dp[64];
	int fd;

	if (make_mountpoint(path, false))
		die_errno("cannot create %s", path);
	fd = open_in_root(path, O_PATH | O_DIRECTORY);
	if (fd < 0)
		die_errno("cannot open %s", path);
	fd_path(dp, sizeof(dp), fd);
	snprintf(opts, sizeof(opts), "mode=%04o,uid=%u,gid=%u,size=50%%", mode, uid, gid);
	if (mount("tmpfs", dp, "tmpfs", MS_NOSUID | MS_NODEV | (ro ? MS_RDONLY : 0), opts))
		die_errno("cannot mount tmpfs on %s", path);
	close(fd);
}

/* --hide: an empty read-only tmpfs over a directory, an empty read-only file over a file. */
static void hide_path(const char *path, uid_t uid, gid_t gid)
{
	char dp[64];
	struct stat st;
	int fd = open_in_root(path, O_PATH);

	if (fd < 0)
		return; /* nothing there: nothing to hide */
	if (fstat(fd, &st))
		die_errno("stat %s", path);
	close(fd);
	if (S_ISDIR(st.st_mode)) {
		mount_tmpfs_at(path, 0755, uid, gid, true);
		return;
	}
	fd = open_in_root(path, O_PATH);
	if (fd < 0)
		die_errno("cannot open %s", path);
	fd_path(dp, sizeof(dp), fd);
	if (mount("/oldroot/dev/null", dp, NULL, MS_BIND, NULL))
		die_errno("cannot hide %s", path);
	close(fd);
	if (make_readonly(path))
		die_errno("cannot make %s read-only", path);
}

/*
 * An overlay: the host's copy as the lower layer, writes into a tmpfs upper layer that is
 * thrown away with the jail. Unprivileged overlayfs (Linux 5.11+) needs "userxattr".
 */
static void overlay_path(const char *srcpath, const char *path, bool optional)
{
	char lower[64], base[48], up[64], work[64], opts[512], dp[64];
	struct stat st;
	int lfd, fd, rc;

	lfd = open_source(srcpath, true);
	if (lfd < 0 || fstat(lfd, &st) || !S_ISDIR(st.st_mode)) {
		if (lfd >= 0)
			close(lfd);
		if (optional)
			return;
		die("cannot overlay %s: not an existing directory", path);
	}
	/* The lower layer by descriptor: exactly the directory the monitor resolved. */
	fd_path(lower, sizeof(lower), lfd);
	snprintf(base, sizeof(base), "/overlay/%d", overlay_seq);
	snprintf(up, sizeof(up), "/overlay/%d/upper", overlay_seq);
	snprintf(work, sizeof(work), "/overlay/%d/work", overlay_seq++);
	/* the upper layers get a tmpfs of their own: the staging root is small (64 MiB) */
	if (overlay_seq == 1 && (mkdir("/overlay", 0700) ||
				 mount("tmpfs", "/overlay", "tmpfs", MS_NOSUID | MS_NODEV,
				       "mode=0700,size=50%")))
		die_errno("cannot create the overlays' tmpfs");
	if (mkdir(base, 0700) || mkdir(up, 0755) || mkdir(work, 0700))
		die_errno("cannot create overlay layers");
	if (chown(up, st.st_uid, st.st_gid) && errno != EINVAL)
		die_errno("cannot prepare overlay for %s", path);
	if (make_mountpoint(path, false))
		die_errno("cannot create mount point %s", path);
	fd = open_in_root(path, O_PATH | O_DIRECTORY);
	if (fd < 0)
		die_errno("cannot open %s", path);
	fd_path(dp, sizeof(dp), fd);
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s,userxattr", lower, up,
		 work);
	rc = mount("overlay", dp, "overlay", MS_NOSUID | MS_NODEV, opts);
	if (rc && errno == EINVAL) {
		snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", lower, up, work);
		rc = mount("overlay", dp, "overlay", MS_NOSUID | MS_NODEV, opts);
	}
	if (rc)
		die_errno("cannot mount overlay on %s", path);
	close(fd);
	close(lfd);
}

/*
 * Create or replace the file PATH of the new root with DATA. The parent is opened inside
 * the root (created if missing) and the file relative to it, never through a symlink: at
 * every start this runs for each small /etc file, so it takes two path lookups, not five.
 */
static int write_in_root(const char *path, const char *data, size_t len, mode_t mode)
{
	char parent[PATH_MAX];
	const char *base = strrchr(path, '/');
	size_t plen;
	int pfd, fd, rc;

	if (!base || !base[1])
		return errno = EINVAL, -1;
	plen = (size_t)(base - path);
	if (plen >= sizeof(parent))
		return errno = ENAMETOOLONG, -1;
	memcpy(parent, path, plen);
	parent[plen] = '\0';
	pfd = open_in_root(plen ? parent : "/", O_PATH | O_DIRECTORY);
	if (pfd < 0 && errno == ENOENT && !make_mountpoint(parent, false))
		pfd = open_in_root(parent, O_PATH | O_DIRECTORY);
	if (pfd < 0)
		return -1;
	fd = openat(pfd, base + 1, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	close(pfd);
	if (fd < 0)
		return -1;
	rc = write_all(fd, data, len);
	if (!rc)
		rc = fchmod(fd, mode); /* exactly MODE, whatever the caller's umask */
	close(fd);
	return rc;
}

/* Read a whole host file (bounded) into a new buffer. */
static char *slurp(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0, cap = 65536;
	char *buf;
	ssize_t r;

	if (fd < 0)
		return NULL;
	buf = xmalloc(cap);
	while ((r = read(fd, buf + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap) {
			if (cap >= max)
				break;
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	close(fd);
	*len = n;
	return buf;
}

/* ---- /etc, /dev, /proc ---------------------------------------------------------------- */

/*
 * One entry of the curated /etc: a symlink is recreated (its target is read inside the
 * jail's view), a small regular file is copied into the tmpfs (a copy is much cheaper
 * than a mount, and start-up time is mostly mounts), a directory or a large file is
 * bound. With mount_setattr one recursive call at the end makes all of /etc read-only;
 * without it each bind is remounted on its own.
 */
static void etc_entry(const char *path)
{
	char src[PATH_MAX + 16], target[PATH_MAX], dst[PATH_MAX + 16];
	struct stat st;
	size_t len;
	ssize_t n;
	char *data;

	snprintf(src, sizeof(src), OLDROOT "%s", path);
	if (lstat(src, &st))
		return;
	if (S_ISLNK(st.st_mode)) {
		n = readlink(src, target, sizeof(target) - 1);
		if (n < 0)
			die_errno("readlink %s", path);
		target[n] = '\0';
		if (make_mountpoint(path, true) && errno != EEXIST)
			die_errno("cannot create %s", path);
		snprintf(dst, sizeof(dst), NEWROOT "%s", path);
		if (unlink(dst) || symlink(target, dst))
			die_errno("cannot link %s", path);
		return;
	}
	if (S_ISREG(st.st_mode) && st.st_size <= ETC_COPY_MAX) {
		data = slurp(src, ETC_COPY_MAX, &len);
		if (!data)
			return; /* unreadable for this user: it stays absent */
		if (write_in_root(path, data, len, st.st_mode & 0644))
			die_errno("cannot copy %s", path);
		free(data);
		return;
	}
	bind_path(path, !have_setattr, true);
}

static void setup_etc(const struct jail *j)
{
	const char *home = getenv("HOME");
	char buf[4096], path[PATH_MAX];
	const char *name = j->user ? j->user : "user";
	size_t i;
	int n;

	mount_tmpfs_at("/etc", 0755, j->uid, j->gid, false);
	for (i = 0; etc_files[i]; i++) {
		snprintf(path, sizeof(path), "/etc/%s", etc_files[i]);
		etc_entry(path);
	}
	if (j->uid == 0)
		n = snprintf(buf, sizeof(buf),
			     "root:x:0:0:root:%s:/bin/sh\nnobody:x:65534:65534:nobody:/:/usr/sbin/"
			     "nologin\n",
			     home ? home : "/root");
	else
		n = snprintf(buf, sizeof(buf),
			     "root:x:0:0:root:/root:/bin/sh\n%s:x:%u:%u:%s:%s:/bin/sh\nnobody:x:"
			     "65534:65534:nobody:/:/usr/sbin/nologin\n",
			     name, j->uid, j->gid, name, home ? home : "/");
	if (n < 0 || n >= (int)sizeof(buf) || write_in_root("/etc/passwd", buf, (size_t)n, 0644))
		die_errno("cannot write /etc/passwd");
	if (j->gid == 0)
		n = snprintf(buf, sizeof(buf), "root:x:0:\nnogroup:x:65534:\n");
	else
		n = snprintf(buf, sizeof(buf), "root:x:0:\n%s:x:%u:\nnogroup:x:65534:\n", name,
			     j->gid);
	if (n < 0 || n >= (int)sizeof(buf) || write_in_root("/etc/group", buf, (size_t)n, 0644))
		die_errno("cannot write /etc/group");
	n = snprintf(buf, sizeof(buf), "127.0.0.1\tlocalhost agentjail\n::1\tlocalhost\n");
	if (write_in_root("/etc/hosts", buf, (size_t)n, 0644))
		die_errno("cannot write /etc/hosts");
	n = snprintf(buf, sizeof(buf),
		     "# agentjail: there is no DNS inside the jail; names are resolved by the "
		     "proxy (HTTPS_PROXY)\noptions attempts:1 timeout:1\n");
	if (write_in_root("/etc/resolv.conf", buf, (size_t)n, 0644))
		die_errno("cannot write /etc/resolv.conf");
	if (write_in_root("/etc/hostname", "agentjail\n", 10, 0644))
		die_errno("cannot write /etc/hostname");
}

/*
 * Trust the run CA: a combined bundle (host roots + run CA) at /etc/agentjail/ca-bundle.pem,
 * bound over every system bundle path that exists, and the CA alone for the variables
 * that add to the default trust (NODE_EXTRA_CA_CERTS).
 */
static void setup_ca(const struct jail *j)
{
	char src[PATH_MAX], dp[64], sp[64];
	char *roots = NULL, *bundle;
	size_t rlen = 0, i;
	int sfd, dfd;

	if (!j->ca_pem)
		return;
	for (i = 0; ca_bundle_paths[i] && !roots; i++) {
		snprintf(src, sizeof(src), OLDROOT "%s", ca_bundle_paths[i]);
		roots = slurp(src, 16 << 20, &rlen);
	}
	bundle = xmalloc(rlen + j->ca_pem_len + 2);
	if (rlen)
		memcpy(bundle, roots, rlen);
	if (rlen && bundle[rlen - 1] != '\n')
		bundle[rlen++] = '\n';
	memcpy(bundle + rlen, j->ca_pem, j->ca_pem_len);
	if (write_in_root("/etc/agentjail/ca-bundle.pem", bundle, rlen + j->ca_pem_len, 0644) ||
	    write_in_root("/etc/agentjail/run-ca.pem", j->ca_pem, j->ca_pem_len, 0644))
		die_errno("cannot write the CA bundle");
	free(roots);
	free(bundle);
	for (i = 0; ca_bundle_paths[i]; i++) {
		dfd = open_in_root(ca_bundle_paths[i], O_PATH);
		if (dfd < 0)
			continue;
		sfd = open_in_root("/etc/agentjail/ca-bundle.pem", O_PATH);
		if (sfd < 0)
			die_errno("cannot open the CA bundle");
		fd_path(sp, sizeof(sp), sfd);
		fd_path(dp, sizeof(dp), dfd);
		if (mount(sp, dp, NULL, MS_BIND, NULL))
			die_errno("cannot bind the CA bundle over %s", ca_bundle_paths[i]);
		close(sfd);
		close(dfd);
	}
}

static void setup_dev(const struct jail *j)
{
	static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty",
					     NULL };
	char path[64];
	size_t i;

	mount_tmpfs_at("/dev", 0755, j->uid, j->gid, false);
	for (i = 0; nodes[i]; i++) {
		snprintf(path, sizeof(path), "/dev/%s", nodes[i]);
		bind_path(path, false, false);
	}
	if (make_mountpoint("/dev/pts", false) || make_mountpoint("/dev/shm", false))
		die_errno("cannot create /dev");
	/* A private devpts instance: the jail's ptys, none of the host's. */
	if (mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620"))
		die_errno("cannot mount /dev/pts");
	if (symlink("pts/ptmx", NEWROOT "/dev/ptmx") || symlink("/proc/self/fd", NEWROOT "/dev/fd") ||
	    symlink("/proc/self/fd/0", NEWROOT "/dev/stdin") ||
	    symlink("/proc/self/fd/1", NEWROOT "/dev/stdout") ||
	    symlink("/proc/self/fd/2", NEWROOT "/dev/stderr"))
		die_errno("cannot populate /dev");
	mount_tmpfs_at("/dev/shm", 01777, j->uid, j->gid, false);
}

static void setup_proc(const struct jail *j)
{
	/*
	 * hidepid=invisible hides the processes the command may not ptrace: init, which is
	 * non-dumpable, so not even its fd list or cmdline shows (for a root caller the
	 * command is uid 0 too, and owner checks alone would let it list /proc/1/fd).
	 * gid= names the group exempt from hiding; the default is gid 0, which for a root
	 * caller is the command's own group, so name a gid this namespace does not map.
	 */
	char opts[64];

	snprintf(opts, sizeof(opts), "hidepid=invisible,gid=%u",
		 j->gid == 65534 ? 65533U : 65534U);
	if (make_mountpoint("/proc", false))
		die_errno("cannot create /proc");
	if (mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts))
		die_errno("cannot mount /proc");
}

/* Replicate /bin -> usr/bin style links of merged-/usr systems; else bind read-only. */
static void setup_system_dir(const char *dir)
{
	char src[PATH_MAX], target[PATH_MAX], dst[PATH_MAX];
	struct stat st;
	ssize_t n;

	snprintf(src, sizeof(src), OLDROOT "%s", dir);
	if (lstat(src, &st))
		return;
	if (S_ISLNK(st.st_mode)) {
		n = readlink(src, target, sizeof(target) - 1);
		if (n < 0)
			die_errno("readlink %s", dir);
		target[n] = '\0';
		snprintf(dst, sizeof(dst), NEWROOT "%s", dir);
		if (symlink(target, dst))
			die_errno("cannot link %s", dir);
		return;
	}
	bind_path(dir, true, true);
}

/* ---- the whole view ------------------------------------------------------------------ */

static void plan_build(const struct jail *j)
{
	const struct policy *p = j->p;
	const char *home = getenv("HOME");
	size_t i;

	if (home && home[0] == '/' && strcmp(home, "/"))
		plan_add(home, NULL, OP_TMPFS, false, 0700);
	plan_add("/tmp", NULL, OP_TMPFS, false, 01777);
	if (j->exe_dir)
		plan_add(j->exe_dir, j->exe_dir, OP_BIND_RO, true, 0);
	for (i = 0; i < p->mounts.n; i++) {
		const struct mount_rule *m = &p->mounts.v[i];
		static const enum op_kind kinds[] = {
			[MOUNT_RO] = OP_BIND_RO,
			[MOUNT_RW] = OP_BIND_RW,
			[MOUNT_HIDE] = OP_HIDE,
			[MOUNT_OVERLAY] = OP_OVERLAY,
		};

		if (m->mode != MOUNT_HIDE && !m->source) {
			if (m->optional)
				continue;
			die("%s (%s): no such file or directory", m->path, m->origin);
		}
		plan_add(m->path, m->source, kinds[m->mode], m->optional, 0);
	}
	qsort(plan.v, plan.n, sizeof(*plan.v), op_cmp);
}

static void plan_run(const struct jail *j)
{
	size_t i;

	for (i = 0; i < plan.n; i++) {
		const struct op *o = &plan.v[i];

		switch (o->kind) {
		case OP_TMPFS:
			mount_tmpfs_at(o->path, o->mode, j->uid, j->gid, false);
			break;
		case OP_BIND_RW:
			bind_from(o->src, o->path, false, o->optional, true);
			break;
		case OP_BIND_RO:
		case OP_PROTECT:
			bind_from(o->src, o->path, true, o->optional, true);
			break;
		case OP_OVERLAY:
			overlay_path(o->src, o->path, o->optional);
			break;
		case OP_HIDE:
			hide_path(o->path, j->uid, j->gid);
			break;
		}
	}
}

static void setup_filesystem(const struct jail *j)
{
	size_t i;

	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL))
		die_errno("cannot make mounts private");
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m"))
		die_errno("cannot mount the staging tmpfs");
	if (chdir("/tmp") || mkdir("newroot", 0755) || mkdir("oldroot", 0755))
		die_errno("cannot prepare the staging tmpfs");
	if (syscall(SYS_pivot_root, ".", "oldroot"))
		die_errno("pivot_root");
	if (chdir("/"))
		die_errno("chdir /");
	if (mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m"))
		die_errno("cannot mount the jail's root");
	newroot_fd = open(NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (newroot_fd < 0)
		die_errno("open " NEWROOT);

	for (i = 0; jail_system_dirs[i]; i++)
		setup_system_dir(jail_system_dirs[i]);
	setup_etc(j);
	setup_dev(j);
	setup_proc(j);
	plan_build(j);
	plan_run(j);
	setup_ca(j);

	/* The root, /etc and /dev are read-only: only the mounts meant to be writable are.
	 * Our own tmpfs mounts carry no locked flags, so a plain remount is enough. */
	if (make_readonly("/etc") ||
	    mount(NULL, NEWROOT "/dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL))
		die_errno("cannot make /etc and /dev read-only");
	if (mount(NULL, NEWROOT, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL))
		die_errno("cannot make the root read-only");
	/* Same trick as in the mount namespace docs: stack the old root on the new one and
	 * detach it, leaving no path back to the host's tree. */
	if (chdir(NEWROOT) || syscall(SYS_pivot_root, ".", "."))
		die_errno("pivot_root into the jail");
	if (umount2(".", MNT_DETACH))
		die_errno("cannot detach the host's root");
	if (chdir("/"))
		die_errno("chdir /");
	close(newroot_fd);
}

/* ---- init ---------------------------------------------------------------------------- */

static void set_maps(const struct jail *j)
{
	char map[64];

	/* Writing "deny" is required before an unprivileged gid_map (CVE-2014-8989). */
	if (write_file("/proc/self/setgroups", "deny") && errno != ENOENT)
		die_errno("cannot deny setgroups");
	snprintf(map, sizeof(map), "%u %u 1\n", j->uid, j->uid);
	if (write_file("/proc/self/uid_map", map))
		die_errno("cannot write uid_map");
	snprintf(map, sizeof(map), "%u %u 1\n", j->gid, j->gid);
	if (write_file("/proc/self/gid_map", map))
		die_errno("cannot write gid_map");
}

static void setup_network(const struct jail *j)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PROXY_PORT) };
	struct ifreq ifr;
	int s, one = 1;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		die_errno("socket");
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr))
		die_errno("cannot read lo's flags");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr))
		die_errno("cannot bring lo up");
	close(s);
	if (j->proxy_ctl < 0)
		return;

	/* The proxy's listener is born in this namespace, so only the jail can connect to it,
	 * and the proxy, outside, accepts on it and dials from the host's namespace. */
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		die_errno("socket");
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 4096))
		die_errno("cannot create the proxy listener");
	if (proxy_send_listener(j->proxy_ctl, s))
		die_errno("cannot hand the listener to the proxy");
	close(s);
	close(j->proxy_ctl);
}

/* Close every fd above 2 but the ones listed: inherited fds must not reach the jail. */
static void close_fds_except(const int *keep, size_t n)
{
	unsigned lo = 3;
	size_t i;
	int sorted[8];
	size_t k = 0;

	for (i = 0; i < n && k < 8; i++)
		if (keep[i] > 2)
			sorted[k++] = keep[i];
	/* tiny insertion sort */
	for (i = 1; i < k; i++) {
		int v = sorted[i];
		size_t m = i;

		for (; m > 0 && sorted[m - 1] > v; m--)
			sorted[m] = sorted[m - 1];
		sorted[m] = v;
	}
	for (i = 0; i < k; i++) {
		if ((unsigned)sorted[i] > lo)
			syscall(SYS_close_range, lo, (unsigned)sorted[i] - 1, 0);
		lo = (unsigned)sorted[i] + 1;
	}
	syscall(SYS_close_range, lo, ~0U, 0);
}

static const int fwd_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2 };

/*
 * A fork bomb in the jail stops at JAIL_NPROC processes (threads count too). Since Linux
 * 5.14 the count is kept per user namespace, so this bounds the jail's processes without
 * touching the caller's others. The kernel exempts host uid 0, so for a root caller it
 * does not hold (README: residual). Lowered only, never raised; soft and hard alike, and
 * without capabilities the command cannot raise it again.
 */
#define JAIL_NPROC 8192

static void limit_procs(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NPROC, &rl))
		die_errno("getrlimit");
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > JAIL_NPROC)
		rl.rlim_max = JAIL_NPROC;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > rl.rlim_max)
		rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NPROC, &rl))
		die_errno("cannot limit the jail's processes");
}

static void init_forward(int sig)
{
	int e = errno;

	if (child_pid > 0)
		kill(child_pid, sig);
	errno = e;
}

static void reset_signals(void)
{
	sigset_t all;
	size_t i;

	for (i = 0; i < sizeof(fwd_signals) / sizeof(fwd_signals[0]); i++)
		signal(fwd_signals[i], SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

/* The command's stdin/stdout/stderr that were the caller's terminal: its own terminal, or
 * /dev/null for a stdin whose keystrokes are not relayed. Never the caller's. */
static void attach_tty(const struct jail *j)
{
	for (int fd = 0; fd < 3; fd++)
		if ((j->tty_map & (1u << fd)) && dup2(j->tty_fd, fd) < 0)
			die_errno("dup2 of the pseudo-terminal");
	if (j->null_stdin) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
			die_errno("/dev/null as stdin");
		close(fd);
	}
	if (j->stdin_fd >= 0 && dup2(j->stdin_fd, STDIN_FILENO) < 0)
		die_errno("dup2 of the stdin pipe");
}

static void __attribute__((noreturn)) exec_command(const struct jail *j, int err_fd)
{
	extern char **environ;
	int e;

	reset_signals();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL))
		die_errno("prctl");
	attach_tty(j);
	close_fds_except(&err_fd, 1);
	/* A new session detaches the command from the caller's terminal (no TIOCSTI target,
	 * no SIGHUP from the caller, a scheduling autogroup of its own). */
	if (setsid() < 0)
		die_errno("setsid");
	/*
	 * With keystrokes relayed (stdin), the pseudo-terminal becomes the new session's
	 * controlling terminal: job control inside, and /dev/tty is it. Output only, the
	 * command keeps none: a password prompt on /dev/tty fails at once instead of waiting
	 * for keystrokes that are never relayed.
	 */
	if ((j->tty_map & 1) && ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0)
		die_errno("cannot make the pseudo-terminal the command's terminal");
	if (chdir(j->p->workspace))
		die_errno("cannot enter the workspace %s", j->p->workspace);
	environ = j->envp;
	execvp(j->p->argv[0], j->p->argv);
	e = errno;
	if (e == ENOENT || e == ENOTDIR)
		msg("%s: command not found", j->p->argv[0]);
	else
		msg("%s: %s", j->p->argv[0], strerror(e));
	_exit(e == ENOENT || e == ENOTDIR ? EXIT_NOT_FOUND : EXIT_NOT_EXEC);
}

static int wait_status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_JAIL_FAILED;
}

/*
 * The monitor's go, one byte on the alive pipe, once the proxy (if any) reported that it
 * serves: until then the command does not start. End of file: the monitor is gone.
 */
static void wait_go(const struct jail *j)
{
	char b;

	if (read_all(j->alive_fd, &b, 1))
		_exit(EXIT_JAIL_FAILED);
}

/* PID 1: run the command, forward signals to it, reap everything, exit with its status. */
static void __attribute__((noreturn)) init_main(struct jail *j)
{
	struct sigaction sa = { .sa_handler = init_forward, .sa_flags = SA_RESTART };
	sigset_t all, none;
	int status, code = EXIT_JAIL_FAILED;
	unsigned char byte;
	pid_t pid;
	size_t i;

	sigfillset(&all);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &all, NULL);
	for (i = 0; i < sizeof(fwd_signals) / sizeof(fwd_signals[0]); i++) {
		/* a relayed terminal's resize reaches its foreground job from the kernel */
		if (fwd_signals[i] == SIGWINCH && (j->tty_map & 1))
			signal(SIGWINCH, SIG_DFL); /* not the monitor's handler, inherited */
		else
			sigaction(fwd_signals[i], &sa, NULL);
	}
	/*
	 * The floor is set here, before the fork: init keeps nothing it does not need
	 * either, and the command inherits the empty capability sets, no_new_privs and the
	 * filter (a filter is inherited across fork and kept across execve).
	 */
	limit_procs();
	if (caps_drop_all())
		die_errno("cannot drop capabilities");
	if (seccomp_apply())
		die_errno("cannot load the seccomp filter");
	wait_go(j);
	pid = fork();
	if (pid < 0)
		die_errno("fork");
	if (pid == 0)
		exec_command(j, -1);
	child_pid = pid;
	if (j->tty_fd >= 0)
		close(j->tty_fd); /* only the command's: the relay ends when the last one closes */
	if (j->stdin_fd >= 0)
		close(j->stdin_fd); /* the command's end of file is the feeder's, not init's */
	if (write_all(j->ready_fd, "1", 1))
		_exit(EXIT_JAIL_FAILED);
	/* The monitor blocked everything around clone(); init starts with that mask. */
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (;;) {
		pid_t w = waitpid(-1, &status, __WALL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (w == pid) {
			code = wait_status_code(status);
			break;
		}
	}
	/* The command is done: nothing it started may outlive it. */
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, __WALL) > 0 || errno == EINTR)
		;
	/*
	 * Only init is left. Tell the monitor the status now: init's own exit tears down the
	 * mount namespace (every mount of the view) and the others, ~0.3 ms the user need
	 * not wait for. bwrap's init reports the same way.
	 */
	byte = (unsigned char)code;
	(void)write_all(j->ready_fd, &byte, 1);
	_exit(code);
}

extern char **environ;

/* The host environment must not be readable from PID 1's memory (/proc/1/environ). */
static void wipe_environ(const struct jail *j)
{
	char **e;

	for (e = environ; e && *e; e++)
		wipe(*e, strlen(*e));
	environ = NULL;
	/* agentjail's own argv too (/proc/1/cmdline); the command's argv is a copy. */
	for (e = j->wipe_argv; e && *e; e++)
		wipe(*e, strlen(*e));
}

static void __attribute__((noreturn)) init_start(struct jail *j)
{
	struct pollfd pfd = { .fd = j->alive_fd, .events = POLLIN };
	int keep[5] = { j->ready_fd, j->alive_fd, j->proxy_ctl, j->tty_fd, j->stdin_fd };

	/* Die with the monitor; if it is already gone, the pipe says so (hang-up: its go
	 * byte may already be there, which is not a reason to stop). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || poll(&pfd, 1, 0) < 0 ||
	    (pfd.revents & (POLLHUP | POLLERR)))
		_exit(EXIT_JAIL_FAILED);
	close_fds_except(keep, 5);
	set_maps(j);
	setup_network(j);
	if (sethostname("agentjail", 9) || setdomainname("agentjail", 9))
		die_errno("sethostname");
	setup_filesystem(j);
	/*
	 * Only now: a non-dumpable process's /proc/self files belong to a root this user
	 * namespace does not map, so the uid map and the /proc/self/fd mount paths above
	 * must be done first. From here the command cannot read init's memory or fds.
	 */
	if (prctl(PR_SET_DUMPABLE, 0))
		die_errno("prctl(PR_SET_DUMPABLE)");
	wipe_environ(j);
	init_main(j);
}

pid_t jail_spawn(struct jail *j)
{
	pid_t pid;

	/* A fork-like clone: no new stack, the child continues here in new namespaces. */
	pid = (pid_t)syscall(SYS_clone, CLONE_NS_ALL | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0)
		return -1;
	if (pid == 0)
		init_start(j);
	return pid;
}

/* ---- diagnosis ----------------------------------------------------------------------- */

static long read_sysctl(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static bool in_seccomp(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");
	bool on = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Seccomp:", 8))
			on = strtol(line + 8, NULL, 10) != 0;
	fclose(f);
	return on;
}

/*
 * A fresh procfs can only be mounted by a process inside the new PID namespace (the first
 * child), and the kernel refuses it where parts of the host's /proc are masked by
 * over-mounts, as container runtimes do.
 */
static int probe_proc(void)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return 15;
	if (pid == 0)
		_exit(mount("proc", "/tmp", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) ? 15
											    : 0);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return 15;
	return WEXITSTATUS(status);
}

/* Try the namespaces in a throw-away child; report what failed as an exit code. */
static int probe_child(void)
{
	uid_t uid = getuid();
	char map[64];
	struct ifreq ifr;
	int s;

	if (unshare(CLONE_NS_ALL))
		return 10;
	if (write_file("/proc/self/setgroups", "deny") && errno != ENOENT)
		return 11;
	snprintf(map, sizeof(map), "%u %u 1\n", uid, uid);
	if (write_file("/proc/self/uid_map", map))
		return 11;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr))
		return 12;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr))
		return 12;
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) ||
	    mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m"))
		return 13;
	if (prctl(PR_GET_SECCOMP) < 0)
		return 14;
	return probe_proc();
}

int jail_diagnose(char *buf, size_t len)
{
	long userns = read_sysctl("/proc/sys/kernel/unprivileged_userns_clone");
	long maxns = read_sysctl("/proc/sys/user/max_user_namespaces");
	long aa = read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
	int status, rc;
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		snprintf(buf, len, "cannot fork: %s", strerror(errno));
		return 1;
	}
	if (pid == 0)
		_exit(probe_child());
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
		snprintf(buf, len, "the namespace probe crashed");
		return 1;
	}
	rc = WEXITSTATUS(status);
	if (rc == 0) {
		snprintf(buf, len, "this machine can build a jail");
		return 0;
	}
	if (userns == 0)
		snprintf(buf, len,
			 "unprivileged user namespaces are disabled "
			 "(kernel.unprivileged_userns_clone = 0); fix: sudo sysctl -w "
			 "kernel.unprivileged_userns_clone=1");
	else if (maxns == 0)
		snprintf(buf, len,
			 "user namespaces are disabled (user.max_user_namespaces = 0); fix: sudo "
			 "sysctl -w user.max_user_namespaces=15000");
	else if (aa == 1 && rc >= 11)
		snprintf(buf, len,
			 "AppArmor restricts unprivileged user namespaces "
			 "(kernel.apparmor_restrict_unprivileged_userns = 1): the namespace was "
			 "created but %s was refused; fix: install agentjail's AppArmor profile "
			 "(make install does, where /etc/apparmor.d exists) or sudo sysctl -w "
			 "kernel.apparmor_restrict_unprivileged_userns=0",
			 rc == 11 ? "the uid map" : "bringing up lo");
	else if (rc == 10 && in_seccomp())
		snprintf(buf, len,
			 "creating namespaces is refused and this process runs under a seccomp "
			 "filter: probably a container's default seccomp profile; fix: run the "
			 "container with --security-opt seccomp=unconfined (or a profile that "
			 "allows unshare/clone with CLONE_NEWUSER)");
	else if (rc == 10)
		snprintf(buf, len,
			 "the kernel refuses new user namespaces (%s); check "
			 "user.max_user_namespaces and the kernel's CONFIG_USER_NS",
			 "unshare failed");
	else if (rc == 13)
		snprintf(buf, len,
			 "mounting inside the user namespace is refused (a container or LSM "
			 "forbids it); fix: run on a host or a container allowed to mount");
	else if (rc == 14)
		snprintf(buf, len, "the kernel has no seccomp support (CONFIG_SECCOMP)");
	else if (rc == 15)
		snprintf(buf, len,
			 "the kernel refuses a new /proc: parts of this /proc are masked (as "
			 "container runtimes do); fix: docker run --security-opt "
			 "systempaths=unconfined, or podman run --security-opt unmask=ALL");
	else
		snprintf(buf, len, "namespace setup step %d failed", rc);
	return 1;
}
