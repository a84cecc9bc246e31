// SPDX-License-Identifier: MIT
/*
 * probe: tries one operation the jail must refuse (or allow) and says what happened.
 *
 *   probe SUBCOMMAND [ARG...]
 *
 * Prints "ok" (or the data asked for) and exits 0 when the syscall succeeded; prints the errno
 * name (EPERM, ENOSYS, ...) and exits 1 when it failed; exits 2 on a usage error.  The bats tests
 * decide which outcome is right, and usually run the same probe outside the jail as a control,
 * so that a refusal by the kernel's own settings is not mistaken for the jail's.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <termios.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

static int result(long rc)
{
	if (rc < 0) {
		const char *name = strerrorname_np(errno);
		printf("%s\n", name ? name : "EUNKNOWN");
		return 1;
	}
	printf("ok\n");
	return 0;
}

/* A terminal fd: stdin when it is one, else /dev/tty. */
static int tty_fd(void)
{
	if (isatty(0))
		return 0;
	return open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
}

static int do_tiocsti(int high)
{
	/* A space: harmless if it does get injected (the test then fails anyway). */
	char c = ' ';
	unsigned long req = TIOCSTI;
	int fd = tty_fd();

	if (fd < 0)
		return result(-1);
	if (high)
		req |= 0xffffffff00000000UL;
	return result(syscall(SYS_ioctl, fd, req, &c));
}

static int do_tioclinux(int high)
{
	/* Subcode 6 (TIOCL_GETSHIFTSTATE) reads only; the filter must refuse the request itself. */
	char sub[8] = { 6 };
	unsigned long req = TIOCLINUX;
	int fd = tty_fd();

	if (fd < 0)
		return result(-1);
	if (high)
		req |= 0xffffffff00000000UL;
	return result(syscall(SYS_ioctl, fd, req, sub));
}

static int wait_child(pid_t pid)
{
	int st;

	if (pid < 0)
		return result(-1);
	if (pid == 0)
		_exit(0);
	if (waitpid(pid, &st, 0) < 0)
		return result(-1);
	return result(0);
}

static int do_clone_newuser(void)
{
	/* Raw clone (not glibc's wrapper): flags, stack, parent_tid, child_tid, tls. */
	long pid = syscall(SYS_clone, (unsigned long)CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);

	return wait_child((pid_t)pid);
}

static int do_clone3(const char *flags)
{
	struct clone_args ca;

	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	if (flags && strcmp(flags, "newuser") == 0)
		ca.flags = CLONE_NEWUSER;
	return wait_child((pid_t)syscall(SYS_clone3, &ca, sizeof(ca)));
}

static int do_setns(const char *path)
{
	int fd = open(path ? path : "/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return result(-1);
	return result(setns(fd, 0));
}

static int do_io_uring(void)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	return result(syscall(SYS_io_uring_setup, 4, &p));
}

static int do_bpf(void)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = 4;
	a.max_entries = 1;
	return result(syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a)));
}

static int do_perf(void)
{
	struct perf_event_attr a;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_TASK_CLOCK;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	return result(syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
}

static int do_ptrace_attach(const char *arg)
{
	pid_t pid = (pid_t)atoi(arg);
	int st;

	if (ptrace(PTRACE_ATTACH, pid, 0, 0) < 0)
		return result(-1);
	waitpid(pid, &st, 0);
	ptrace(PTRACE_DETACH, pid, 0, 0);
	return result(0);
}

static int do_fd_openat(const char *fdarg, const char *path)
{
	int fd = atoi(fdarg);

	if (fcntl(fd, F_GETFD) < 0)
		return result(-1);
	return result(openat(fd, path, O_RDONLY | O_CLOEXEC));
}

static int do_caps(void)
{
	static const char *keys[] = { "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:",
				      "NoNewPrivs:", "Seccomp:", "Seccomp_filters:" };
	char line[512];
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return result(-1);
	while (fgets(line, sizeof(line), f)) {
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strncmp(line, keys[i], strlen(keys[i])) == 0)
				fputs(line, stdout);
	}
	fclose(f);
	return 0;
}

static int do_ids(void)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return result(-1);
	printf("uid=%u euid=%u suid=%u gid=%u egid=%u sgid=%u\n", r, e, s, rg, eg, sg);
	return 0;
}

