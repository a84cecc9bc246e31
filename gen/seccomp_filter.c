/*
 * gen/seccomp_filter.c - the syscall floors of the jail and of the proxy, as readable
 * tables, compiled to BPF at build time.
 *
 * Run by `make`: it prints build/seccomp_bpf.h, which seccomp.c loads with one seccomp(2)
 * call. Compiling the tables at every start cost ~0.3 ms and the loading of libseccomp;
 * the tables are fixed, so the work moved here and libseccomp became a build dependency
 * only. The generator runs on the build machine, so the filter is for its architecture,
 * which is the binary's (no cross-compiling).
 *
 * The jail's filter allows by default and refuses what a jailed build has no business
 * doing: the kernel surfaces that turn a sandboxed process into a kernel exploit or a way
 * out (nested user namespaces, the mount API, terminal injection, keyrings, bpf, io_uring,
 * ...). libseccomp emits a filter for the native architecture only; a syscall made through
 * any other ABI (e.g. i386 int 0x80 on x86_64, x32) is killed (SCMP_FLTATR_ACT_BADARCH).
 */
#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <sys/personality.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/filter.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

/* Namespace flags that clone()/unshare() may not use: no nested namespaces of any kind. */
#define NS_FLAGS                                                                                   \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | \
	 CLONE_NEWCGROUP | CLONE_NEWTIME)

/* Refused outright with EPERM. */
static const char *const deny_syscalls[] = {
    /* namespaces: the jail's are final */
    "setns",
    /* the mount API, old and new: the filesystem view is final */
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    /* kernel keyrings are not namespaced by mount/pid and hold other sessions' keys */
    "keyctl",
    "add_key",
    "request_key",
    /* large kernel attack surfaces a build does not need */
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    /* the machine itself */
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "iopl",
    "ioperm",
    "quotactl",
    "lookup_dcookie",
    "vhangup",
    "uselib",
    /* reaching into other processes or files by handle */
    "open_by_handle_at",
    "name_to_handle_at",
    "pidfd_getfd",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "kcmp",
};

/*
 * Socket families the jail may use: everything else is refused. The kernel reads
 * socket()'s arguments as int, so a 64-bit equality test alone would let (1 << 32) | AF_VSOCK
 * through; here the allowed values are matched exactly and anything above AF_NETLINK (which
 * includes every value with high bits set) is refused by one unsigned comparison.
 */
static const int allow_families[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};

static int deny(scmp_filter_ctx ctx, const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);

	/* A syscall this architecture does not have needs no rule. */
	if (nr == __NR_SCMP_ERROR)
		return 0;
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
}

static int add_flag_rules(scmp_filter_ctx ctx, int nr)
{
	static const uint64_t flags[] = {CLONE_NEWUSER,	  CLONE_NEWNS,	CLONE_NEWPID,
					 CLONE_NEWNET,	  CLONE_NEWIPC, CLONE_NEWUTS,
					 CLONE_NEWCGROUP, CLONE_NEWTIME};
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, flags[i], flags[i])))
			return -1;
	return 0;
}

/*
 * ioctl(fd, TIOCSTI/TIOCLINUX, ...): the kernel compares only the low 32 bits of the
 * request (it is an unsigned int in the tty layer), so a filter comparing all 64 bits is
 * bypassed by setting high bits. Mask them off before comparing.
 */
static int add_ioctl_rules(scmp_filter_ctx ctx)
{
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
			     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, TIOCSTI)))
		return -1;
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, TIOCLINUX));
}

static bool family_allowed(int fam)
{
	size_t i;

	for (i = 0; i < sizeof(allow_families) / sizeof(allow_families[0]); i++)
		if (allow_families[i] == fam)
			return true;
	return false;
}

static int add_socket_rules(scmp_filter_ctx ctx)
{
	int fam, i;

	/* AF_NETLINK is the largest allowed family; GT is an unsigned 64-bit compare. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
			     SCMP_A0(SCMP_CMP_GT, AF_NETLINK)))
		return -1;
	for (fam = 0; fam < AF_NETLINK; fam++)
		if (!family_allowed(fam) &&
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ, (uint64_t)fam)))
			return -1;
	/*
	 * Raw and packet IP sockets; the type carries SOCK_NONBLOCK/CLOEXEC in high bits.
	 * Netlink sockets are SOCK_RAW too, so the family is part of the rule.
	 */
	for (i = 0; i < 2; i++) {
		fam = i ? AF_INET6 : AF_INET;
		if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 2,
				     SCMP_A0(SCMP_CMP_EQ, (uint64_t)fam),
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW)) ||
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 2,
				     SCMP_A0(SCMP_CMP_EQ, (uint64_t)fam),
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_PACKET)))
			return -1;
	}
	/* Netlink: only NETLINK_ROUTE (0): any other value, high bits included, is above it. */
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 2,
				SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
				SCMP_A2(SCMP_CMP_GT, NETLINK_ROUTE));
}

