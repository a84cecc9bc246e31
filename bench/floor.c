/*
 * bench/floor.c - the floor of a jail's start, as issue 2 defines it: clone into all seven
 * namespaces, mount /proc, a tmpfs and two read-only binds, load a seccomp filter, exec
 * `true`. Nothing else: no pivot, no /etc, no /dev, no checks, no monitor. bench/start.sh
 * times it beside agentjail and bubblewrap, so the targets can be read against what the
 * kernel itself costs on the same machine.
 *
 *   floor TRUE        e.g. floor /bin/true; exits with TRUE's status, 125 on a setup error
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#define NS_ALL                                                                                     \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |                \
	 CLONE_NEWUTS | CLONE_NEWCGROUP)

static void fail(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
	_exit(125);
}

static void put(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s) || close(fd))
		fail(path);
}

static void ro_bind(const char *src, const char *dst)
{
	if (mkdir(dst, 0755) && errno != EEXIST)
		fail(dst);
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) ||
	    mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL))
		fail(dst);
}

static void child(char **argv, uid_t uid, gid_t gid)
{
	/* One instruction: allow. The cost measured is that of loading a filter at all. */
	struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
	struct sock_fprog prog = { .len = 1, .filter = allow };
	char map[64];

	snprintf(map, sizeof(map), "%u %u 1\n", uid, uid);
	put("/proc/self/uid_map", map);
	put("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "%u %u 1\n", gid, gid);
	put("/proc/self/gid_map", map);
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"))
		fail("tmpfs");
	ro_bind("/usr", "/tmp/usr");
	ro_bind("/etc", "/tmp/etc");
	if (mkdir("/tmp/proc", 0755) ||
	    mount("proc", "/tmp/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		fail("proc");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
		fail("seccomp");
	execv(argv[1], argv + 1);
	fail(argv[1]);
}

int main(int argc, char **argv)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	int st;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: floor PROGRAM [ARG...]\n");
		return 2;
	}
	pid = (pid_t)syscall(SYS_clone, NS_ALL | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0)
		fail("clone");
	if (pid == 0)
		child(argv, uid, gid);
	if (waitpid(pid, &st, 0) != pid)
		fail("waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
