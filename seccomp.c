/*
 * seccomp.c - the privilege floor: load the syscall filters, drop the capabilities.
 *
 * The filters are tables in gen/seccomp_filter.c, compiled to BPF by libseccomp when
 * agentjail is built (build/seccomp_bpf.h); here they are loaded with one seccomp(2) call
 * each, without compiling anything at start.
 */
#include "seccomp.h"

#include <errno.h>
#include <stddef.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>

#include "seccomp_bpf.h"

const char seccomp_built_with[] = SECCOMP_BPF_LIBSECCOMP;

/*
 * no_new_privs first: without CAP_SYS_ADMIN the kernel accepts a filter only then, and it
 * keeps execve from granting privileges the filter was meant to bound. The filter is
 * inherited across fork and kept across execve.
 */
static int load_filter(const struct sock_filter *f, size_t n)
{
	struct sock_fprog prog = {
	    .len = (unsigned short)n,
	    .filter = (struct sock_filter *)f,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	/* prctl, not seccomp(2): the same operation without flags, and the one valgrind
	 * knows (the proxy runs under memcheck in test/faults.bats). */
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

int seccomp_apply(void)
{
	return load_filter(jail_bpf, sizeof(jail_bpf) / sizeof(jail_bpf[0]));
}

int seccomp_apply_proxy(void)
{
	return load_filter(proxy_bpf, sizeof(proxy_bpf) / sizeof(proxy_bpf[0]));
}

/* Empty the effective, permitted and inheritable sets. 0 or -1. */
static int clear_sets(void)
{
	cap_t empty = cap_init();
	int rc;

	if (!empty)
		return -1;
	rc = cap_set_proc(empty);
	cap_free(empty);
	return rc;
}

int caps_drop_all(void)
{
	int cap;

	/*
	 * Root inside the user namespace would regain a full permitted set at execve;
	 * the bounding set limits what exec can grant, and the securebits stop the
	 * uid-0 special cases. Both need CAP_SETPCAP, so they go first.
	 */
	for (cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
			return -1;
	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
					 SECBIT_NO_SETUID_FIXUP_LOCKED |
					 SECBIT_NO_CAP_AMBIENT_RAISE |
					 SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED))
		return -1;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0))
		return -1;
	return clear_sets();
}

/*
 * Outside the jail (the proxy): drop whatever capabilities this process holds. The
 * bounding set can only be changed with CAP_SETPCAP, which an ordinary user's process
 * does not have (and then has nothing to drop from the other sets either).
 */
int caps_drop_held(void)
{
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
	return clear_sets();
}
