/*
 * intercept.c - an intercepted CONNECT to a host with a bound secret.
 *
 * One thread per session, blocking I/O: TLS from the jail terminated with a leaf minted
 * for the CONNECT target (tls.c), then HTTP/1.1 requests one after the other on the kept-
 * alive connection; between requests the session is parked in an event loop, which serves
 * the plain exchanges itself and hands everything else back (see "the event loop"). Each request head is checked (Host = target, exfiltration guard,
 * the secrets' method/path rules), rewritten (placeholders -> values, declared headers
 * set outright, hop-by-hop fields dropped) and sent over one verified TLS connection to
 * exactly the address the proxy checked; bodies are streamed both ways with their framing
 * re-created, never buffered whole. Responses have the real values redacted back to the
 * placeholders (same length: lengths and chunk sizes stay valid) in the head and the body;
 * requests ask for an uncompressed body and a compressed one is refused (502).
 */
#include "intercept.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "audit.h"
#include "http.h"
#include "secrets.h"
#include "secrets_codec.h"
#include "tls_session.h"
#include "util.h"

#ifndef IO_TIMEOUT_S /* (a test builds a copy with a short one) */
#define IO_TIMEOUT_S 300 /* idle read/write on either side */
#endif
#define CONNECT_TIMEOUT_S 10
#define BUF_CAP		  (HTTP_MAX_HEAD + 64 * 1024) /* a whole head plus some body */
#define WHY_MAX		  512

/* One side of the session: a TLS connection and the bytes read but not yet used. */
struct side {
	SSL *ssl;
	int fd;
	char *buf;
	size_t len;
	size_t high;	/* the most of buf ever used: what must be wiped at the end */
	uint64_t bytes; /* payload bytes relayed from this side */
	bool drained;	/* the last read(2) under SSL_read came back short: nothing left */
	bool ended;	/* the peer closed or reset the connection (not: a timeout, garbage) */
};

struct session {
	const struct intercept_target *t;
	const struct policy *p;
	struct side c, u; /* client (jail), upstream */
	unsigned served;  /* responses relayed on the current upstream connection */
	bool reused;	  /* the request in flight went out on a connection that had served */
	char method[32];
	char path[1024]; /* for the audit log: the path without its query */
	struct timespec start;
	bool unbound_any;     /* some secret is not bound to this host: scan bodies */
	char up_why[WHY_MAX]; /* why the early upstream dial failed ("" when it did not) */

	/* ---- kept-alive requests served by the event loop (see "the event loop") ---- */
	struct http_request *rq;
	struct http_response *rs;
	int state;	    /* LS_* while the loop owns the session */
	int resume;	    /* R_*: what the owner thread does when the loop hands back */
	bool handed;	    /* the loop gave the session back (under mu) */
	bool c_rd, u_rd;    /* that side may have bytes we have not read (edge-triggered) */
	bool keep;	    /* the current exchange leaves the connection open */
	size_t hl, scan;    /* request head length; end-of-head search progress */
	uint64_t used;	    /* secrets injected into the current request */
	struct sbuf uphead; /* the upstream request head (holds values: wiped after use) */
	struct sbuf out;    /* a whole response for the jail */
	struct sbuf *pend;  /* a write the loop could not finish: the owner retries it */
	time_t idle_since;  /* CLOCK_MONOTONIC seconds of the last progress */
	struct session *next, *prev; /* the loop's list of parked sessions */
	struct loop *lp;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* ---- I/O ---- */

static void set_timeouts(int fd, int secs)
{
	struct timeval tv = {.tv_sec = secs};
	int one = 1;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* SSL_read into the free end of s->buf (the caller checked there is one), counting what
 * came and how much of the buffer was ever used (what must be wiped). SSL_read's result. */
static int side_read(struct side *s)
{
	int r = SSL_read(s->ssl, s->buf + s->len, (int)(BUF_CAP - s->len));

	if (r > 0) {
		s->len += (size_t)r;
		if (s->len > s->high)
			s->high = s->len;
	}
	return r;
}

/*
 * Why SSL_read returned r <= 0: 0 at the end of the stream, -1 otherwise. s->ended (kept
 * until the connection is closed) notes that the peer closed or reset it, as opposed to
 * a receive timeout (WANT_READ under SO_RCVTIMEO) or a TLS error.
 */
static int side_end(struct side *s, int r)
{
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_ZERO_RETURN:
		s->ended = true;
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0) { /* EOF without close_notify */
			s->ended = true;
			return 0;
		}
		s->ended |= errno == ECONNRESET || errno == EPIPE;
		return -1;
	case SSL_ERROR_SSL: /* OpenSSL 3 reports an EOF without close_notify so */
		s->ended |= ERR_GET_REASON(ERR_peek_last_error()) ==
			    SSL_R_UNEXPECTED_EOF_WHILE_READING;
		return -1;
	default:
		return -1;
	}
}

/* Read more into s->buf. > 0 bytes, 0 at end of stream, -1 on error. */
static int side_fill(struct side *s)
{
	int r;

	if (s->len >= BUF_CAP)
		return -1;
	r = side_read(s);
	return r > 0 ? r : side_end(s, r);
}

static void side_consume(struct side *s, size_t n)
{
	if (n >= s->len) {
		s->len = 0;
		return;
	}
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
}

static int ssl_write_all(SSL *ssl, const void *buf, size_t len)
{
	const char *b = buf;

	while (len) {
		int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
		int w = SSL_write(ssl, b, chunk);

		if (w <= 0)
			return -1;
		b += w;
		len -= (size_t)w;
	}
	return 0;
}

/* ---- audit and errors ---- */

static void audit_ev(struct session *ss, enum audit_decision d, int status, const char *reason,
		     const char *secret, const char *rule)
{
	struct timespec now;
	struct audit_rec r = {
	    .conn = ss->t->conn,
	    .method = ss->method[0] ? ss->method : "CONNECT",
	    .host = ss->t->host,
	    .port = ss->t->port,
	    .path = ss->path[0] ? ss->path : NULL,
	    .decision = d,
	    .status = status,
	    .rule = rule,
	    .reason = reason,
	    .secret = secret,
	    .bytes_up = ss->c.bytes,
	    .bytes_down = ss->u.bytes,
	};

	clock_gettime(CLOCK_MONOTONIC, &now);
	r.ms = (double)(now.tv_sec - ss->start.tv_sec) * 1e3 +
	       (double)(now.tv_nsec - ss->start.tv_nsec) / 1e6;
	audit_log(&r);
}

/* Answer the jail with a short error; the connection closes after it. */
static void send_error(struct session *ss, int status, const char *why)
{
	char body[WHY_MAX + 32], out[2 * WHY_MAX + 256];
	int n;

	snprintf(body, sizeof(body), "agentjail: %s\n", why);
	n = http_format_error(out, sizeof(out), status, NULL, body);
	if (n > 0)
		(void)ssl_write_all(ss->c.ssl, out, (size_t)n);
}

/* ---- the upstream connection ---- */

static void upstream_close(struct session *ss)
{
	tls_close(ss->u.ssl);
	ss->u.ssl = NULL;
	if (ss->u.fd >= 0)
		close(ss->u.fd);
	ss->u.fd = -1;
	ss->u.len = 0;
	ss->u.ended = false;
	ss->served = 0;
}

static int upstream_open(struct session *ss, char *why, size_t whysz)
{
	const struct intercept_target *t = ss->t;
	int fd = socket(t->addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(why, whysz, "socket: %s", strerror(errno));
		return -1;
	}
	/* SO_SNDTIMEO also bounds connect() on Linux. */
	set_timeouts(fd, CONNECT_TIMEOUT_S);
	if (connect(fd, t->addr, t->addrlen) < 0) {
		snprintf(why, whysz, "cannot connect to %s port %d: %s", t->host, t->port,
			 errno == EINPROGRESS ? "timed out" : strerror(errno));
		close(fd);
		return -1;
	}
	ss->u.ssl = tls_connect_upstream(fd, t->host, why, whysz);
	if (!ss->u.ssl) {
		close(fd);
		return -1;
	}
	set_timeouts(fd, IO_TIMEOUT_S);
	ss->u.fd = fd;
	ss->u.len = 0;
	ss->served = 0;
	return 0;
}

