/*
 * tls_session.h - the TLS connections of an intercepted session (tls.c), for
 * intercept.c and the unit tests. Thread-safe after tls_init().
 */
#ifndef AGENTJAIL_TLS_SESSION_H
#define AGENTJAIL_TLS_SESSION_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Leaf certificates kept (one per host; the least recently used is dropped). */
#define TLS_LEAF_CACHE 256

/*
 * Terminate TLS from the jail on the connected fd, presenting a leaf for host minted from
 * the run CA (cached per host). The handshake is refused when the client's SNI names
 * another host, or names none while host is a name (no domain fronting). Only
 * http/1.1 is offered by ALPN. NULL with a one-line reason in why on failure.
 */
SSL *tls_accept_client(int fd, const char *host, char *why, size_t whysz);

/*
 * Open verified TLS to the upstream on the connected fd: system roots plus
 * --upstream-ca, TLS 1.2 or later, SNI set, certificate checked against host (name or
 * IP literal). Sessions are resumed per host when the server allows it. NULL with a
 * one-line reason ("certificate verify failed: self-signed certificate") on failure.
 */
SSL *tls_connect_upstream(int fd, const char *host, char *why, size_t whysz);

/* Close a session from either function (sends close_notify, frees; not the fd). */
void tls_close(SSL *ssl);

/* The leaf certificate (PEM, malloc'd) that would be presented for host: for tests. */
char *tls_leaf_pem(const char *host);

#endif