static int do_abstract_connect(const char *name)
{
	struct sockaddr_un sa;
	size_t n = strlen(name);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return result(-1);
	if (n + 1 > sizeof(sa.sun_path)) {
		fprintf(stderr, "probe: name too long\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name, n);
	return result(connect(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)));
}

/* A 32-bit syscall through int 0x80 (getpid is 20 there): the filter must kill it (SIGSYS). */
static int do_int80(void)
{
#if defined(__x86_64__)
	long ret = 20;

	__asm__ volatile("int $0x80" : "+a"(ret) : : "memory", "r8", "r9", "r10", "r11");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return result(-1);
	}
	return result(0);
#else
	fprintf(stderr, "probe: int80 is x86_64 only\n");
	return 2;
#endif
}

static int usage(void)
{
	fprintf(stderr,
		"usage: probe tiocsti|tiocsti-high|tioclinux|tioclinux-high|unshare-user|\n"
		"  unshare-mount|clone-newuser|clone3 [newuser]|setns [PATH]|mount-remount PATH|\n"
		"  mount-tmpfs PATH|umount PATH|io_uring|bpf|keyctl|add_key|perf|userfaultfd|af_packet|\n"
		"  af_vsock|raw-socket|netlink-route|netlink-other|ptrace-attach PID|personality|\n"
		"  fd-openat FD PATH|caps|ids|dumpable|kill PID [SIG]|abstract-connect NAME|int80\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	const char *a1 = argc > 2 ? argv[2] : NULL;
	const char *a2 = argc > 3 ? argv[3] : NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "tiocsti"))
		return do_tiocsti(0);
	if (!strcmp(cmd, "tiocsti-high"))
		return do_tiocsti(1);
	if (!strcmp(cmd, "tioclinux"))
		return do_tioclinux(0);
	if (!strcmp(cmd, "tioclinux-high"))
		return do_tioclinux(1);
	if (!strcmp(cmd, "unshare-user"))
		return result(unshare(CLONE_NEWUSER));
	if (!strcmp(cmd, "unshare-mount"))
		return result(unshare(CLONE_NEWNS));
	if (!strcmp(cmd, "clone-newuser"))
		return do_clone_newuser();
	if (!strcmp(cmd, "clone3"))
		return do_clone3(a1);
	if (!strcmp(cmd, "setns"))
		return do_setns(a1);
	if (!strcmp(cmd, "mount-remount") && a1)
		return result(mount(NULL, a1, NULL, MS_REMOUNT | MS_BIND, NULL));
	if (!strcmp(cmd, "mount-tmpfs") && a1)
		return result(mount("tmpfs", a1, "tmpfs", 0, NULL));
	if (!strcmp(cmd, "umount") && a1)
		return result(umount2(a1, MNT_DETACH));
	if (!strcmp(cmd, "io_uring"))
		return do_io_uring();
	if (!strcmp(cmd, "bpf"))
		return do_bpf();
	if (!strcmp(cmd, "keyctl"))
		return result(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
	if (!strcmp(cmd, "add_key"))
		return result(syscall(SYS_add_key, "user", "ajprobe", "x", 1,
				      KEY_SPEC_PROCESS_KEYRING));
	if (!strcmp(cmd, "perf"))
		return do_perf();
	if (!strcmp(cmd, "userfaultfd"))
		return result(syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));
	if (!strcmp(cmd, "af_packet"))
		return result(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(0x0003)));
	if (!strcmp(cmd, "af_vsock"))
		return result(socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (!strcmp(cmd, "raw-socket"))
		return result(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
	if (!strcmp(cmd, "netlink-route"))
		return result(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
	if (!strcmp(cmd, "netlink-other"))
		return result(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT));
	if (!strcmp(cmd, "ptrace-attach") && a1)
		return do_ptrace_attach(a1);
	if (!strcmp(cmd, "personality"))
		return result(personality(PER_LINUX | READ_IMPLIES_EXEC));
	if (!strcmp(cmd, "fd-openat") && a1 && a2)
		return do_fd_openat(a1, a2);
	if (!strcmp(cmd, "caps"))
		return do_caps();
	if (!strcmp(cmd, "ids"))
		return do_ids();
	if (!strcmp(cmd, "dumpable")) {
		int d = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);

		if (d < 0)
			return result(-1);
		printf("dumpable=%d\n", d);
		return 0;
	}
	if (!strcmp(cmd, "kill") && a1)
		return result(kill((pid_t)atoi(a1), a2 ? atoi(a2) : SIGTERM));
	if (!strcmp(cmd, "abstract-connect") && a1)
		return do_abstract_connect(a1);
	if (!strcmp(cmd, "int80"))
		return do_int80();
	return usage();
}