/*
 * The first upstream connection is dialled (TCP and TLS) in a helper thread while the
 * client's handshake runs, so that a new intercepted connection costs about one
 * handshake of latency instead of two. The main thread touches ss->u only after the join.
 */
static void *early_dial(void *arg)
{
	struct session *ss = arg;

	if (upstream_open(ss, ss->up_why, sizeof(ss->up_why)) < 0 && !ss->up_why[0])
		snprintf(ss->up_why, sizeof(ss->up_why), "cannot reach %s", ss->t->host);
	return NULL;
}

/* A kept-alive upstream connection with something to read between exchanges has been
 * closed by the server (or sent garbage): drop it. */
static bool upstream_stale(struct session *ss)
{
	struct pollfd pfd = {.fd = ss->u.fd, .events = POLLIN};

	return SSL_pending(ss->u.ssl) > 0 || ss->u.len > 0 || poll(&pfd, 1, 0) != 0;
}

/* ---- request checks ---- */

static void drop_uphead(struct session *ss)
{
	wipe(ss->uphead.v, ss->uphead.n); /* the values */
	ss->uphead.n = 0;
}

/* Host header or absolute-form authority: "host", "host:port", "[v6]:port". */
static bool authority_matches(struct session *ss, const char *a, size_t n)
{
	const char *h = a, *port = NULL;
	size_t hl = n, tl = strlen(ss->t->host);

	if (n && a[0] == '[') {
		const char *e = memchr(a, ']', n);

		if (!e)
			return false;
		h = a + 1;
		hl = (size_t)(e - h);
		if ((size_t)(e + 1 - a) < n) {
			if (e[1] != ':')
				return false;
			port = e + 2;
		}
	} else {
		const char *c = memchr(a, ':', n);

		if (c) {
			hl = (size_t)(c - a);
			port = c + 1;
		}
	}
	if (hl && h[hl - 1] == '.')
		hl--;
	if (hl != tl || strncasecmp(h, ss->t->host, tl))
		return false;
	if (port) {
		size_t pl = n - (size_t)(port - a);
		char pb[8];

		if (!pl || pl >= sizeof(pb))
			return false;
		memcpy(pb, port, pl);
		pb[pl] = '\0';
		for (size_t i = 0; i < pl; i++)
			if (pb[i] < '0' || pb[i] > '9')
				return false;
		return atoi(pb) == ss->t->port;
	}
	return true; /* no port: the host is what fronting would change */
}

/* A path is "clean" for prefix rules when no (encoded) dot segment or encoded slash or
 * backslash could make the server see another path than the one the rule checked. */
static bool path_clean(const char *path, size_t n)
{
	char *d = xmalloc(n + 1);
	size_t dl = pct_decode(path, n, d);
	bool ok = true;

	d[dl] = '\0';
	if (memmem(path, n, "%2f", 3) || memmem(path, n, "%2F", 3) || memchr(d, '\\', dl) ||
	    memmem(path, n, "%5c", 3) || memmem(path, n, "%5C", 3))
		ok = false;
	for (size_t i = 0; ok && i < dl; i++) {
		if (d[i] != '/')
			continue;
		if (d[i + 1] == '.' && (d[i + 2] == '/' || d[i + 2] == '\0'))
			ok = false;
		if (d[i + 1] == '.' && d[i + 2] == '.' && (d[i + 3] == '/' || d[i + 3] == '\0'))
			ok = false;
	}
	free(d);
	return ok;
}

/* The secret's method and path rules: NULL when the request may use it, else why not. */
static const char *rule_refuses(const struct secret_rule *s, struct http_span method,
				const char *path, size_t pathlen, char *why, size_t whysz)
{
	bool ok = !s->methods.n;

	for (size_t i = 0; i < s->methods.n && !ok; i++)
		ok = http_span_eq(method, s->methods.v[i]);
	if (!ok) {
		snprintf(why, whysz, "secret %s may not be used with method %.*s (%s)", s->name,
			 (int)method.len, method.p, s->origin);
		return why;
	}
	if (!s->paths.n)
		return NULL;
	if (!path_clean(path, pathlen)) {
		snprintf(why, whysz,
			 "secret %s is limited to some paths and this path has dot segments or "
			 "encoded slashes (%s)",
			 s->name, s->origin);
		return why;
	}
	for (size_t i = 0; i < s->paths.n; i++) {
		size_t pl = strlen(s->paths.v[i]);

		if (pathlen >= pl && !memcmp(path, s->paths.v[i], pl))
			return NULL;
	}
	snprintf(why, whysz, "secret %s may not be used on this path (%s)", s->name, s->origin);
	return why;
}

/* ---- building the upstream request head ---- */

static bool header_named(struct http_span name, const char *decl)
{
	const char *colon = strchr(decl, ':');
	size_t n = colon ? (size_t)(colon - decl) : strlen(decl);

	return name.len == n && !strncasecmp(name.p, decl, n);
}

/* "Authorization: Bearer {value}" with the value in place of {value}. */
static void add_declared(struct sbuf *out, const char *decl, const char *val, size_t vlen)
{
	const char *at = strstr(decl, "{value}");

	if (at) {
		sbuf_add(out, decl, (size_t)(at - decl));
		sbuf_add(out, val, vlen);
		sbuf_adds(out, at + 7);
	} else {
		sbuf_adds(out, decl);
	}
	sbuf_add(out, "\r\n", 2);
}

/* Is this field named in the request's Connection header (so hop-by-hop)? */
static bool in_connection(const struct http_request *rq, struct http_span name)
{
	size_t from = 0;
	const struct http_header *h;
	char tok[128];

	if (name.len >= sizeof(tok))
		return false;
	memcpy(tok, name.p, name.len);
	tok[name.len] = '\0';
	while ((h = http_header_find(rq->headers, rq->nheaders, "connection", &from)))
		if (http_has_token(h->value, tok))
			return true;
	return false;
}

static bool has_scheme(struct http_span v, const char *scheme)
{
	size_t n = strlen(scheme);

	return v.len > n && !strncasecmp(v.p, scheme, n) && v.p[n] == ' ';
}

/*
 * Rewrite the head for the upstream. *used gets the secrets substituted or declared.
 * body_kind decides the framing fields we add back.
 */
static void build_head(struct session *ss, const struct http_request *rq, struct http_span path,
		       enum http_body kind, bool close_after, struct sbuf *out, uint64_t *used)
{
	const struct policy *p = ss->p;
	const char *host = ss->t->host;
	const char *q = memchr(path.p, '?', path.len);
	uint64_t declared = 0, bound = secrets_bound_mask(p, host);
	bool conn_hdr = http_header_find(rq->headers, rq->nheaders, "connection", NULL) != NULL;

	for (size_t i = 0; i < p->secrets.n && i < SECRETS_MAX; i++)
		if (p->secrets.v[i].header && (bound & (1ULL << i)))
			declared |= 1ULL << i;

	sbuf_add(out, rq->method.p, rq->method.len);
	sbuf_add(out, " ", 1);
	if (!path.len) {
		sbuf_add(out, "/", 1);
	} else if (q) {
		sbuf_add(out, path.p, (size_t)(q - path.p) + 1);
		secrets_subst_query(p, host, q + 1, path.len - (size_t)(q - path.p) - 1, out, used);
	} else {
		sbuf_add(out, path.p, path.len);
	}
	sbuf_adds(out, " HTTP/1.1\r\n");

