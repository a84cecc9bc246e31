/*
 * audit.h - the proxy's decisions: JSON-lines audit log (--log FILE) and exit counters.
 * Thread-safe. Opened by the proxy before it confines itself; records never hold a
 * secret value (a secret appears by name only).
 */
#ifndef AGENTJAIL_AUDIT_H
#define AGENTJAIL_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

enum audit_decision {
	AUDIT_ALLOW,  /* tunnelled or forwarded */
	AUDIT_DENY,   /* refused by policy (403) */
	AUDIT_INJECT, /* a request to a bound host with a secret substituted */
	AUDIT_EXFIL,  /* a placeholder seen going where it is not bound: refused */
	AUDIT_ERROR,  /* bad request, upstream failure (4xx/5xx other than policy) */
};

struct audit_rec {
	uint64_t conn;       /* connection id */
	const char *method;  /* CONNECT, GET, ... */
	const char *host;
	int port;
	const char *addr;    /* the address dialled, or NULL */
	const char *path;    /* request path (intercepted/plain HTTP), or NULL */
	enum audit_decision decision;
	int status;          /* HTTP status answered, 0 when none */
	const char *rule;    /* origin of the deciding rule: "node.ini:12", "--allow", ... */
	const char *reason;  /* one line, for a human or an agent */
	const char *secret;  /* secret NAME for inject/exfil, or NULL */
	uint64_t bytes_up, bytes_down;
	double ms;           /* duration */
};

/* Open the log (O_APPEND|O_CLOEXEC, created 0600). NULL path: counters only. 0 or -1. */
int audit_open(const char *path);
void audit_log(const struct audit_rec *r);
/* One line to stderr: allowed, denied (and the denied hosts), injected, exfiltration. */
void audit_summary(void);

#endif
