/*
 * tls.h - the per-run CA, leaf minting for interception, upstream TLS with verification.
 * Lives in the proxy process only; the CA key never leaves its memory.
 */
#ifndef AGENTJAIL_TLS_H
#define AGENTJAIL_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

/*
 * In the proxy, before it serves: create the run CA (EC P-256) when any secret is
 * bound, and the upstream client context (system roots + p->upstream_ca, TLS 1.2+).
 * 0, or -1 after printing why.
 */
int tls_init(const struct policy *p);

/* The run CA certificate as PEM (public), or NULL when there is none. */
const char *tls_ca_pem(size_t *len);

/* Whether tls_init() set up TLS at all (some secret is bound, or an upstream CA given). */
bool tls_enabled(void);

#endif