	for (size_t i = 0; i < rq->nheaders; i++) {
		const struct http_header *h = &rq->headers[i];
		/*
		 * Accept-Encoding: the body must come back uncompressed, or the real value it
		 * echoes could not be redacted (the jail would ask for gzip and decompress
		 * it). Range/If-Range: a reflected value fetched piecewise would never match
		 * whole for redaction.
		 */
		bool drop =
		    http_is_hop_header(h->name) || (conn_hdr && in_connection(rq, h->name)) ||
		    http_span_eq(h->name, "expect") || http_span_eq(h->name, "accept-encoding") ||
		    http_span_eq(h->name, "range") || http_span_eq(h->name, "if-range");

		for (size_t k = 0; k < p->secrets.n && !drop; k++)
			if (declared & (1ULL << k))
				drop = header_named(h->name, p->secrets.v[k].header);
		if (drop)
			continue;
		sbuf_add(out, h->name.p, h->name.len);
		sbuf_add(out, ": ", 2);
		if (http_span_eq(h->name, "authorization") && has_scheme(h->value, "basic")) {
			size_t sl = 6;

			while (sl < h->value.len && h->value.p[sl] == ' ')
				sl++;
			sbuf_add(out, h->value.p, sl);
			secrets_subst_basic(p, host, h->value.p + sl, h->value.len - sl, out, used);
		} else {
			secrets_subst_raw(p, host, h->value.p, h->value.len, out, used);
		}
		sbuf_add(out, "\r\n", 2);
	}
	for (size_t k = 0; k < p->secrets.n; k++) {
		size_t vl;
		const char *v;

		if (!(declared & (1ULL << k)) || !(v = secrets_value(k, &vl)))
			continue;
		add_declared(out, p->secrets.v[k].header, v, vl);
		*used |= 1ULL << k;
	}
	sbuf_adds(out, "Accept-Encoding: identity\r\n");
	if (kind == HTTP_BODY_CHUNKED)
		sbuf_adds(out, "Transfer-Encoding: chunked\r\n");
	if (close_after)
		sbuf_adds(out, "Connection: close\r\n");
	sbuf_add(out, "\r\n", 2);
}

/* ---- bodies ---- */

/* Streaming exfiltration scan over a request body: each piece is scanned joined with the
 * tail of the previous ones, so an encoded placeholder split across pieces is seen. */
struct body_scan {
	struct sbuf tail;
	const char *hit;
};

static void body_scan_feed(struct session *ss, struct body_scan *bs, const char *d, size_t n)
{
	size_t w = secrets_scan_window();
	size_t head = n < w ? n : w;

	if (!ss->unbound_any || bs->hit || !n)
		return;
	bs->hit = secrets_exfil_scan(ss->p, ss->t->host, d, n);
	if (!bs->hit && bs->tail.n) {
		sbuf_add(&bs->tail, d, head);
		bs->hit = secrets_exfil_scan(ss->p, ss->t->host, bs->tail.v, bs->tail.n);
	}
	/* keep the last w bytes of everything seen */
	if (n >= w) {
		bs->tail.n = 0;
		sbuf_add(&bs->tail, d + n - w, w);
	} else if (bs->tail.n > w) {
		memmove(bs->tail.v, bs->tail.v + bs->tail.n - w, w);
		bs->tail.n = w;
	} else if (!bs->tail.n) {
		sbuf_add(&bs->tail, d, n);
	}
}

/*
 * Output to one side is corked: a response head and the first body bytes (often the whole
 * small response) leave in one TLS record, one syscall. The cork is flushed when it holds
 * a full record's worth, and always before we block reading the other side, so streamed
 * bodies are never held back.
 */
#define CORK_FLUSH (16 * 1024)

static int cork_flush(SSL *ssl, struct sbuf *cork)
{
	int rc = cork->n ? ssl_write_all(ssl, cork->v, cork->n) : 0;

	cork->n = 0;
	return rc;
}

static int cork_add(SSL *ssl, struct sbuf *cork, const char *d, size_t n, bool *sent)
{
	sbuf_add(cork, d, n);
	if (cork->n < CORK_FLUSH)
		return 0;
	*sent = true;
	return cork_flush(ssl, cork);
}

/* One chunk: size line, data, CRLF. */
static int write_chunk(SSL *ssl, struct sbuf *cork, const char *d, size_t n, bool *sent)
{
	char line[24];
	int l;

	if (!n)
		return 0;
	l = snprintf(line, sizeof(line), "%zx\r\n", n);
	sbuf_add(cork, line, (size_t)l);
	sbuf_add(cork, d, n);
	return cork_add(ssl, cork, "\r\n", 2, sent);
}

/*
 * Relay a body from `from` to `to`. Request bodies (redact == NULL) are scanned for
 * placeholders of unbound secrets; response bodies go through the redactor when one is
 * given. Returns 0, -1 on an I/O or framing error, -2 when the scan found a placeholder
 * (bs->hit names the secret; the upstream gets an incomplete body and is dropped).
 */
static int relay_body(struct session *ss, struct side *from, struct side *to, enum http_body kind,
		      uint64_t len, struct redact_stream *redact, struct body_scan *bs,
		      struct sbuf *head, bool *sent)
{
	struct http_chunked ch;
	struct sbuf tmp = {0}; /* the cork, starting with the head when one is given */
	const char *out;
	size_t outlen;
	bool more = false; /* the decoder took nothing: it needs bytes behind these */
	int ret = -1;

	http_chunked_init(&ch);
	if (head)
		sbuf_add(&tmp, head->v, head->n);
	for (;;) {
		const char *data = NULL;
		size_t dlen = 0, used;

		if (kind == HTTP_BODY_LENGTH && !len)
			break;
		if (kind == HTTP_BODY_CHUNKED && ch.done)
			break;
		if (!from->len || more) {
			int r;

			*sent = *sent || tmp.n; /* about to block: send what we have */
			if (cork_flush(to->ssl, &tmp))
				goto out;
			r = side_fill(from);

			if (r < 0 || (r == 0 && kind != HTTP_BODY_CLOSE))
				goto out;
			if (r == 0)
				break;
		}
		if (kind == HTTP_BODY_CHUNKED) {
			ssize_t n = http_chunked_feed(&ch, from->buf, from->len, &data, &dlen);

			if (n < 0)
				goto out;
			used = (size_t)n;
			more = n == 0 && !dlen && !ch.done;
		} else {
			dlen = from->len;
			if (kind == HTTP_BODY_LENGTH && dlen > len)
				dlen = (size_t)len;
			data = from->buf;
			used = dlen;
			len -= kind == HTTP_BODY_LENGTH ? dlen : 0;
		}
		from->bytes += dlen;
		if (bs) {
			body_scan_feed(ss, bs, data, dlen);
			if (bs->hit) {
				ret = -2;
				goto out;
			}
		}
		out = data;
		outlen = dlen;
		if (redact && dlen)
			secrets_redact_feed(redact, data, dlen, &out, &outlen);
		if (kind == HTTP_BODY_CHUNKED ? write_chunk(to->ssl, &tmp, out, outlen, sent)
					      : cork_add(to->ssl, &tmp, out, outlen, sent))
			goto out;
		side_consume(from, used);
	}
	if (redact) {
		secrets_redact_finish(redact, &out, &outlen);
		if (kind == HTTP_BODY_CHUNKED ? write_chunk(to->ssl, &tmp, out, outlen, sent)
					      : cork_add(to->ssl, &tmp, out, outlen, sent))
			goto out;
	}
	/* Trailers are not relayed: the last chunk ends the body. */
	if (kind == HTTP_BODY_CHUNKED)
		sbuf_add(&tmp, "0\r\n\r\n", 5);
	*sent = *sent || tmp.n;
	if (cork_flush(to->ssl, &tmp))
		goto out;
	ret = 0;
out:
	sbuf_free(&tmp);
	return ret;
}

/* ---- responses ---- */

