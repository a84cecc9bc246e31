/*
 * intercept.h - an intercepted CONNECT: TLS terminated with a minted leaf, HTTP/1.1
 * requests checked and rewritten (placeholders -> values for bound hosts), relayed over a
 * verified TLS connection to the upstream, responses redacted (values -> placeholders).
 */
#ifndef AGENTJAIL_INTERCEPT_H
#define AGENTJAIL_INTERCEPT_H

#include <stdint.h>
#include <sys/socket.h>

#include "policy.h"

struct intercept_target {
	const char *host; /* the CONNECT target, normalised */
	int port;
	const struct sockaddr *addr; /* the address the proxy checked: dial exactly this */
	socklen_t addrlen;
	uint64_t conn;               /* connection id for the audit log */
};

/*
 * Called by proxy.c after it answered "200 Connection established" to a CONNECT whose
 * host has a bound secret (secrets_bound()). Serves the whole session on client_fd and
 * returns when it ends; the caller closes client_fd afterwards.
 */
void intercept_session(int client_fd, const struct intercept_target *t, const struct policy *p);

#endif