/*
 * personality(2): refuse the flags that weaken the process (executable data, no ASLR, a
 * mapped page zero, the legacy layout). The query personality(0xffffffff) stays allowed:
 * the masks include the top bit, which the query sets and no real persona does.
 * libseccomp cannot test one argument twice in a rule, hence one rule per flag.
 */
static int add_personality_rules(scmp_filter_ctx ctx)
{
	static const uint64_t bad[] = {READ_IMPLIES_EXEC,  ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO,
				       ADDR_COMPAT_LAYOUT, ADDR_LIMIT_3GB,    ADDR_LIMIT_32BIT};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, 0x80000000ULL | bad[i], bad[i])))
			return -1;
	return 0;
}

static int build_filter(scmp_filter_ctx ctx)
{
	size_t i;

	if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS))
		return -1;
	for (i = 0; i < sizeof(deny_syscalls) / sizeof(deny_syscalls[0]); i++)
		if (deny(ctx, deny_syscalls[i]))
			return -1;
	/* clone3 passes its flags in memory the filter cannot read: ENOSYS makes libc fall
	 * back to clone(2), whose flags it can. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0))
		return -1;
	if (add_flag_rules(ctx, SCMP_SYS(clone)) || add_flag_rules(ctx, SCMP_SYS(unshare)))
		return -1;
	if (add_ioctl_rules(ctx) || add_socket_rules(ctx) || add_personality_rules(ctx))
		return -1;
	return 0;
}

/*
 * The proxy's floor, under Landlock and without capabilities: it never executes anything,
 * never mounts, never traces; it only accepts, dials, reads and writes.
 */
static const char *const proxy_deny[] = {
    "execve",
    "execveat",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "mount_setattr",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "personality",
    "uselib",
    "pidfd_getfd",
    "open_by_handle_at",
    "name_to_handle_at",
};

static int build_proxy_filter(scmp_filter_ctx ctx)
{
	size_t i;

	for (i = 0; i < sizeof(proxy_deny) / sizeof(proxy_deny[0]); i++)
		if (deny(ctx, proxy_deny[i]))
			return -1;
	return 0;
}

/* Compile one table and print it as a C array named NAME. */
static int emit(const char *name, int (*build)(scmp_filter_ctx))
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	struct sock_filter *f;
	struct stat st;
	size_t i, n;
	int fd;

	if (!ctx || build(ctx))
		return -1;
	fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
	if (fd < 0 || seccomp_export_bpf(ctx, fd) || fstat(fd, &st) || st.st_size <= 0 ||
	    st.st_size % (off_t)sizeof(*f))
		return -1;
	seccomp_release(ctx);
	n = (size_t)st.st_size / sizeof(*f);
	f = malloc((size_t)st.st_size);
	if (!f || pread(fd, f, (size_t)st.st_size, 0) != st.st_size)
		return -1;
	close(fd);
	printf("static const struct sock_filter %s[%zu] = {\n", name, n);
	for (i = 0; i < n; i++)
		printf("\t{ 0x%04x, %u, %u, 0x%08x },\n", f[i].code, f[i].jt, f[i].jf, f[i].k);
	printf("};\n\n");
	free(f);
	return 0;
}

int main(void)
{
	const struct scmp_version *v = seccomp_version();

	printf("/* Generated by gen/seccomp_filter.c with libseccomp %u.%u.%u: do not edit. */\n",
	       v ? v->major : 0, v ? v->minor : 0, v ? v->micro : 0);
	printf("#define SECCOMP_BPF_LIBSECCOMP \"%u.%u.%u\"\n\n", v ? v->major : 0,
	       v ? v->minor : 0, v ? v->micro : 0);
	if (emit("jail_bpf", build_filter) || emit("proxy_bpf", build_proxy_filter)) {
		fprintf(stderr, "seccomp_filter: cannot compile the filters\n");
		return 1;
	}
	return 0;
}