/* Read a response head from the upstream. > 0 head length, 0 EOF before any byte, -1. */
static int read_response_head(struct session *ss, struct http_response *rs)
{
	size_t scan = 0;

	for (;;) {
		int r = ss->u.len ? http_parse_response(ss->u.buf, ss->u.len, &scan, rs) : 0;

		if (r != 0)
			return r > 0 ? r : -1;
		r = side_fill(&ss->u);
		if (r <= 0)
			return r == 0 && !ss->u.len ? 0 : -1;
	}
}

static bool compressed(const struct http_response *rs)
{
	size_t from = 0;
	const struct http_header *h;

	while ((h = http_header_find(rs->headers, rs->nheaders, "content-encoding", &from)))
		if (h->value.len && !http_span_eq(h->value, "identity"))
			return true;
	return false;
}

/* The response head for the jail: hop-by-hop fields dropped, framing re-added, values
 * redacted. */
static void build_response_head_raw(const struct http_response *rs, enum http_body kind,
				    bool close_after, struct sbuf *out)
{
	char line[] = "HTTP/1.1 000 ";

	/* the parser keeps status within 100..999 */
	line[9] = (char)('0' + rs->status / 100 % 10);
	line[10] = (char)('0' + rs->status / 10 % 10);
	line[11] = (char)('0' + rs->status % 10);
	sbuf_add(out, line, sizeof(line) - 1);
	sbuf_add(out, rs->reason.p, rs->reason.len);
	sbuf_add(out, "\r\n", 2);
	for (size_t i = 0; i < rs->nheaders; i++) {
		const struct http_header *h = &rs->headers[i];

		if (http_is_hop_header(h->name))
			continue;
		sbuf_add(out, h->name.p, h->name.len);
		sbuf_add(out, ": ", 2);
		sbuf_add(out, h->value.p, h->value.len);
		sbuf_add(out, "\r\n", 2);
	}
	if (kind == HTTP_BODY_CHUNKED)
		sbuf_adds(out, "Transfer-Encoding: chunked\r\n");
	if (close_after)
		sbuf_adds(out, "Connection: close\r\n");
	sbuf_add(out, "\r\n", 2);
}

static void build_response_head(const struct http_response *rs, enum http_body kind,
				bool close_after, struct sbuf *out)
{
	build_response_head_raw(rs, kind, close_after, out);
	secrets_redact_buf(out->v, out->n);
}

/*
 * Relay the upstream's answer; interim 1xx answers are forwarded. 0 with *keep telling
 * whether the connection may carry another request, or -1 (with why) before anything of
 * the final answer went to the client; -2 (with why) when the upstream closed or reset
 * the connection before any byte of an answer (not when it timed out).
 */
static int relay_response(struct session *ss, bool *keep, char *why, size_t whysz)
{
	/* The method as copied before the request head left the buffer (the span in the
	 * parsed request would point at the next, pipelined, request by now). */
	struct http_span method = {ss->method, strlen(ss->method)};
	struct http_response *rs = ss->rs;
	struct sbuf head = {0};
	struct redact_stream red;
	enum http_body kind;
	uint64_t len = 0;
	int ret = -1, hl;
	bool sent = false;    /* any byte of the answer reached the client */
	bool interim = false; /* a 1xx answer went to the client */

	for (;;) {
		hl = read_response_head(ss, rs);
		if (hl <= 0) {
			snprintf(why, whysz, "upstream %s sent %s", ss->t->host,
				 hl == 0 || !ss->u.len ? "no response" : "a malformed response");
			if (!ss->u.len && !interim && ss->u.ended) /* closed, no answer */
				ret = -2;
			goto out;
		}
		if (rs->status >= 200 || rs->status == 101)
			break;
		head.n = 0;
		build_response_head(rs, HTTP_BODY_NONE, false, &head);
		side_consume(&ss->u, (size_t)hl);
		interim = true;
		if (ssl_write_all(ss->c.ssl, head.v, head.n) < 0) {
			snprintf(why, whysz, "client went away");
			goto out;
		}
	}
	if (rs->status == 101 || http_response_body(rs, method, &kind, &len) < 0 ||
	    kind == HTTP_BODY_TUNNEL) {
		snprintf(why, whysz, "upstream %s sent a response that cannot be relayed",
			 ss->t->host);
		goto out;
	}
	if (kind != HTTP_BODY_NONE && compressed(rs)) {
		/* We asked for identity; a compressed body cannot be redacted, so it does
		 * not reach the jail at all. */
		snprintf(why, whysz,
			 "upstream %s sent a compressed body although agentjail asked for "
			 "Accept-Encoding: identity; it cannot be checked for secret values",
			 ss->t->host);
		goto out;
	}
	*keep = *keep && http_response_keepalive(rs) && kind != HTTP_BODY_CLOSE;
	head.n = 0;
	build_response_head(rs, kind, !*keep, &head);
	side_consume(&ss->u, (size_t)hl);
	if (kind == HTTP_BODY_NONE) {
		if (ssl_write_all(ss->c.ssl, head.v, head.n) < 0) {
			snprintf(why, whysz, "client went away");
			goto out;
		}
		ss->served++;
		ret = 0;
		goto out;
	}
	/* the head goes out with the first body bytes (relay_body's cork) */
	secrets_redact_init(&red);
	ret = relay_body(ss, &ss->u, &ss->c, kind, len, &red, NULL, &head, &sent);
	secrets_redact_free(&red);
	if (ret < 0) {
		snprintf(why, whysz, "relaying the response body of %s failed", ss->t->host);
		*keep = false;
		if (!sent)
			goto out; /* nothing went out: the caller answers 502 */
		ret = 0;	  /* the head went out: no error response is possible any more */
	}
	ss->served++;
out:
	sbuf_free(&head);
	return ret;
}

/* ---- one request ---- */

static void set_path(struct session *ss, struct http_span path)
{
	const char *q = memchr(path.p, '?', path.len);
	size_t n = q ? (size_t)(q - path.p) : path.len;

	if (n >= sizeof(ss->path))
		n = sizeof(ss->path) - 1;
	memcpy(ss->path, path.p, n);
	ss->path[n] = '\0';
	if (!n)
		snprintf(ss->path, sizeof(ss->path), "/");
}

/* Why a request is refused before anything of it goes upstream. */
struct verdict {
	int status;
	enum audit_decision d;
	const char *secret, *rule;
	char why[WHY_MAX];
};

/* What a checked request needs to go upstream. */
struct checked {
	struct http_span path;
	enum http_body kind;
	uint64_t blen;
	bool keep, expect;
};

/*
 * Every check of a request head (hl bytes at the start of the client buffer) and the
 * rewritten head for the upstream in ss->uphead, ss->used the secrets it carries. 0, or
 * -1 with the refusal in *v (nothing has been sent anywhere: the caller answers it).
 * Free of side effects but ss->method/ss->path, so that the event loop can run it and
 * leave a refusal to the session's thread, which runs it again.
 */
static int check_request(struct session *ss, const struct http_request *rq, size_t hl,
			 struct checked *ck, struct verdict *v)
{
	const struct policy *p = ss->p;
	char hostbuf[256];
	const struct http_header *hh;
	size_t from = 0;
	const char *hit;
	int port;

	memset(ck, 0, sizeof(*ck));
	v->secret = v->rule = NULL;
	ck->path = rq->target;
	{
		size_t ml =
		    rq->method.len < sizeof(ss->method) ? rq->method.len : sizeof(ss->method) - 1;

		memcpy(ss->method, rq->method.p, ml);
		ss->method[ml] = '\0';
	}
	ss->path[0] = '\0';
	if (ck->path.len && ck->path.p[0] != '/') {
		if (http_parse_absolute_uri(rq->target, "https", 443, hostbuf, sizeof(hostbuf),
					    &port, &ck->path) < 0 ||
		    strcasecmp(hostbuf, ss->t->host) || port != ss->t->port) {
			set_path(ss, rq->target);
			snprintf(v->why, sizeof(v->why), "request target is not on %s",
				 ss->t->host);
			goto misdirected;
		}
	}
	set_path(ss, ck->path);

