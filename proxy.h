/*
 * proxy.h - the egress proxy process, as the monitor and the jail's init see it.
 *
 * Protocol on the control socketpair (AF_UNIX, SOCK_SEQPACKET, both ends O_CLOEXEC):
 *   1. proxy_start() forks the proxy. The proxy loads the secret values (it alone ever
 *      holds them), makes one placeholder per secret and, when any secret is bound, a
 *      per-run CA. It sends the placeholders and the CA certificate (public PEM) to the
 *      monitor; proxy_start() returns once they arrived, filling p->secrets[i].placeholder
 *      and px->ca_pem in the monitor's memory.
 *   2. The jail's init, inside the new network namespace, creates the listening socket on
 *      127.0.0.1:PROXY_PORT and passes it with proxy_send_listener() (SCM_RIGHTS) on the
 *      control socket it inherited; the proxy then confines itself and serves.
 *   3. proxy_stop() (monitor, after the command exited) asks the proxy to finish; it
 *      prints the one-line summary to stderr (unless quiet) and exits.
 * The proxy dies with the monitor (PR_SET_PDEATHSIG), so the jail fails closed.
 */
#ifndef AGENTJAIL_PROXY_H
#define AGENTJAIL_PROXY_H

#include <sys/types.h>

#include "policy.h"

struct proxy {
	pid_t pid;
	int ctl;      /* the monitor's end of the control socketpair */
	char *ca_pem; /* the run CA certificate, PEM; NULL when nothing is intercepted */
	size_t ca_pem_len;
};

/* Fork the proxy and read its start-up report. 0, or -1 after printing why (the caller
 * exits 125). */
int proxy_start(struct policy *p, struct proxy *px);
/* The same in two steps, so that the jail can be built while the proxy starts: the fork,
 * then its report (placeholders, the run CA). Each 0, or -1 after printing why; after a
 * failed proxy_ready() the proxy is stopped. */
int proxy_fork(struct policy *p, struct proxy *px);
int proxy_ready(struct policy *p, struct proxy *px);
/* From init in the jail's netns: hand the listening socket over. 0 or -1. */
int proxy_send_listener(int ctl, int listen_fd);
/* Stop the proxy and wait for it. Returns its exit status as waitpid gives it. */
int proxy_stop(struct proxy *px);

/*
 * The proxy's confinement of itself (capabilities, no_new_privs, Landlock, seccomp), done
 * before it serves; exported for test/unit/test_proxy_confine.c.
 */
void proxy_confine(void);

#endif
