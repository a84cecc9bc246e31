/*
 * secrets.h - secret sources, placeholders, substitution, exfiltration guard, redaction.
 * Lives in the proxy process only: no other process ever holds a secret value.
 */
#ifndef AGENTJAIL_SECRETS_H
#define AGENTJAIL_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

/*
 * In the proxy, before it serves: read every secret's value from its source into
 * proxy-private memory and make a fresh random placeholder for each, shaped like the
 * value (known prefix, length, character class), stored in p->secrets[i].placeholder.
 * 0, or -1 after printing which secret failed and why (never its value).
 */
int secrets_load(struct policy *p);

/* True when a secret is bound to this host: CONNECTs to it are intercepted. */
bool secrets_bound(const struct policy *p, const char *host);

/*
 * Exfiltration guard: the name of a secret whose placeholder appears in buf (raw, base64,
 * percent-encoded) while it is not bound to host, or NULL. For every request head or
 * body bytes the proxy can read, intercepted or plain HTTP.
 */
const char *secrets_exfil_scan(const struct policy *p, const char *host, const char *buf,
			       size_t len);

/* Overwrite every value held (at proxy exit). */
void secrets_wipe(void);

#endif