	/* Exactly one Host, naming the CONNECT target: no domain fronting. */
	hh = http_header_find(rq->headers, rq->nheaders, "host", &from);
	if (!hh || http_header_find(rq->headers, rq->nheaders, "host", &from) ||
	    !authority_matches(ss, hh->value.p, hh->value.len)) {
		snprintf(v->why, sizeof(v->why), "Host %.*s does not match the CONNECT target %s",
			 hh ? (int)(hh->value.len > 200 ? 200 : hh->value.len) : 6,
			 hh ? hh->value.p : "(none)", ss->t->host);
		goto misdirected;
	}

	/* The exfiltration guard reads the head as the jail sent it. */
	hit = ss->unbound_any ? secrets_exfil_scan(p, ss->t->host, ss->c.buf, hl) : NULL;
	if (hit) {
		snprintf(v->why, sizeof(v->why),
			 "placeholder of secret %s sent to %s, where it is not bound", hit,
			 ss->t->host);
		v->status = 403;
		v->d = AUDIT_EXFIL;
		v->secret = hit;
		return -1;
	}

	if (http_request_body(rq, &ck->kind, &ck->blen) < 0) {
		snprintf(v->why, sizeof(v->why), "request body framing refused");
		v->status = 400;
		v->d = AUDIT_ERROR;
		return -1;
	}
	ck->keep = http_request_keepalive(rq);
	from = 0;
	hh = http_header_find(rq->headers, rq->nheaders, "expect", &from);
	ck->expect = hh && http_span_eq(hh->value, "100-continue") && ck->kind != HTTP_BODY_NONE;
	/* Sized up front so that no realloc leaves a copy of a value behind in the heap. */
	drop_uphead(ss); /* (already wiped on every path; a realloc must find it so) */
	ss->used = 0;
	vec_grow((void **)&ss->uphead.v, &ss->uphead.cap, 2 * hl + 16384, 1);
	build_head(ss, rq, ck->path, ck->kind, !ck->keep, &ss->uphead, &ss->used);

	/* Method and path rules of every secret this request would carry. */
	for (size_t i = 0; i < p->secrets.n; i++) {
		const struct secret_rule *s = &p->secrets.v[i];
		const char *q = memchr(ck->path.p, '?', ck->path.len);
		size_t pl = q ? (size_t)(q - ck->path.p) : ck->path.len;

		if (!(ss->used & (1ULL << i)) ||
		    !rule_refuses(s, rq->method, ck->path.p, pl, v->why, sizeof(v->why)))
			continue;
		wipe(ss->uphead.v, ss->uphead.n);
		ss->uphead.n = 0;
		v->status = 403;
		v->d = AUDIT_DENY;
		v->secret = s->name;
		v->rule = s->origin;
		return -1;
	}
	return 0;

misdirected:
	v->status = 421;
	v->d = AUDIT_DENY;
	return -1;
}

static void audit_injected(struct session *ss, uint64_t used)
{
	const struct policy *p = ss->p;

	for (size_t i = 0; i < p->secrets.n; i++)
		if (used & (1ULL << i))
			audit_ev(ss, AUDIT_INJECT, 0, "secret injected", p->secrets.v[i].name,
				 p->secrets.v[i].origin);
}

static bool bad_gateway(struct session *ss, const char *why)
{
	send_error(ss, 502, why);
	audit_ev(ss, AUDIT_ERROR, 502, why, NULL, NULL);
	return false;
}

/*
 * A server may close an idle kept-alive connection just as our request reaches it. A
 * request that is safe to repeat (RFC 9110, 9.2.2: GET, HEAD, OPTIONS; no body) and went
 * out on a connection that had already served is then sent once more, on a new one,
 * instead of answering 502; never after a timeout (the server may be acting on it). The
 * rewritten head (it holds values) is kept for that until the answer is relayed, or on
 * the event loop's path until its head arrived, and wiped then.
 */
static bool retryable(const struct session *ss)
{
	return ss->reused && ss->uphead.n &&
	       (!strcmp(ss->method, "GET") || !strcmp(ss->method, "HEAD") ||
		!strcmp(ss->method, "OPTIONS"));
}

static int resend(struct session *ss, char *why, size_t whysz)
{
	ss->reused = false; /* once */
	upstream_close(ss);
	if (upstream_open(ss, why, whysz) < 0)
		return -1;
	if (ssl_write_all(ss->u.ssl, ss->uphead.v, ss->uphead.n) < 0) {
		snprintf(why, whysz, "upstream %s closed the connection", ss->t->host);
		return -1;
	}
	return 0;
}

/* Send the head in ss->uphead upstream (again on a new connection if allowed), and audit
 * the injection once it went out. Kept for a retry when retryable(), else wiped (always
 * when sending failed). */
static int send_uphead(struct session *ss, char *why, size_t whysz)
{
	int r = ssl_write_all(ss->u.ssl, ss->uphead.v, ss->uphead.n);

	if (r < 0 && retryable(ss))
		r = resend(ss, why, whysz);
	else if (r < 0)
		snprintf(why, whysz, "upstream %s closed the connection", ss->t->host);
	if (!retryable(ss))
		drop_uphead(ss);
	if (r == 0)
		audit_injected(ss, ss->used);
	return r;
}

/* relay_response(), with one retry of a retryable request; the head is wiped after. */
static int relay_answer(struct session *ss, char *why, size_t whysz)
{
	int r = relay_response(ss, &ss->keep, why, whysz);

	if (r == -2 && retryable(ss)) {
		r = resend(ss, why, whysz);
		if (r == 0)
			r = relay_response(ss, &ss->keep, why, whysz);
	}
	drop_uphead(ss);
	return r < 0 ? -1 : r;
}

/* Serve one request whose head is rq (hl bytes at the start of the client buffer), with
 * blocking I/O. Returns true when the connection carries on. */
