/*
 * seccomp.c - the syscall floor of the jail, as one readable table, and the capability drop.
 *
 * The filter allows by default and refuses what a jailed build has no business doing: the
 * kernel surfaces that turn a sandboxed process into a kernel exploit or a way out (nested
 * user namespaces, the mount API, terminal injection, keyrings, bpf, io_uring, ...).
 * libseccomp emits a filter for the native architecture only; a syscall made through any
 * other ABI (e.g. i386 int 0x80 on x86_64, x32) is killed (SCMP_FLTATR_ACT_BADARCH).
 */
#include "seccomp.h"

#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/securebits.h>
#include <sys/personality.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "util.h"

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
	"mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
	"fsconfig", "fsmount", "fspick", "mount_setattr",
	/* kernel keyrings are not namespaced by mount/pid and hold other sessions' keys */
	"keyctl", "add_key", "request_key",
	/* large kernel attack surfaces a build does not need */
	"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
	"io_uring_register",
	/* the machine itself */
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"reboot", "swapon", "swapoff", "syslog", "acct", "iopl", "ioperm", "quotactl",
	"lookup_dcookie", "vhangup", "uselib",
	/* reaching into other processes or files by handle */
	"open_by_handle_at", "name_to_handle_at", "pidfd_getfd", "process_vm_readv",
	"process_vm_writev", "ptrace", "kcmp",
};

/*
 * Socket families the jail may use: everything else is refused. The kernel reads
 * socket()'s arguments as int, so a 64-bit equality test alone would let (1 << 32) | AF_VSOCK
 * through; here the allowed values are matched exactly and anything above AF_NETLINK (which
 * includes every value with high bits set) is refused by one unsigned comparison.
 */
static const int allow_families[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };

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
	static const uint64_t flags[] = { CLONE_NEWUSER, CLONE_NEWNS,  CLONE_NEWPID,
					  CLONE_NEWNET,  CLONE_NEWIPC, CLONE_NEWUTS,
					  CLONE_NEWCGROUP, CLONE_NEWTIME };
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
	static const uint64_t bad[] = { READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO,
					ADDR_COMPAT_LAYOUT, ADDR_LIMIT_3GB, ADDR_LIMIT_32BIT };
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

/* The compiled filter: built once by seccomp_prepare(), loaded by init and the command. */
static struct sock_fprog prog;

/*
 * Compile the table to BPF once. libseccomp 2.5 exports only to an fd, so the program goes
 * through a memfd into memory; each seccomp_apply() then loads it with one syscall.
 */
int seccomp_prepare(void)
{
	scmp_filter_ctx ctx;
	struct stat st;
	int rc, fd = -1;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -1;
	rc = build_filter(ctx);
	if (!rc) {
		fd = memfd_create("agentjail-seccomp", MFD_CLOEXEC);
		rc = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
	}
	seccomp_release(ctx);
	if (!rc && (fstat(fd, &st) || st.st_size <= 0 ||
		    st.st_size % (off_t)sizeof(struct sock_filter)))
		rc = -EINVAL;
	if (!rc) {
		prog.len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
		prog.filter = xmalloc((size_t)st.st_size);
		if (pread(fd, prog.filter, (size_t)st.st_size, 0) != st.st_size)
			rc = -EIO;
	}
	if (fd >= 0)
		close(fd);
	if (rc) {
		errno = rc < 0 ? -rc : EINVAL;
		return -1;
	}
	return 0;
}

int seccomp_apply(void)
{
	if (!prog.filter && seccomp_prepare())
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

int caps_drop_all(void)
{
	cap_t empty;
	int cap, rc;

	/*
	 * Root inside the user namespace would regain a full permitted set at execve;
	 * the bounding set limits what exec can grant, and the securebits stop the
	 * uid-0 special cases. Both need CAP_SETPCAP, so they go first.
	 */
	for (cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
			return -1;
	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
				     SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
				     SECBIT_NO_CAP_AMBIENT_RAISE |
				     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED))
		return -1;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0))
		return -1;
	empty = cap_init();
	if (!empty)
		return -1;
	rc = cap_set_proc(empty);
	cap_free(empty);
	return rc;
}

/*
 * Outside the jail (the proxy): drop whatever capabilities this process holds. The
 * bounding set can only be changed with CAP_SETPCAP, which an ordinary user's process
 * does not have (and then has nothing to drop from the other sets either).
 */
int caps_drop_held(void)
{
	cap_t empty;
	int rc;

	if (prctl(PR_CAPBSET_READ, CAP_SETPCAP, 0, 0, 0) == 1) {
		cap_flag_value_t v = CAP_CLEAR;
		cap_t cur = cap_get_proc();

		if (cur && !cap_get_flag(cur, CAP_SETPCAP, CAP_EFFECTIVE, &v) && v == CAP_SET) {
			cap_free(cur);
			return caps_drop_all();
		}
		if (cur)
			cap_free(cur);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -1;
	empty = cap_init();
	if (!empty)
		return -1;
	rc = cap_set_proc(empty);
	cap_free(empty);
	return rc;
}