static bool serve_request(struct session *ss, const struct http_request *rq, size_t hl)
{
	char why[WHY_MAX];
	struct body_scan bs = {0};
	struct checked ck;
	struct verdict v;
	int ret;

	if (check_request(ss, rq, hl, &ck, &v) < 0) {
		send_error(ss, v.status,
			   v.status == 400 ? "request body framing refused "
					     "(Content-Length/Transfer-Encoding)"
					   : v.why);
		audit_ev(ss, v.d, v.status, v.why, v.secret, v.rule);
		return false;
	}
	if (ss->up_why[0]) { /* the early dial failed: report that once */
		snprintf(why, sizeof(why), "%s", ss->up_why);
		ss->up_why[0] = '\0';
		drop_uphead(ss);
		return bad_gateway(ss, why);
	}
	/* (before the first exchange, readable means session tickets, not a close) */
	if (ss->u.ssl && ss->served && upstream_stale(ss))
		upstream_close(ss);
	if (!ss->u.ssl && upstream_open(ss, why, sizeof(why)) < 0) {
		drop_uphead(ss);
		return bad_gateway(ss, why);
	}
	side_consume(&ss->c, hl);
	ss->reused = ss->served > 0 && ck.kind == HTTP_BODY_NONE;
	if (send_uphead(ss, why, sizeof(why)) < 0)
		return bad_gateway(ss, why);

	/*
	 * Expect: 100-continue is answered here and not forwarded: an upstream that ignores
	 * it would wait for the body while we waited for its 100. The body then streams.
	 */
	if (ck.expect && ssl_write_all(ss->c.ssl, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
		return false;
	if (ck.kind != HTTP_BODY_NONE) {
		bool up_sent = false;

		ret = relay_body(ss, &ss->c, &ss->u, ck.kind, ck.blen, NULL, &bs, NULL, &up_sent);
		if (ret == -2) {
			snprintf(why, sizeof(why),
				 "placeholder of secret %s sent to %s, where it is not bound",
				 bs.hit, ss->t->host);
			send_error(ss, 403, why);
			audit_ev(ss, AUDIT_EXFIL, 403, why, bs.hit, NULL);
			sbuf_free(&bs.tail);
			upstream_close(ss);
			return false;
		}
		sbuf_free(&bs.tail);
		if (ret < 0) {
			snprintf(why, sizeof(why), "relaying the request body to %s failed",
				 ss->t->host);
			return bad_gateway(ss, why);
		}
	}
	ss->keep = ck.keep;
	if (relay_answer(ss, why, sizeof(why)) < 0)
		return bad_gateway(ss, why);
	return ss->keep;
}

/* Read the next request head. > 0 its length, 0 clean end, < 0 an HTTP status to send. */
static int read_request_head(struct session *ss, struct http_request *rq)
{
	size_t scan = 0;

	for (;;) {
		int r = ss->c.len ? http_parse_request(ss->c.buf, ss->c.len, &scan, rq) : 0;

		if (r > 0)
			return r;
		if (r < 0)
			return r;
		if (ss->c.len >= HTTP_MAX_HEAD)
			return -431;
		r = side_fill(&ss->c);
		if (r <= 0)
			return ss->c.len ? -400 : 0;
	}
}

/* Read and serve the next request with blocking I/O. True when the connection carries on. */
static bool serve_next(struct session *ss)
{
	char why[WHY_MAX];
	int r = read_request_head(ss, ss->rq);

	if (r == 0)
		return false;
	if (r < 0) {
		ss->method[0] = '\0';
		snprintf(why, sizeof(why), "malformed request (%s)",
			 r == -431   ? "head too large"
			 : r == -505 ? "not HTTP/1.x"
				     : "parse");
		send_error(ss, -r, why);
		audit_ev(ss, AUDIT_ERROR, -r, why, NULL, NULL);
		return false;
	}
	return serve_request(ss, ss->rq, (size_t)r);
}

/* ---- the event loop ----
 *
 * A session thread blocked in read() costs two context switches per kept-alive request
 * (one per side), and on a busy machine those switches were most of the proxy's CPU. So
 * between requests a session is parked: its thread sleeps on a condition variable and one
 * event-loop thread serves the common exchange with non-blocking I/O: a request without a
 * body whose checks pass, on a live upstream connection, and a response whose head and
 * Content-Length body fit in the buffer. Everything else (a body to stream, a refusal, an
 * error, a redial, a write that would block, a 1xx answer, chunked or large bodies) is
 * handed back to the session's thread *before* anything of it is sent, and that thread
 * serves the exchange with the blocking code above, then parks the session again. The
 * loop only ever sees complete, buffered messages, so the checks, the rewriting and the
 * redaction are the very same functions either way.
 */

enum { LS_WAIT_REQ, LS_WAIT_RESP, LS_HANDED };
enum {
	R_NONE,	   /* no loop: serve with blocking I/O */
	R_END,	   /* the session is over */
	R_CLASSIC, /* read (what is buffered and more) and serve the next request */
	R_SERVE,   /* serve the parsed request at the head of the client buffer */
	R_UPWRITE, /* finish sending ss->pend (the request head) upstream, then the response */
	R_RESP,	   /* the request went upstream: relay the response */
	R_CWRITE,  /* finish sending ss->pend (a whole response) to the client */
	R_TIMEOUT, /* the upstream did not answer in IO_TIMEOUT_S */
};

#define LOOP_EVENTS   64
#define LOOP_SWEEP_MS 5000

/* Event loops: a session goes to loops[conn % LOOPS]. */
#ifndef LOOPS
#define LOOPS 2
#endif
struct loop {
	int epfd;
	pthread_mutex_t lock; /* the list of parked sessions */
	struct session *list;
	time_t now;	      /* CLOCK_MONOTONIC seconds when the batch began (loop thread) */
	bool ok;
};
static struct loop loops[LOOPS];
static pthread_once_t lp_once = PTHREAD_ONCE_INIT;

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	if (!!(fl & O_NONBLOCK) == on)
		return 0;
	return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/*
 * Called around every operation on a side's socket BIO: note whether the last read(2)
 * emptied the socket (it returned less than asked for). Edge-triggered epoll reports
 * any byte that arrives after that read, so the side needs no further read until then;
 * without this, every exchange cost one more read(2) that could only say EAGAIN.
 */
static long bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl, int ret,
		   size_t *processed)
{
	(void)argp;
	(void)argi;
	(void)argl;
	if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
		bool *drained = (bool *)BIO_get_callback_arg(b);

		*drained = ret <= 0 || !processed || *processed < len;
	}
	return ret;
}

static void watch_drain(struct side *s)
{
	BIO *b = SSL_get_rbio(s->ssl);

	if (b && BIO_get_callback_ex(b) != bio_cb) {
		BIO_set_callback_arg(b, (char *)&s->drained);
		BIO_set_callback_ex(b, bio_cb);
	}
}

/* Non-blocking read into s->buf: > 0 bytes, 0 would block, -1 end of stream or error
 * (or a TLS state the blocking code must handle). */
static int nb_fill(struct side *s, bool *rd)
{
	int r;

	if (s->len >= BUF_CAP)
		return -1;
	r = side_read(s);
	if (r > 0) {
		if (s->drained) /* (reset by every event: a read since then came back short) */
			*rd = false;
		return r;
	}
	if (SSL_get_error(s->ssl, r) == SSL_ERROR_WANT_READ) {
		*rd = false;
		return 0;
	}
	(void)side_end(s, r); /* (notes a close for the thread the session goes back to) */
	return -1;
}

/* The owner thread's part: mark the session handed back and wake it. The loop must not
 * touch the session afterwards (the owner may end it at once). */
static void wake_owner(struct session *ss)
{
	pthread_mutex_lock(&ss->mu);
	ss->handed = true;
	pthread_cond_signal(&ss->cv);
	pthread_mutex_unlock(&ss->mu);
}

static void loop_unlist(struct session *ss)
{
	pthread_mutex_lock(&ss->lp->lock);
	if (ss->prev)
		ss->prev->next = ss->next;
	else
		ss->lp->list = ss->next;
	if (ss->next)
		ss->next->prev = ss->prev;
	ss->next = ss->prev = NULL;
	pthread_mutex_unlock(&ss->lp->lock);
}

/* Stop watching the session and note what its thread must do; wake_owner() follows once
 * the current batch of events is done with. */
static void handoff(struct session *ss, int resume)
{
	(void)epoll_ctl(ss->lp->epfd, EPOLL_CTL_DEL, ss->c.fd, NULL);
	if (ss->u.fd >= 0)
		(void)epoll_ctl(ss->lp->epfd, EPOLL_CTL_DEL, ss->u.fd, NULL);
	loop_unlist(ss);
	ss->resume = resume;
	ss->state = LS_HANDED;
}

static void loop_drop_upstream(struct session *ss)
{
	(void)epoll_ctl(ss->lp->epfd, EPOLL_CTL_DEL, ss->u.fd, NULL);
	upstream_close(ss);
	ss->u_rd = false;
}

/*
 * A complete request head is buffered: check it, rewrite it and send it upstream if it
 * is one the loop serves. R_NONE when it went out (wait for the response), else what the
 * session's thread must do (nothing has been sent then, but for R_UPWRITE).
 */
static int loop_request(struct session *ss)
{
	struct checked ck;
	struct verdict v;
	int w;

	if (!ss->u.ssl || ss->up_why[0] || ss->u.len || SSL_has_pending(ss->u.ssl))
		return R_SERVE; /* to dial, to report, or stale */
	if (check_request(ss, ss->rq, ss->hl, &ck, &v) < 0 || ck.kind != HTTP_BODY_NONE) {
		drop_uphead(ss);
		return R_SERVE;
	}
	side_consume(&ss->c, ss->hl);
	ss->keep = ck.keep;
	ss->reused = ss->served > 0;
	w = SSL_write(ss->u.ssl, ss->uphead.v, (int)ss->uphead.n);
	if (w <= 0) {
		ss->pend = &ss->uphead; /* retried as is (same buffer, same length) */
		return R_UPWRITE;
	}
	if (!retryable(ss))
		drop_uphead(ss); /* else kept until the answer starts (loop_response) */
	audit_injected(ss, ss->used);
	return R_NONE;
}

/*
 * The response head is parsed (hl bytes): if the loop can relay it, wait for the whole
 * body and send head and body to the client in one write. R_NONE when sent (or when more
 * bytes are needed: *more), else what the session's thread must do.
 */
static int loop_response(struct session *ss, size_t hl, bool *more)
{
	struct http_response *rs = ss->rs;
	struct http_span method = {ss->method, strlen(ss->method)};
	enum http_body kind;
	uint64_t len = 0;
	int w;

	*more = false;
	drop_uphead(ss); /* an answer started: no retry any more */
	if (rs->status < 200 || http_response_body(rs, method, &kind, &len) < 0 ||
	    (kind != HTTP_BODY_NONE && kind != HTTP_BODY_LENGTH) || len > BUF_CAP - hl ||
	    (kind != HTTP_BODY_NONE && compressed(rs)))
		return R_RESP;
	if (ss->u.len < hl + len) {
		*more = true;
		return R_NONE;
	}
	ss->keep = ss->keep && http_response_keepalive(rs);
	/* Sized once for the largest response the loop serves: a realloc would free a block
	 * holding unredacted bytes without wiping it. */
	if (!ss->out.v) {
		ss->out.cap = BUF_CAP + 4096; /* head rebuilt (< hl + 256) + body (<= BUF_CAP - hl) */
		ss->out.v = xmalloc(ss->out.cap);
	}
	ss->out.n = 0;
	build_response_head_raw(rs, kind, !ss->keep, &ss->out);
	sbuf_add(&ss->out, ss->u.buf + hl, (size_t)len);
	/*
	 * Head and whole body redacted in one pass: what build_response_head() and
	 * secrets_redact_feed + _finish would do separately, since no value (nor its base64)
	 * holds a CR or LF, so none can straddle the empty line between them.
	 */
	secrets_redact_buf(ss->out.v, ss->out.n);
	ss->u.bytes += len;
	side_consume(&ss->u, hl + (size_t)len);
	w = SSL_write(ss->c.ssl, ss->out.v, (int)ss->out.n);
	if (w <= 0) {
		ss->pend = &ss->out;
		return R_CWRITE;
	}
	ss->served++;
	return ss->keep ? R_NONE : R_END;
}

/* Run the session's state machine as far as the buffered and readable bytes go. */
static void loop_step(struct session *ss)
{
	for (;;) {
		int r, x;
		bool more;

		if (ss->state == LS_WAIT_REQ) {
			/* Between exchanges the upstream may only send TLS records without
			 * data (session tickets); data or a close means it is stale. */
			if (ss->u.ssl && (ss->u_rd || SSL_has_pending(ss->u.ssl)) &&
			    nb_fill(&ss->u, &ss->u_rd) != 0)
				loop_drop_upstream(ss);
			r = ss->c.len ? http_parse_request(ss->c.buf, ss->c.len, &ss->scan, ss->rq)
				      : 0;
			if (r < 0)
				return handoff(ss, R_CLASSIC);
			if (r == 0) {
				if (ss->c.len >= HTTP_MAX_HEAD)
					return handoff(ss, R_CLASSIC);
				if (!ss->c_rd && !SSL_has_pending(ss->c.ssl))
					return;
				r = nb_fill(&ss->c, &ss->c_rd);
				if (r < 0)
					return handoff(ss, ss->c.len ? R_CLASSIC : R_END);
				if (r == 0)
					return; /* (a partial record: its rest comes with an event)
						 */
				continue;
			}
			ss->hl = (size_t)r;
			ss->scan = 0;
			x = loop_request(ss);
			if (x != R_NONE)
				return handoff(ss, x);
			ss->state = LS_WAIT_RESP;
			ss->idle_since = ss->lp->now;
			continue;
		}
		r = ss->u.len ? http_parse_response(ss->u.buf, ss->u.len, &ss->scan, ss->rs) : 0;
		if (r < 0)
			return handoff(ss, R_RESP);
		more = r == 0;
		if (r > 0) {
			x = loop_response(ss, (size_t)r, &more);
			if (x != R_NONE)
				return handoff(ss, x);
		}
		if (more) {
			if (ss->u.len >= BUF_CAP)
				return handoff(ss, R_RESP);
			if (!ss->u_rd && !SSL_has_pending(ss->u.ssl))
				return;
			r = nb_fill(&ss->u, &ss->u_rd);
			if (r < 0)
				return handoff(ss, R_RESP); /* the thread reports it */
			if (r == 0)
				return;
			continue;
		}
		ss->state = LS_WAIT_REQ;
		ss->scan = 0;
		ss->idle_since = ss->lp->now;
	}
}

/* Sessions idle past IO_TIMEOUT_S go back to their threads (as a blocking read would
 * have timed out). Called with no batch of events pending. */
static void loop_sweep(struct loop *lp)
{
	struct session *woken[LOOP_EVENTS];
	size_t n = 0;
	time_t now = lp->now;

	pthread_mutex_lock(&lp->lock);
	for (struct session *ss = lp->list; ss && n < LOOP_EVENTS; ss = ss->next)
		if (now - ss->idle_since >= IO_TIMEOUT_S)
			woken[n++] = ss;
	pthread_mutex_unlock(&lp->lock);
	for (size_t i = 0; i < n; i++) {
		handoff(woken[i], woken[i]->state == LS_WAIT_RESP ? R_TIMEOUT : R_END);
		wake_owner(woken[i]);
	}
}

static void *loop_main(void *arg)
{
	struct epoll_event ev[LOOP_EVENTS];
	struct session *woken[LOOP_EVENTS];
	struct timespec last, now;

	struct loop *lp = arg;

	clock_gettime(CLOCK_MONOTONIC, &last);
	/*
	 * SCHED_BATCH (any user may choose it for its own threads): the loop's wakeups do not
	 * preempt the task running on that CPU, so it sleeps a little longer and then serves
	 * more sessions per wakeup. On a busy 2-core machine that was 5-10% more kept-alive
	 * requests per second; on an idle one it changes nothing (an idle CPU takes it at
	 * once). Best effort.
	 */
	{
		struct sched_param sp = {0};

		(void)sched_setscheduler(0, SCHED_BATCH, &sp);
	}
	for (;;) {
		int n = epoll_wait(lp->epfd, ev, LOOP_EVENTS, LOOP_SWEEP_MS);
		size_t nw = 0;

		if (n < 0 && errno != EINTR)
			die_errno("epoll_wait");
		/* one clock read per batch, not two per exchange */
		clock_gettime(CLOCK_MONOTONIC, &now);
		lp->now = now.tv_sec;
		/*
		 * Upstream events first (pass 0), then the clients' (pass 1): a request and
		 * its upstream's close in one batch must not send the request on the dead
		 * connection; with the close seen first, the thread redials.
		 */
		for (int i = 0; i < 2 * n; i++) {
			uintptr_t tag = (uintptr_t)ev[i % n].data.ptr;
			struct session *ss = (struct session *)(tag & ~(uintptr_t)1);

			if (!tag || (tag & 1) != (uintptr_t)(i < n))
				continue; /* unarmed yet, or not this pass */
			if (ss->state == LS_HANDED)
				continue; /* handed back earlier in this batch */
			if (tag & 1) {
				if (!ss->u.ssl)
					continue; /* dropped earlier in this batch */
				ss->u_rd = true;
				ss->u.drained = false;
			} else {
				ss->c_rd = true;
				ss->c.drained = false;
			}
			loop_step(ss);
			if (ss->state == LS_HANDED)
				woken[nw++] = ss;
		}
		for (size_t i = 0; i < nw; i++)
			wake_owner(woken[i]);
		if ((now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000 >=
		    LOOP_SWEEP_MS) {
			last = now;
			loop_sweep(lp);
		}
	}
	return NULL;
}

static void loop_start(void)
{
	pthread_attr_t a;
	pthread_t th;

	if (pthread_attr_init(&a) != 0)
		return;
	(void)pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	(void)pthread_attr_setstacksize(&a, 256 * 1024);
	for (size_t i = 0; i < LOOPS; i++) {
		struct loop *lp = &loops[i];

		pthread_mutex_init(&lp->lock, NULL);
		lp->epfd = epoll_create1(EPOLL_CLOEXEC);
		lp->ok = lp->epfd >= 0 && pthread_create(&th, &a, loop_main, lp) == 0;
	}
	pthread_attr_destroy(&a);
}

/*
 * Register FD with the loop unarmed (no session in its data: the loop skips its events).
 * Only when both sockets are registered does arm() give them the session, so a failed
 * second registration (ENOSPC: the user's epoll watches exhausted) can never leave the
 * loop running a session whose thread has taken it back.
 */
static int watch(struct session *ss, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = NULL };

	return epoll_ctl(ss->lp->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/*
 * EPOLL_CTL_MOD allocates nothing and re-reports a socket that is already readable (the
 * kernel re-polls the file), so no event is lost to the unarmed registration. It fails
 * only when the loop has already handed the session back and removed FD (ENOENT), which
 * needs nothing more.
 */
static void arm(struct session *ss, int fd, uintptr_t side)
{
	struct epoll_event ev = {
	    .events = EPOLLIN | EPOLLRDHUP | EPOLLET,
	    .data.ptr = (void *)((uintptr_t)ss | side),
	};

	(void)epoll_ctl(ss->lp->epfd, EPOLL_CTL_MOD, fd, &ev);
}

/*
 * Park the session in the loop until it hands the session back; what to do then (R_*).
 * R_CLASSIC at once when bytes are already buffered (no event would announce them).
 */
static int park(struct session *ss)
{
	pthread_once(&lp_once, loop_start);
	ss->lp = &loops[ss->t->conn % LOOPS];
	if (!ss->lp->ok)
		return R_NONE;
	if (ss->c.len || SSL_has_pending(ss->c.ssl))
		return R_CLASSIC;
	ss->handed = false; /* (a failure below returns R_CLASSIC, not last round's resume) */
	if (set_nonblock(ss->c.fd, true) < 0 || (ss->u.fd >= 0 && set_nonblock(ss->u.fd, true) < 0))
		goto blocking;
	ss->state = LS_WAIT_REQ;
	ss->resume = R_NONE;
	ss->scan = 0;
	ss->c_rd = ss->u_rd = false; /* registering reports what is already readable */
	ss->c.drained = ss->u.drained = false;
	watch_drain(&ss->c);
	if (ss->u.ssl)
		watch_drain(&ss->u);
	ss->idle_since = mono_s();
	pthread_mutex_lock(&ss->lp->lock);
	ss->prev = NULL;
	ss->next = ss->lp->list;
	if (ss->lp->list)
		ss->lp->list->prev = ss;
	ss->lp->list = ss;
	pthread_mutex_unlock(&ss->lp->lock);
	/* the session is complete before the loop can see it */
	if (ss->u.fd >= 0 && watch(ss, ss->u.fd) < 0) {
		loop_unlist(ss);
		goto blocking;
	}
	if (watch(ss, ss->c.fd) < 0) {
		if (ss->u.fd >= 0)
			(void)epoll_ctl(ss->lp->epfd, EPOLL_CTL_DEL, ss->u.fd, NULL);
		loop_unlist(ss);
		goto blocking;
	}
	/* from here on the session is the loop's: this thread touches none of it */
	if (ss->u.fd >= 0)
		arm(ss, ss->u.fd, 1);
	arm(ss, ss->c.fd, 0);
	pthread_mutex_lock(&ss->mu);
	while (!ss->handed)
		pthread_cond_wait(&ss->cv, &ss->mu);
	pthread_mutex_unlock(&ss->mu);
blocking:
	/* back to blocking I/O with socket timeouts (the loop may have dropped the upstream) */
	(void)set_nonblock(ss->c.fd, false);
	if (ss->u.fd >= 0)
		(void)set_nonblock(ss->u.fd, false);
	return ss->handed ? ss->resume : R_CLASSIC;
}

/* Carry on, with blocking I/O, where the loop handed the session back. True when the
 * connection carries on. */
static bool resume_session(struct session *ss, int r)
{
	char why[WHY_MAX];

	switch (r) {
	case R_END:
		return false;
	case R_SERVE:
		return serve_request(ss, ss->rq, ss->hl);
	case R_UPWRITE:
		/* (ss->pend is ss->uphead: OpenSSL wants the same buffer again) */
		if (send_uphead(ss, why, sizeof(why)) < 0)
			return bad_gateway(ss, why);
		/* fall through */
	case R_RESP:
		if (relay_answer(ss, why, sizeof(why)) < 0)
			return bad_gateway(ss, why);
		return ss->keep;
	case R_CWRITE:
		if (ssl_write_all(ss->c.ssl, ss->pend->v, ss->pend->n) < 0)
			return false;
		ss->served++;
		return ss->keep;
	case R_TIMEOUT:
		drop_uphead(ss);
		snprintf(why, sizeof(why), "upstream %s sent no response", ss->t->host);
		return bad_gateway(ss, why);
	default:
		return serve_next(ss);
	}
}

void intercept_session(int client_fd, const struct intercept_target *t, const struct policy *p)
{
	struct session ss = {.t = t, .p = p, .c = {.fd = client_fd}, .u = {.fd = -1}};
	char why[WHY_MAX];
	pthread_t dialer;
	bool dialing;
	int fl;

	clock_gettime(CLOCK_MONOTONIC, &ss.start);
	for (size_t i = 0; i < p->secrets.n; i++)
		ss.unbound_any |= !secrets_rule_bound(&p->secrets.v[i], t->host);
	/* This session does blocking I/O with socket timeouts, whatever the caller used. */
	fl = fcntl(client_fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		(void)fcntl(client_fd, F_SETFL, fl & ~O_NONBLOCK);
	set_timeouts(client_fd, IO_TIMEOUT_S);
	dialing = pthread_create(&dialer, NULL, early_dial, &ss) == 0;
	ss.c.ssl = tls_accept_client(client_fd, t->host, why, sizeof(why));
	if (dialing)
		pthread_join(dialer, NULL);
	if (!ss.c.ssl) {
		upstream_close(&ss);
		audit_ev(&ss, strstr(why, "SNI") ? AUDIT_DENY : AUDIT_ERROR, 0, why, NULL, NULL);
		return;
	}
	ss.rq = xmalloc(sizeof(*ss.rq));
	ss.rs = xmalloc(sizeof(*ss.rs));
	ss.c.buf = xmalloc(BUF_CAP);
	ss.u.buf = xmalloc(BUF_CAP);
	pthread_mutex_init(&ss.mu, NULL);
	pthread_cond_init(&ss.cv, NULL);
	/* The first request is served here (it may report a failed early dial, and the
	 * client has usually sent it with its handshake); the kept-alive ones in the loop. */
	if (serve_next(&ss))
		while (resume_session(&ss, park(&ss)))
			;
	upstream_close(&ss);
	tls_close(ss.c.ssl);
	wipe(ss.c.buf, ss.c.high); /* only what was ever written: the rest was never touched */
	wipe(ss.u.buf, ss.u.high);
	free(ss.c.buf);
	free(ss.u.buf);
	sbuf_free(&ss.uphead); /* (wipes) */
	sbuf_free(&ss.out);
	pthread_cond_destroy(&ss.cv);
	pthread_mutex_destroy(&ss.mu);
	free(ss.rq);
	free(ss.rs);
}
