/*
 * proxy.c - the egress proxy process: the jail's only way out.
 *
 * One process in the host's network namespace, forked by the monitor before the jail is
 * built (protocol in proxy.h). It serves the listening socket(s) that the jail's init
 * created inside the jail's network namespace, one thread per client connection:
 *
 *   CONNECT host:port           policy, resolve, check the address, dial it, "200", then a
 *                               splice() tunnel (no copy through user space); hosts with a
 *                               bound secret go to intercept_session() instead.
 *   GET http://host/path ...    plain-HTTP forwarding: policy per request, head rebuilt in
 *                               origin-form without hop-by-hop fields, bodies framed by
 *                               Content-Length or chunked, keep-alive on both sides.
 *
 * Every decision is one audit record (audit.c). The behaviour and the log schema are in
 * docs/proxy.md.
 */
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/landlock.h>
#include <openssl/x509.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "http.h"
#include "intercept.h"
#include "net.h"
#include "seccomp.h"
#include "secrets.h"
#include "secrets_codec.h"
#include "tls.h"
#include "util.h"

/* Limits and timeouts (milliseconds). */
#define PROXY_HEAD_TIMEOUT_MS     15000  /* a request head must arrive within this */
#define PROXY_IDLE_TIMEOUT_MS     60000  /* keep-alive: wait for the next request */
#define PROXY_CONNECT_TIMEOUT_MS  10000  /* TCP connect to the upstream */
#define PROXY_UPSTREAM_TIMEOUT_MS 120000 /* plain HTTP: silence from either side */
#define PROXY_SHUTDOWN_GRACE_MS   300    /* let finishing connections write their record */
#define PROXY_MAX_CONNS           4096   /* simultaneous client connections */
#define PROXY_FDS_PER_CONN        6      /* client, upstream, two pipes */
#define PROXY_MAX_LISTENERS       8
#define PROXY_MAX_ADDRS           8      /* addresses tried per name */
#define PROXY_THREAD_STACK        (1024 * 1024) /* address space; glibc caches 40 MiB of
						  * them: big stacks, few cached, low idle RSS */
#define PROXY_IO_BUF              (16 * 1024)  /* tunnel fallback buffer per direction */
#define PROXY_BODY_BUF            (64 * 1024)  /* plain-HTTP body pieces */
#define PROXY_PIPE_SIZE           (64 * 1024) /* splice pipe per direction; a user's pipe pages
						 * are limited (pipe-user-pages-soft: 64 MiB) */
#define PROXY_PIPE_BULK           (256 * 1024) /* once a direction carried PROXY_BULK_AFTER */
#define PROXY_BULK_AFTER          (1024 * 1024)
#define CTL_MSG_MAX               (64 * 1024)

/* Control messages, proxy -> monitor: one SEQPACKET datagram each, first byte the type. */
#define CTL_SECRET 'S' /* u32 index, then the placeholder (no NUL) */
#define CTL_CA     'C' /* a piece of the CA certificate PEM (concatenate in order) */
#define CTL_DONE   'D' /* start-up finished */
#define CTL_FAIL   'F' /* start-up failed; the proxy printed why */
/* monitor/init -> proxy */
#define CTL_LISTEN 'L' /* SCM_RIGHTS: one listening socket */

static const struct policy *P;
static atomic_int n_active;
static atomic_ullong next_conn_id;
static int max_conns = PROXY_MAX_CONNS;

/* ---- small helpers ---- */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Wait for events on fd until deadline (now_ms() based). 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, double deadline)
{
	for (;;) {
		struct pollfd pfd = { fd, events, 0 };
		double left = deadline - now_ms();
		int r;

		if (left <= 0)
			return 0;
		r = poll(&pfd, 1, (int)(left + 1));
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -1 : r;
	}
}

static void set_nodelay(int fd)
{
	int one = 1;

	/* small writes (request heads, TLS records) go out at once: latency */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/*
 * Give back the stack pages a deep call (getaddrinfo, OpenSSL) touched, before a thread
 * settles into a long tunnel: with a thousand tunnels this is most of the proxy's RSS.
 * Everything below the current frame (the stack grows down) is unused at this point.
 */
static void trim_stack(void)
{
	pthread_attr_t a;
	void *lo;
	size_t sz;
	char here;
	uintptr_t top;

	if (pthread_getattr_np(pthread_self(), &a) != 0)
		return;
	if (pthread_attr_getstack(&a, &lo, &sz) == 0) {
		top = ((uintptr_t)&here - 4096) & ~(uintptr_t)4095;
		if (top > (uintptr_t)lo)
			(void)madvise(lo, top - (uintptr_t)lo, MADV_DONTNEED);
	}
	pthread_attr_destroy(&a);
}

/* ---- a buffered input stream over a socket ---- */

struct stream {
	int fd;
	char *buf;
	size_t len, cap, max;
	uint64_t bytes; /* bytes read from fd */
};

static void stream_init(struct stream *s, int fd, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->max = max;
}

static void stream_free(struct stream *s)
{
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
}

/* Read more into s (growing up to s->max). >0 bytes, 0 EOF, -1 error, -2 timeout, -3 full */
static ssize_t stream_fill(struct stream *s, double deadline)
{
	ssize_t r;

	if (s->len == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 4096;

		if (s->cap >= s->max)
			return -3;
		if (ncap > s->max)
			ncap = s->max;
		s->buf = xrealloc(s->buf, ncap);
		s->cap = ncap;
	}
	for (;;) {
		int w = wait_fd(s->fd, POLLIN, deadline);

		if (w == 0)
			return -2;
		if (w < 0)
			return -1;
		r = recv(s->fd, s->buf + s->len, s->cap - s->len, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return -1;
		s->len += (size_t)r;
		s->bytes += (uint64_t)r;
		return r;
	}
}

/* Bodies move in pieces of up to n bytes (the buffer may be smaller after a small head). */
static void stream_reserve(struct stream *s, size_t n)
{
	if (s->cap >= n)
		return;
	if (s->max < n)
		s->max = n;
	s->buf = xrealloc(s->buf, n);
	s->cap = n;
}

static void stream_consume(struct stream *s, size_t n)
{
	if (n >= s->len) {
		s->len = 0;
		return;
	}
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
}

/* write all of buf to a blocking or non-blocking socket, with a deadline */
static int send_all(int fd, const void *buf, size_t len, double deadline)
{
	const char *b = buf;

	while (len) {
		ssize_t w = send(fd, b, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(fd, POLLOUT, deadline) <= 0)
				return -1;
			continue;
		}
		if (w <= 0)
			return -1;
		b += w;
		len -= (size_t)w;
	}
	return 0;
}

/* ---- one client connection ---- */

struct conn {
	int fd;
	uint64_t id;
	double t0;
	struct stream in; /* from the client */
	/* plain HTTP: the current upstream connection */
	int up_fd;
	char up_host[NET_HOST_MAX];
	int up_port;
	char up_addr[NET_ADDRSTR_MAX];
};

/* What the policy said about one target. */
struct target {
	const char *method;
	char host[NET_HOST_MAX];
	int port, default_port;
	const char *rule;      /* origin of the deciding rule */
	char reason[768];      /* one line: why refused or what failed */
	int status;            /* 403, 400, 502 when refused */
	struct sockaddr_storage addrs[PROXY_MAX_ADDRS];
	socklen_t addrlens[PROXY_MAX_ADDRS];
	int naddrs;
	char addr[NET_ADDRSTR_MAX]; /* the address dialled */
	const char *secret;    /* exfiltration: the secret's name */
};

/* "host" or "host:port" as the --allow flag would spell it */
static void flag_spelling(const struct target *t, const char *host, char *buf, size_t n)
{
	bool v6 = strchr(host, ':') != NULL;

	if (t->port == t->default_port)
		snprintf(buf, n, "%s", host);
	else
		snprintf(buf, n, v6 ? "[%s]:%d" : "%s:%d", host, t->port);
}

static void refuse(struct target *t, int status, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void refuse(struct target *t, int status, const char *rule, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	bool v6 = strchr(t->host, ':') != NULL;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	t->status = status;
	t->rule = rule;
	if (!t->host[0] && strcmp(t->method, "?") == 0)
		snprintf(t->reason, sizeof(t->reason), "agentjail: %s", what);
	else if (!t->host[0])
		snprintf(t->reason, sizeof(t->reason), "agentjail: %s %s", t->method, what);
	else
		snprintf(t->reason, sizeof(t->reason),
			 v6 ? "agentjail: %s [%s]:%d %s" : "agentjail: %s %s:%d %s", t->method,
			 t->host, t->port, what);
}

/*
 * The policy decision on the name (or IP literal) and port, before any lookup.
 * 0 allowed (t->rule set), -1 refused (t->status, t->reason).
 */
static int decide_host(struct target *t)
{
	const struct host_rule *r;
	bool denied, literal = net_is_ip_literal(t->host);
	char flag[NET_HOST_MAX + 16];

	flag_spelling(t, t->host, flag, sizeof(flag));
	if (net_is_legacy_ipv4(t->host)) {
		refuse(t, 403, "built-in",
		       "denied: not a plain dotted-quad IPv4 address; spell the address out");
		return -1;
	}
	r = net_match_host(P, t->host, t->port, t->default_port, &denied);
	if (r && denied) {
		refuse(t, 403, r->origin, "denied by the rule \"%s\" (%s); deny rules win over allow rules",
		       r->pattern, r->origin);
		return -1;
	}
	if (r) {
		t->rule = r->origin;
		return 0;
	}
	/* A secret bound to the host implies the host on the default port. */
	if (!literal && t->port == t->default_port && secrets_bound(P, t->host)) {
		t->rule = "--secret";
		return 0;
	}
	if (literal)
		refuse(t, 403, "default",
		       "denied: IP addresses are allowed only by an explicit IP rule; to allow it run with --allow %s",
		       flag);
	else
		refuse(t, 403, "default", "denied: not in the allowlist; to allow it run with --allow %s",
		       flag);
	return -1;
}

/* Is the address in a --add-host mapping for this name? Then it counts as allowed. */
static bool mapped_addr(const char *host)
{
	for (size_t i = 0; i < P->host_maps.n; i++) {
		char n[NET_HOST_MAX];

		if (net_normalize_host(P->host_maps.v[i].name, n, sizeof(n)) == 0 &&
		    strcmp(n, host) == 0)
			return true;
	}
	return false;
}

/* Check one candidate address; 0 may dial, -1 refused (reason written into t). */
static int check_addr(struct target *t, const struct sockaddr *sa, bool explicit)
{
	const struct host_rule *r;
	const char *special;
	char a[NET_ADDRSTR_MAX], flag[NET_ADDRSTR_MAX + 16];
	bool denied;

	net_addr_str(sa, a, sizeof(a));
	r = net_match_addr(P, sa, t->port, t->default_port, &denied);
	if (r && denied) {
		refuse(t, 403, r->origin, "denied: %s resolves to %s, denied by the rule \"%s\" (%s)",
		       t->host, a, r->pattern, r->origin);
		return -1;
	}
	special = net_addr_special(sa);
	if (!special || explicit || r)
		return 0;
	flag_spelling(t, a, flag, sizeof(flag));
	refuse(t, 403, "built-in",
	       "denied: %s resolves to %s, a %s address, which is refused unless allowed explicitly; to allow it run with --allow %s",
	       t->host, a, special, a);
	return -1;
}

static void add_addr(struct target *t, const struct sockaddr *sa, socklen_t len, int port)
{
	struct sockaddr_storage *ss;

	if (t->naddrs >= PROXY_MAX_ADDRS || len > sizeof(*ss))
		return;
	ss = &t->addrs[t->naddrs];
	memcpy(ss, sa, len);
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	t->addrlens[t->naddrs++] = len;
}

/*
 * Resolve t->host (IP literal, --add-host mapping, or getaddrinfo) and keep the addresses
 * that pass check_addr(), in order. The caller dials exactly these: there is no second
 * lookup, so a name that changes its answer (DNS rebinding) gains nothing.
 */
static int resolve(struct target *t)
{
	struct sockaddr_storage ss;
	struct addrinfo hints, *res = NULL, *ai;
	socklen_t len;
	int rc, refused = 0;

	t->naddrs = 0;
	if (net_parse_ip(t->host, &ss, &len) == 0) {
		/* allowed by an explicit IP rule already (decide_host) */
		if (check_addr(t, (struct sockaddr *)&ss, true) < 0)
			return -1;
		add_addr(t, (struct sockaddr *)&ss, len, t->port);
		return 0;
	}
	if (mapped_addr(t->host)) {
		for (size_t i = 0; i < P->host_maps.n; i++) {
			char n[NET_HOST_MAX];

			if (net_normalize_host(P->host_maps.v[i].name, n, sizeof(n)) < 0 ||
			    strcmp(n, t->host) != 0)
				continue;
			if (net_parse_ip(P->host_maps.v[i].addr, &ss, &len) < 0)
				continue;
			/* --add-host NAME=ADDR is the user's explicit word on ADDR for NAME */
			if (check_addr(t, (struct sockaddr *)&ss, true) == 0)
				add_addr(t, (struct sockaddr *)&ss, len, t->port);
			else
				refused++;
		}
	} else {
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		rc = getaddrinfo(t->host, NULL, &hints, &res);
		if (rc != 0) {
			refuse(t, 502, NULL, "failed: cannot resolve %s: %s", t->host,
			       rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
			return -1;
		}
		for (ai = res; ai; ai = ai->ai_next) {
			if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
				continue;
			if (check_addr(t, ai->ai_addr, false) == 0)
				add_addr(t, ai->ai_addr, ai->ai_addrlen, t->port);
			else
				refused++;
		}
		freeaddrinfo(res);
	}
	if (t->naddrs)
		return 0;
	if (!refused)
		refuse(t, 502, NULL, "failed: %s has no usable address", t->host);
	return -1;
}

/* Connect to the first address that answers. The fd, or -1 with t->reason set. */
static int dial(struct target *t)
{
	char a[NET_ADDRSTR_MAX];
	int err = 0;

	for (int i = 0; i < t->naddrs; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&t->addrs[i];
		int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		socklen_t el = sizeof(err);

		net_addr_str(sa, a, sizeof(a));
		snprintf(t->addr, sizeof(t->addr), "%s", a);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, sa, t->addrlens[i]) == 0)
			goto ok;
		err = errno;
		if (err == EINPROGRESS) {
			int w = wait_fd(fd, POLLOUT, now_ms() + PROXY_CONNECT_TIMEOUT_MS);

			if (w > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && !err)
				goto ok;
			if (w == 0)
				err = ETIMEDOUT;
		}
		close(fd);
		continue;
ok:
		set_nodelay(fd);
		return fd;
	}
	refuse(t, 502, NULL, "failed: cannot connect to %s port %d: %s", t->addr, t->port,
	       strerror(err));
	return -1;
}

static void log_rec(struct conn *c, struct target *t, const char *path, enum audit_decision d,
		    int status, uint64_t up, uint64_t down, double t0)
{
	struct audit_rec r = {
		.conn = c->id,
		.method = t->method,
		.host = t->host[0] ? t->host : NULL,
		.port = t->port,
		.addr = t->addr[0] ? t->addr : NULL,
		.path = path,
		.decision = d,
		.status = status,
		.rule = t->rule,
		.reason = t->reason[0] ? t->reason : NULL,
		.secret = t->secret,
		.bytes_up = up,
		.bytes_down = down,
		.ms = now_ms() - t0,
	};

	audit_log(&r);
}

/* Answer an error with a one-line body; policy refusals carry X-Agentjail-Reason. */
static void send_error(struct conn *c, int status, const char *reason)
{
	char hdr[1024], out[2048], body[900];
	int n;

	hdr[0] = 0;
	if (reason && reason[0])
		snprintf(hdr, sizeof(hdr), "X-Agentjail-Reason: %s\r\n", reason);
	snprintf(body, sizeof(body), "%s\n", reason && reason[0] ? reason : http_reason(status));
	n = http_format_error(out, sizeof(out), status, hdr, body);
	if (n > 0)
		(void)send_all(c->fd, out, (size_t)n, now_ms() + 5000);
}

/* Refuse t: answer the client and write the record. Always returns false (close). */
static bool fail(struct conn *c, struct target *t, const char *path, double t0)
{
	enum audit_decision d = t->status == 403 ? AUDIT_DENY : AUDIT_ERROR;

	if (t->secret)
		d = AUDIT_EXFIL;
	send_error(c, t->status, t->reason);
	log_rec(c, t, path, d, t->status, 0, 0, t0);
	return false;
}

/* A placeholder in bytes bound elsewhere: refuse, naming the secret (never its value). */
static bool exfil_check(struct target *t, const char *buf, size_t len)
{
	const char *name;

	if (!P->secrets.n || !len)
		return true;
	name = secrets_exfil_scan(P, t->host, buf, len);
	if (!name)
		return true;
	t->secret = name;
	refuse(t, 403, "--secret",
	       "denied: the request carries the placeholder of secret %s, which is not bound to this host",
	       name);
	return false;
}

/* ---- the splice tunnel ---- */

struct half {
	int src, dst;
	int pipe[2];      /* -1: copy through buf instead */
	char *buf;
	size_t pending, off, cap;
	bool eof, shut, bulk;
	uint64_t bytes;
};

static int half_init(struct half *h, int src, int dst)
{
	memset(h, 0, sizeof(*h));
	h->src = src;
	h->dst = dst;
	if (pipe2(h->pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
		int sz = fcntl(h->pipe[1], F_SETPIPE_SZ, PROXY_PIPE_SIZE);

		if (sz < 0)
			sz = fcntl(h->pipe[1], F_GETPIPE_SZ);
		h->cap = sz > 0 ? (size_t)sz : 4096;
		return 0;
	}
	/* no pipe (fd or pipe-buffer limits): a small buffer instead */
	h->pipe[0] = h->pipe[1] = -1;
	h->cap = PROXY_IO_BUF;
	h->buf = xmalloc(h->cap);
	return 0;
}

static void half_free(struct half *h)
{
	if (h->pipe[0] >= 0) {
		close(h->pipe[0]);
		close(h->pipe[1]);
	}
	free(h->buf);
}

/* Move what is readable from src into the pipe. -1 on a hard error. */
static int half_in(struct half *h)
{
	ssize_t n;

	if (h->pipe[0] >= 0)
		n = splice(h->src, NULL, h->pipe[1], NULL, h->cap - h->pending,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	else
		n = recv(h->src, h->buf + h->pending, h->cap - h->pending, MSG_DONTWAIT);
	if (n > 0) {
		h->pending += (size_t)n;
		h->bytes += (uint64_t)n;
		if (!h->bulk && h->bytes >= PROXY_BULK_AFTER && h->pipe[0] >= 0) {
			/*
			 * A bulk transfer: a larger pipe moves more per splice (1 GiB through a
			 * tunnel +2-12% in A/B runs of bench/proxy.sh). Only then, so that a thousand small
			 * tunnels stay within the user's pipe-page allowance. Refused: keep it.
			 */
			int sz = fcntl(h->pipe[1], F_SETPIPE_SZ, PROXY_PIPE_BULK);

			if (sz > 0)
				h->cap = (size_t)sz;
			h->bulk = true;
		}
	} else if (n == 0) {
		h->eof = true;
	} else if (errno != EAGAIN && errno != EINTR) {
		return -1;
	}
	return 0;
}

static int half_out(struct half *h)
{
	ssize_t n;

	if (h->pipe[0] >= 0)
		n = splice(h->pipe[0], NULL, h->dst, NULL, h->pending,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	else
		n = send(h->dst, h->buf + h->off, h->pending, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0) {
		h->pending -= (size_t)n;
		h->off = h->pending ? h->off + (size_t)n : 0;
	} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
		return -1;
	}
	if (h->eof && !h->pending && !h->shut) {
		/* pass the half-close on: the other direction may still carry data */
		(void)shutdown(h->dst, SHUT_WR);
		h->shut = true;
	}
	return 0;
}

/*
 * Relay a <-> b until both directions ended or either side failed. No timeout: a tunnel
 * may be idle for long (long polls, websockets); it ends with its peers or the proxy.
 */
static void tunnel(int a, int b, uint64_t *up, uint64_t *down)
{
	struct half h[2];

	set_nonblock(a, true);
	set_nonblock(b, true);
	half_init(&h[0], a, b);
	half_init(&h[1], b, a);
	for (;;) {
		struct pollfd pfd[2] = { { a, 0, 0 }, { b, 0, 0 } };
		bool failed = false;
		int r;

		for (int i = 0; i < 2; i++) {
			if (!h[i].eof && h[i].pending < h[i].cap)
				pfd[i].events |= POLLIN;
			if (h[i].pending)
				pfd[1 - i].events |= POLLOUT;
			if (h[i].eof && !h[i].pending && !h[i].shut)
				half_out(&h[i]);
		}
		if (h[0].shut && h[1].shut)
			break;
		for (int i = 0; i < 2; i++)
			if (!pfd[i].events)
				pfd[i].fd = -1; /* HUP on an fd we wait nothing from: not a wake-up */
		r = poll(pfd, 2, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		for (int i = 0; i < 2 && !failed; i++) {
			short ev = pfd[i].revents;

			if (ev & POLLNVAL)
				failed = true;
			/* readable, or hung up / in error: the read says which */
			if ((ev & (POLLIN | POLLHUP | POLLERR)) && (pfd[i].events & POLLIN)) {
				failed |= half_in(&h[i]) < 0;
				/* the other side is usually writable: pass it on now, saving
				 * a poll round trip per chunk (EAGAIN just leaves it pending) */
				if (!failed && h[i].pending && !(pfd[1 - i].events & POLLOUT))
					failed |= half_out(&h[i]) < 0;
			}
			if ((ev & (POLLOUT | POLLERR | POLLHUP)) && (pfd[i].events & POLLOUT))
				failed |= half_out(&h[1 - i]) < 0;
			if ((ev & POLLERR) && !(pfd[i].events & (POLLIN | POLLOUT)))
				failed = true;
		}
		if (failed)
			break;
	}
	*up = h[0].bytes;
	*down = h[1].bytes;
	half_free(&h[0]);
	half_free(&h[1]);
}

/* ---- CONNECT ---- */

static void serve_connect(struct conn *c, struct http_request **reqp, double t0)
{
	const struct http_request *req = *reqp;
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	struct target t;
	uint64_t up = 0, down = 0;
	int fd;

	memset(&t, 0, sizeof(t));
	t.method = "CONNECT";
	t.default_port = 443;
	if (http_parse_authority(req->target, t.host, sizeof(t.host), &t.port) < 0) {
		t.host[0] = 0;
		refuse(&t, 400, NULL, "refused: the CONNECT target must be host:port");
		fail(c, &t, NULL, t0);
		return;
	}
	if (!exfil_check(&t, c->in.buf, req->head_len) || decide_host(&t) < 0 || resolve(&t) < 0) {
		fail(c, &t, NULL, t0);
		return;
	}
	if (secrets_bound(P, t.host)) {
		struct intercept_target it = {
			.host = t.host,
			.port = t.port,
			.addr = (const struct sockaddr *)&t.addrs[0],
			.addrlen = t.addrlens[0],
			.conn = c->id,
		};

		net_addr_str(it.addr, t.addr, sizeof(t.addr));
		if (send_all(c->fd, ok, sizeof(ok) - 1, now_ms() + 5000) < 0)
			return;
		stream_consume(&c->in, req->head_len);
		/* intercept reads the TLS handshake from the socket itself */
		if (c->in.len) {
			refuse(&t, 400, NULL, "refused: data pipelined after an intercepted CONNECT");
			log_rec(c, &t, NULL, AUDIT_ERROR, 400, 0, 0, t0);
			return;
		}
		stream_free(&c->in);
		snprintf(t.reason, sizeof(t.reason), "intercepted: a secret is bound to this host");
		intercept_session(c->fd, &it, P);
		log_rec(c, &t, NULL, AUDIT_ALLOW, 200, 0, 0, t0);
		return;
	}
	fd = dial(&t);
	if (fd < 0) {
		fail(c, &t, NULL, t0);
		return;
	}
	if (send_all(c->fd, ok, sizeof(ok) - 1, now_ms() + 5000) < 0) {
		close(fd);
		return;
	}
	stream_consume(&c->in, req->head_len);
	/* bytes the client sent right behind the CONNECT head (e.g. a TLS ClientHello) */
	if (c->in.len && send_all(fd, c->in.buf, c->in.len, now_ms() + 5000) < 0) {
		close(fd);
		return;
	}
	up = c->in.len;
	stream_free(&c->in);
	/* a long-lived tunnel keeps nothing of the head: heap and stack given back */
	free(*reqp);
	*reqp = NULL;
	trim_stack();
	{
		uint64_t u = 0, d = 0;

		tunnel(c->fd, fd, &u, &d);
		up += u;
		down += d;
	}
	close(fd);
	log_rec(c, &t, NULL, AUDIT_ALLOW, 200, up, down, t0);
}

/* ---- plain HTTP forwarding ---- */

/* Host header value -> host, port (default 80). 0 or -1. */
static int parse_host_header(struct http_span v, char *host, size_t hostsz, int *port)
{
	char uri[NET_HOST_MAX + 16];
	struct http_span u, path;

	if (v.len == 0 || v.len > NET_HOST_MAX + 8)
		return -1;
	memcpy(uri, "http://", 7);
	memcpy(uri + 7, v.p, v.len);
	u.p = uri;
	u.len = 7 + v.len;
	if (http_parse_absolute_uri(u, "http", 80, host, hostsz, port, &path) < 0 || path.len)
		return -1;
	return 0;
}

/* Is header h named in one of the request's Connection fields? */
static bool named_in_connection(const struct http_header *hs, size_t n, struct http_span name)
{
	const struct http_header *f;
	size_t from = 0;
	char nm[128];

	if (name.len >= sizeof(nm))
		return false;
	memcpy(nm, name.p, name.len);
	nm[name.len] = 0;
	while ((f = http_header_find(hs, n, "connection", &from)))
		if (http_has_token(f->value, nm))
			return true;
	return false;
}

static bool drop_header(const struct http_header *hs, size_t n, const struct http_header *h)
{
	/* Transfer-Encoding stays: bodies are forwarded with their framing unchanged */
	if (http_span_eq(h->name, "transfer-encoding"))
		return false;
	return http_is_hop_header(h->name) || named_in_connection(hs, n, h->name);
}

struct obuf {
	char *b;
	size_t n, cap;
};

static void oput(struct obuf *o, const char *s, size_t len)
{
	if (!len)
		return;
	if (o->n + len > o->cap) {
		size_t ncap = o->cap ? o->cap : 1024;

		while (ncap < o->n + len)
			ncap *= 2;
		o->b = xrealloc(o->b, ncap);
		o->cap = ncap;
	}
	memcpy(o->b + o->n, s, len);
	o->n += len;
}

static void oputs(struct obuf *o, const char *s)
{
	oput(o, s, strlen(s));
}

/* The request head for the upstream: origin-form, no hop-by-hop fields. */
static void build_request(struct obuf *o, const struct http_request *req, struct http_span path,
			  const char *host, int port, bool keep, bool *expect)
{
	char line[64];

	oput(o, req->method.p, req->method.len);
	oputs(o, " ");
	if (path.len && path.p[0] == '/') {
		oput(o, path.p, path.len);
	} else {
		oputs(o, "/");
		oput(o, path.p, path.len); /* "?query" without a path */
	}
	snprintf(line, sizeof(line), " HTTP/1.%d\r\n", req->minor);
	oputs(o, line);
	if (!http_header_find(req->headers, req->nheaders, "host", NULL)) {
		oputs(o, "Host: ");
		oputs(o, host);
		if (port != 80) {
			snprintf(line, sizeof(line), ":%d", port);
			oputs(o, line);
		}
		oputs(o, "\r\n");
	}
	*expect = false;
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		if (drop_header(req->headers, req->nheaders, h))
			continue;
		if (http_span_eq(h->name, "expect")) {
			/* the proxy answers 100-continue itself once the upstream is connected */
			*expect = http_span_eq(h->value, "100-continue");
			continue;
		}
		oput(o, h->name.p, h->name.len);
		oputs(o, ": ");
		oput(o, h->value.p, h->value.len);
		oputs(o, "\r\n");
	}
	oputs(o, keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
}

static void build_response(struct obuf *o, const struct http_response *resp, const char *head,
			   bool keep)
{
	const char *nl = memchr(head, '\n', resp->head_len);

	oput(o, head, (size_t)(nl - head));
	if (nl > head && nl[-1] == '\r')
		o->n--;
	oputs(o, "\r\n");
	for (size_t i = 0; i < resp->nheaders; i++) {
		const struct http_header *h = &resp->headers[i];

		if (drop_header(resp->headers, resp->nheaders, h))
			continue;
		oput(o, h->name.p, h->name.len);
		oputs(o, ": ");
		oput(o, h->value.p, h->value.len);
		oputs(o, "\r\n");
	}
	if (resp->status >= 200)
		oputs(o, keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
	oputs(o, "\r\n");
}

/*
 * The exfiltration guard over a body that passes in pieces: each piece is scanned together
 * with the last bytes of the one before, so that a placeholder split across two reads is
 * still seen before its second part leaves.
 */
#define SCAN_TAIL 1024

struct body_scan {
	struct target *t;
	char *buf; /* tail of the previous piece, then the current piece */
	size_t tail, cap;
};

static bool body_scan(struct body_scan *b, const char *piece, size_t n)
{
	size_t keep;

	if (!b->t || !P->secrets.n || !n)
		return true;
	if (b->tail + n > b->cap) {
		b->cap = b->tail + n;
		b->buf = xrealloc(b->buf, b->cap);
	}
	memcpy(b->buf + b->tail, piece, n);
	if (!exfil_check(b->t, b->buf, b->tail + n))
		return false;
	/* the longest encoded placeholder decides how much must overlap */
	keep = secrets_scan_window() > SCAN_TAIL ? secrets_scan_window() : SCAN_TAIL;
	keep = b->tail + n < keep ? b->tail + n : keep;
	memmove(b->buf, b->buf + b->tail + n - keep, keep);
	b->tail = keep;
	return true;
}

/*
 * Forward a body from s to dst. kind LENGTH: len bytes; CHUNKED: until the last chunk;
 * CLOSE: until EOF. bs->t set: run the exfiltration guard on what passes (requests).
 * 0, or -1 on an I/O error, bad framing, timeout or a placeholder going astray.
 */
static int forward_body_scanned(struct stream *s, int dst, enum http_body kind, uint64_t len,
				struct body_scan *bs, uint64_t *count)
{
	struct http_chunked ch;
	double deadline = now_ms() + PROXY_UPSTREAM_TIMEOUT_MS;

	if (kind == HTTP_BODY_NONE || kind == HTTP_BODY_TUNNEL)
		return 0;
	http_chunked_init(&ch);
	for (;;) {
		size_t n = s->len;

		if (kind == HTTP_BODY_LENGTH && len == 0)
			return 0;
		if (n == 0) {
			ssize_t r;

			stream_reserve(s, PROXY_BODY_BUF);
			r = stream_fill(s, deadline);
			if (r == 0 && kind == HTTP_BODY_CLOSE)
				return 0;
			if (r <= 0)
				return -1;
			deadline = now_ms() + PROXY_UPSTREAM_TIMEOUT_MS;
			continue;
		}
		if (kind == HTTP_BODY_LENGTH && n > len)
			n = (size_t)len;
		if (kind == HTTP_BODY_CHUNKED) {
			const char *d;
			size_t dl;
			ssize_t r = http_chunked_feed(&ch, s->buf, s->len, &d, &dl);

			if (r < 0)
				return -1;
			n = (size_t)r;
		}
		if (!body_scan(bs, s->buf, n))
			return -1;
		if (send_all(dst, s->buf, n, now_ms() + PROXY_UPSTREAM_TIMEOUT_MS) < 0)
			return -1;
		*count += n;
		stream_consume(s, n);
		if (kind == HTTP_BODY_LENGTH)
			len -= n;
		if (kind == HTTP_BODY_CHUNKED && ch.done)
			return 0;
	}
}

static int forward_body(struct stream *s, int dst, enum http_body kind, uint64_t len,
			struct target *scan, uint64_t *count)
{
	struct body_scan bs = { scan, NULL, 0, 0 };
	int rc = forward_body_scanned(s, dst, kind, len, &bs, count);

	free(bs.buf);
	return rc;
}

static void close_upstream(struct conn *c)
{
	if (c->up_fd >= 0)
		close(c->up_fd);
	c->up_fd = -1;
	c->up_host[0] = 0;
}

/*
 * One plain-HTTP exchange. The request head is at the start of c->in. Returns true when
 * the client connection stays open for another request.
 */
static bool serve_http(struct conn *c, const struct http_request *req, double t0)
{
	struct target t;
	struct http_span path;
	struct http_response resp;
	struct stream us;
	struct obuf o = { 0 };
	enum http_body kind, rkind;
	uint64_t blen, rlen, up = 0, down = 0;
	char method[32], pathbuf[1024];
	const struct http_header *hh;
	bool keep, expect, reused, ok = false;
	size_t from = 0, scan = 0;
	int rc;

	memset(&t, 0, sizeof(t));
	stream_init(&us, -1, HTTP_MAX_HEAD);
	snprintf(method, sizeof(method), "%.*s", (int)(req->method.len < 31 ? req->method.len : 31),
		 req->method.p);
	t.method = method;
	t.default_port = 80;
	snprintf(pathbuf, sizeof(pathbuf), "%.*s",
		 (int)(req->target.len < 1000 ? req->target.len : 1000), req->target.p);
	if (http_parse_absolute_uri(req->target, "http", 80, t.host, sizeof(t.host), &t.port,
				    &path) < 0) {
		t.host[0] = 0;
		if (req->target.len && req->target.p[0] == '/')
			refuse(&t, 400, NULL,
			       "refused: this is agentjail's egress proxy; send requests through it as a proxy (http_proxy/https_proxy)");
		else if (req->target.len > 8 && memcmp(req->target.p, "https://", 8) == 0)
			refuse(&t, 400, NULL, "refused: use CONNECT for https:// URLs");
		else
			refuse(&t, 400, NULL, "refused: the request target must be an absolute http:// URI");
		return fail(c, &t, pathbuf, t0);
	}
	snprintf(pathbuf, sizeof(pathbuf), "%.*s", (int)(path.len < 1000 ? path.len : 1000),
		 path.p);
	if (!path.len)
		snprintf(pathbuf, sizeof(pathbuf), "/");
	/* Host must agree with the URI (one Host field) */
	hh = http_header_find(req->headers, req->nheaders, "host", &from);
	if (hh) {
		char hhost[NET_HOST_MAX];
		int hport;

		if (http_header_find(req->headers, req->nheaders, "host", &from) ||
		    parse_host_header(hh->value, hhost, sizeof(hhost), &hport) < 0 ||
		    strcmp(hhost, t.host) != 0 || hport != t.port) {
			refuse(&t, 400, NULL, "refused: the Host header does not agree with the URI");
			return fail(c, &t, pathbuf, t0);
		}
	} else if (req->minor >= 1) {
		refuse(&t, 400, NULL, "refused: HTTP/1.1 request without Host");
		return fail(c, &t, pathbuf, t0);
	}
	if (http_request_body(req, &kind, &blen) < 0) {
		refuse(&t, 400, NULL, "refused: ambiguous or unsupported request body framing");
		return fail(c, &t, pathbuf, t0);
	}
	if (!exfil_check(&t, c->in.buf, req->head_len) || decide_host(&t) < 0)
		return fail(c, &t, pathbuf, t0);
	keep = http_request_keepalive(req);
	build_request(&o, req, path, t.host, t.port, keep, &expect);
	stream_consume(&c->in, req->head_len);
	/* reuse the upstream connection when the client keeps talking to the same origin */
	if (c->up_fd >= 0 && (strcmp(c->up_host, t.host) != 0 || c->up_port != t.port))
		close_upstream(c);
	reused = c->up_fd >= 0;
again:
	if (c->up_fd < 0) {
		if (resolve(&t) < 0)
			goto refused;
		c->up_fd = dial(&t);
		if (c->up_fd < 0)
			goto refused;
		snprintf(c->up_host, sizeof(c->up_host), "%s", t.host);
		c->up_port = t.port;
		snprintf(c->up_addr, sizeof(c->up_addr), "%s", t.addr);
	}
	snprintf(t.addr, sizeof(t.addr), "%s", c->up_addr);
	stream_init(&us, c->up_fd, HTTP_MAX_HEAD);
	if (send_all(c->up_fd, o.b, o.n, now_ms() + PROXY_UPSTREAM_TIMEOUT_MS) < 0) {
		if (reused && kind == HTTP_BODY_NONE) {
			/* the upstream closed the idle connection meanwhile: once more, afresh */
			close_upstream(c);
			reused = false;
			goto again;
		}
		refuse(&t, 502, NULL, "failed: the upstream closed the connection");
		goto bad_gateway;
	}
	up += o.n;
	if (expect && kind != HTTP_BODY_NONE) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		if (send_all(c->fd, cont, sizeof(cont) - 1, now_ms() + 5000) < 0)
			goto out;
	}
	if (forward_body(&c->in, c->up_fd, kind, blen, &t, &up) < 0) {
		if (t.secret) {
			send_error(c, 403, t.reason);
			log_rec(c, &t, pathbuf, AUDIT_EXFIL, 403, up, down, t0);
			goto out;
		}
		refuse(&t, 400, NULL, "failed: the request body ended early or is malformed");
		goto bad_gateway;
	}
	/* the response head, after any interim 1xx responses */
	for (;;) {
		scan = 0;
		while ((rc = http_parse_response(us.buf, us.len, &scan, &resp)) == 0) {
			ssize_t r = stream_fill(&us, now_ms() + PROXY_UPSTREAM_TIMEOUT_MS);

			if ((r == 0 || r == -1) && reused && kind == HTTP_BODY_NONE && !us.len &&
			    !down) {
				/* closed before answering a request on a kept-alive connection */
				close_upstream(c);
				stream_free(&us);
				reused = false;
				goto again;
			}
			if (r <= 0) {
				refuse(&t, 502, NULL,
				       r == -2 ? "failed: the upstream did not answer in time"
					       : "failed: the upstream closed the connection without an answer");
				goto bad_gateway;
			}
		}
		if (rc < 0) {
			refuse(&t, 502, NULL, "failed: the upstream sent a malformed response head");
			goto bad_gateway;
		}
		if (resp.status >= 200 || resp.status == 101)
			break;
		if (send_all(c->fd, us.buf, resp.head_len, now_ms() + PROXY_UPSTREAM_TIMEOUT_MS) < 0)
			goto out;
		down += resp.head_len;
		stream_consume(&us, resp.head_len);
	}
	if (resp.status == 101 || http_response_body(&resp, req->method, &rkind, &rlen) < 0) {
		refuse(&t, 502, NULL, "failed: the upstream response cannot be framed");
		goto bad_gateway;
	}
	keep = keep && http_response_keepalive(&resp) && rkind != HTTP_BODY_CLOSE;
	o.n = 0;
	build_response(&o, &resp, us.buf, keep);
	stream_consume(&us, resp.head_len);
	if (send_all(c->fd, o.b, o.n, now_ms() + PROXY_UPSTREAM_TIMEOUT_MS) < 0)
		goto out;
	down += o.n;
	if (forward_body(&us, c->fd, rkind, rlen, NULL, &down) < 0)
		goto out;
	t.status = resp.status;
	log_rec(c, &t, pathbuf, AUDIT_ALLOW, resp.status, up, down, t0);
	/* bytes behind the response (a misbehaving upstream): do not reuse the connection */
	ok = keep && us.len == 0;
	if (!ok)
		close_upstream(c);
	stream_free(&us);
	free(o.b);
	return ok;

refused:
	/* policy refusal of the address, or no connection: answered like the checks above */
	fail(c, &t, pathbuf, t0);
	goto out;
bad_gateway:
	send_error(c, t.status, t.reason);
	log_rec(c, &t, pathbuf, AUDIT_ERROR, t.status, up, down, t0);
out:
	close_upstream(c);
	stream_free(&us);
	free(o.b);
	return false;
}

/* ---- the connection thread ---- */

static void bad_request(struct conn *c, int status, double t0)
{
	struct target t;

	memset(&t, 0, sizeof(t));
	t.method = "?";
	switch (status) {
	case 431:
		refuse(&t, 431, NULL, "refused: request head over %d bytes or %d fields",
		       HTTP_MAX_HEAD, HTTP_MAX_HEADERS);
		break;
	case 408:
		refuse(&t, 408, NULL, "refused: the request head did not arrive within %d s",
		       PROXY_HEAD_TIMEOUT_MS / 1000);
		break;
	case 505:
		refuse(&t, 505, NULL, "refused: only HTTP/1.0 and HTTP/1.1 are spoken here");
		break;
	default:
		refuse(&t, 400, NULL, "refused: malformed request");
		break;
	}
	fail(c, &t, NULL, t0);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct http_request *req = xmalloc(sizeof(*req));
	double t0 = c->t0;
	bool first = true;

	for (;;) {
		size_t scan = 0;
		double deadline = now_ms() + (first ? PROXY_HEAD_TIMEOUT_MS : PROXY_IDLE_TIMEOUT_MS);
		int rc;

		while ((rc = http_parse_request(c->in.buf, c->in.len, &scan, req)) == 0) {
			ssize_t r = stream_fill(&c->in, deadline);

			if (r == 0 || r == -1)
				goto done; /* client went away */
			if (r == -2) {
				if (c->in.len || first)
					bad_request(c, 408, t0);
				goto done;
			}
			if (r == -3) {
				rc = -431;
				break;
			}
			if (c->in.len == (size_t)r)
				deadline = now_ms() + PROXY_HEAD_TIMEOUT_MS; /* head began */
		}
		if (rc < 0) {
			bad_request(c, -rc, t0);
			goto done;
		}
		first = false;
		if (http_span_eq(req->method, "CONNECT")) {
			close_upstream(c);
			serve_connect(c, &req, t0);
			goto done;
		}
		if (!serve_http(c, req, t0))
			goto done;
		t0 = now_ms();
	}
done:
	free(req);
	trim_stack(); /* the stack goes back to glibc's cache: keep it small */
	close_upstream(c);
	stream_free(&c->in);
	close(c->fd);
	free(c);
	atomic_fetch_sub(&n_active, 1);
	return NULL;
}

static void spawn_conn(int fd)
{
	static pthread_attr_t attr;
	static bool attr_ready;
	struct conn *c;
	pthread_t th;

	if (atomic_load(&n_active) >= max_conns) {
		close(fd); /* over the limit: refuse fast rather than queue */
		return;
	}
	if (!attr_ready) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, PROXY_THREAD_STACK);
		attr_ready = true;
	}
	set_nodelay(fd);
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->up_fd = -1;
	c->id = atomic_fetch_add(&next_conn_id, 1) + 1;
	c->t0 = now_ms();
	stream_init(&c->in, fd, HTTP_MAX_HEAD);
	atomic_fetch_add(&n_active, 1);
	if (pthread_create(&th, &attr, conn_main, c) != 0) {
		atomic_fetch_sub(&n_active, 1);
		close(fd);
		free(c);
	}
}

/* ---- self-confinement ---- */

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#define LL_ACCESS_NET_BIND_TCP (1ULL << 0)

/*
 * What the proxy may still read once it serves: name resolution (/etc/hosts, resolv.conf,
 * nsswitch.conf, gai.conf, and the NSS modules it loads from the library dirs), and the
 * system trust store, which OpenSSL reads lazily (hashed names in /etc/ssl/certs) while
 * it verifies an upstream. Nothing under $HOME: a memory-safety bug reached from the jail
 * must not be able to read ~/.ssh. resolv.conf is often a link into /run.
 */
static const char *const read_paths[] = {
	"/etc", "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/run/systemd/resolve",
	"/run/resolvconf", "/var/run/nscd", NULL,
};

static const char *const read_links[] = { "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf",
					  NULL };

struct ll_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

/* One read rule: beneath a directory, or a single file (file rights only, or EINVAL). */
static void allow_read(int ruleset, const char *path)
{
	struct ll_path_beneath pb = { .allowed_access = LANDLOCK_ACCESS_FS_READ_FILE };
	struct stat st;

	pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
	if (pb.parent_fd < 0)
		return; /* not on this system */
	if (!fstat(pb.parent_fd, &st) && S_ISDIR(st.st_mode))
		pb.allowed_access |= LANDLOCK_ACCESS_FS_READ_DIR;
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
		msg("proxy: landlock rule for %s: %s", path, strerror(errno));
	close(pb.parent_fd);
}

/* allow_read() opens PATH following its links, so the rule lands on what it resolves to. */
static void allow_read_opt(int ruleset, const char *path)
{
	if (path && *path)
		allow_read(ruleset, path);
}

/*
 * Landlock: from here on no filesystem writes, no execution, no bind(2), and reads only
 * beneath read_paths. Handled rights with no rule are denied. Best effort: kernels
 * without Landlock (before 5.13, or disabled) keep only the seccomp floor below, which
 * blocks exec but not reads or writes of the user's files (docs/security.md says so).
 * Descriptors already open (the audit log, the upstream CA loaded at start) still work.
 */
static void confine_landlock(void)
{
	struct {
		uint64_t fs, net;
	} attr;
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	int fd;

	if (abi < 1)
		return;
	attr.fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
		  LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
		  LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
		  LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
		  LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
		  LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		  LANDLOCK_ACCESS_FS_MAKE_SYM;
	if (abi >= 2)
		attr.fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr.fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	attr.net = LL_ACCESS_NET_BIND_TCP;
	/* the net field exists from ABI 4 on: older kernels get the short struct */
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr,
			  abi >= 4 ? sizeof(attr) : sizeof(attr.fs), 0);
	if (fd < 0)
		return;
	for (size_t i = 0; read_paths[i]; i++)
		allow_read(fd, read_paths[i]);
	/*
	 * Landlock checks the object a link resolves to: resolv.conf often links into /run
	 * (NetworkManager, netconfig), and the trust store may live elsewhere (NixOS,
	 * SSL_CERT_FILE/SSL_CERT_DIR); allow exactly where they resolve now.
	 */
	for (size_t i = 0; read_links[i]; i++)
		allow_read(fd, read_links[i]);
	/* The trust store only when the proxy speaks TLS: asking OpenSSL where it is would
	 * load OpenSSL into a proxy that only tunnels (~1 ms of its start). */
	if (tls_enabled()) {
		allow_read_opt(fd, getenv("SSL_CERT_FILE"));
		allow_read_opt(fd, getenv("SSL_CERT_DIR"));
		allow_read_opt(fd, X509_get_default_cert_file());
		allow_read_opt(fd, X509_get_default_cert_dir());
	}
	if (syscall(SYS_landlock_restrict_self, fd, 0) < 0)
		msg("proxy: landlock: %s (continuing without it)", strerror(errno));
	close(fd);
}

/* Called once, single-threaded, after the start-up report and before serving. */
void proxy_confine(void)
{
	/* Run by root, the proxy would hold every capability: drop them all (bounding,
	 * ambient, and the three sets); an ordinary user's proxy has none to drop. */
	if (caps_drop_held() < 0)
		die_errno("proxy: cannot drop capabilities");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die_errno("proxy: no_new_privs");
	confine_landlock();
	/* The seccomp floor of the process that holds the secrets (gen/seccomp_filter.c):
	 * nothing that would run another program, reach into another process, change
	 * namespaces or mounts, or load kernel code. */
	if (seccomp_apply_proxy() < 0)
		die("proxy: cannot load its seccomp filter");
}

/* ---- the proxy process ---- */

static int ctl_send(int ctl, char type, const void *a, size_t alen, const void *b, size_t blen)
{
	char buf[CTL_MSG_MAX];
	struct iovec iov = { buf, 1 + alen + blen };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (1 + alen + blen > sizeof(buf))
		return -1;
	buf[0] = type;
	if (alen)
		memcpy(buf + 1, a, alen);
	if (blen)
		memcpy(buf + 1 + alen, b, blen);
	while (sendmsg(ctl, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* Receive one listener from the control socket. The fd, -1 on EOF/error, -2 other message. */
static int ctl_recv_fd(int ctl)
{
	char c = 0;
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { &c, 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)
	};
	struct cmsghdr *cm;
	int fd = -1;
	ssize_t n;

	do
		n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int f;

			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (fd < 0 && c == CTL_LISTEN)
				fd = f;
			else
				close(f);
		}
	}
	return fd >= 0 ? fd : -2;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		long n = ((long)rl.rlim_cur - 64) / PROXY_FDS_PER_CONN;

		if (n < max_conns)
			max_conns = n > 16 ? (int)n : 16;
	}
}

static void reset_signals(sigset_t *term)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			(void)sigaction(s, &sa, NULL);
	/* The terminal's ^C, ^\ and hang-up are for the command (the monitor forwards
	 * them); the proxy ends when proxy_stop() asks or the monitor dies. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTSTP, &sa, NULL);
	sigaction(SIGTTOU, &sa, NULL);
	sigaction(SIGTTIN, &sa, NULL);
	sigemptyset(term);
	sigaddset(term, SIGTERM);
	sigprocmask(SIG_SETMASK, term, NULL);
}

static bool listening; /* a listener arrived: there is something to summarise */

static __attribute__((noreturn)) void proxy_exit(int code)
{
	if (!P->quiet && listening)
		audit_summary();
	secrets_wipe();
	_exit(code);
}

static __attribute__((noreturn)) void serve(int ctl, int sfd)
{
	struct pollfd pfd[2 + PROXY_MAX_LISTENERS];
	bool busy = false;
	int nl = 0;

	pfd[0] = (struct pollfd){ sfd, POLLIN, 0 };
	pfd[1] = (struct pollfd){ ctl, POLLIN, 0 };
	for (;;) {
		int r = poll(pfd, (nfds_t)(2 + nl), busy ? 1000 : -1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die_errno("proxy: poll");
		if (busy && atomic_load(&n_active) == 0) {
			/* idle again: hand freed heap back to the kernel */
			malloc_trim(0);
			busy = false;
		}
		if (pfd[0].revents)
			break; /* SIGTERM: proxy_stop() */
		if (pfd[1].revents) {
			int fd = ctl_recv_fd(ctl);

			if (fd == -1) {
				/* the monitor is gone (PDEATHSIG follows) or closed its end */
				if (nl == 0)
					proxy_exit(0);
				pfd[1].fd = -1;
			} else if (fd >= 0 && nl < PROXY_MAX_LISTENERS) {
				listening = true;
				set_nonblock(fd, true);
				pfd[2 + nl++] = (struct pollfd){ fd, POLLIN, 0 };
			} else if (fd >= 0) {
				close(fd);
			}
		}
		for (int i = 0; i < nl; i++) {
			if (!pfd[2 + i].revents)
				continue;
			for (int k = 0; k < 64; k++) {
				int fd = accept4(pfd[2 + i].fd, NULL, NULL, SOCK_CLOEXEC);

				if (fd >= 0) {
					spawn_conn(fd);
					busy = true;
					continue;
				}
				if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
				    errno == ENOMEM)
					poll(NULL, 0, 50); /* out of fds: let connections finish */
				break;
			}
		}
	}
	/* let connections that are ending write their audit records */
	for (int i = 0; i < PROXY_SHUTDOWN_GRACE_MS / 10 && atomic_load(&n_active) > 0; i++)
		poll(NULL, 0, 10);
	proxy_exit(0);
}

/* Send the placeholders and the CA to the monitor. 0 or -1. */
static int send_startup(int ctl, struct policy *p)
{
	const char *pem;
	size_t pem_len = 0;

	for (size_t i = 0; i < p->secrets.n; i++) {
		uint32_t idx = (uint32_t)i;
		const char *ph = p->secrets.v[i].placeholder;

		if (!ph || ctl_send(ctl, CTL_SECRET, &idx, sizeof(idx), ph, strlen(ph)) < 0)
			return -1;
	}
	pem = tls_ca_pem(&pem_len);
	for (size_t off = 0; pem && off < pem_len;) {
		size_t n = pem_len - off > CTL_MSG_MAX / 2 ? CTL_MSG_MAX / 2 : pem_len - off;

		if (ctl_send(ctl, CTL_CA, pem + off, n, NULL, 0) < 0)
			return -1;
		off += n;
	}
	return ctl_send(ctl, CTL_DONE, NULL, 0, NULL, 0);
}

static __attribute__((noreturn)) void proxy_child(struct policy *p, int ctl, pid_t parent)
{
	sigset_t term;
	int sfd, devnull;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(EXIT_JAIL_FAILED); /* the monitor died before the line above */
	reset_signals(&term);
	/* no inherited descriptor but stdio and ctl: nothing of the monitor's pipes */
	if (ctl > 3)
		(void)close_range(3, (unsigned)ctl - 1, 0);
	(void)close_range((unsigned)ctl + 1, ~0U, 0);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, 0);
		close(devnull);
	}
	/* secrets live here: no core dumps, no ptrace by same-uid processes */
	(void)prctl(PR_SET_DUMPABLE, 0);
	(void)prctl(PR_SET_NAME, "agentjail-proxy");
	P = p;
	if (audit_open(p->log_path) < 0 || secrets_load(p) < 0 || tls_init(p) < 0) {
		ctl_send(ctl, CTL_FAIL, NULL, 0, NULL, 0);
		_exit(EXIT_JAIL_FAILED);
	}
	if (send_startup(ctl, p) < 0) {
		msg("proxy: cannot reach the monitor: %s", strerror(errno));
		_exit(EXIT_JAIL_FAILED);
	}
	sfd = signalfd(-1, &term, SFD_CLOEXEC);
	if (sfd < 0)
		die_errno("proxy: signalfd");
	raise_nofile();
	/* many threads, little heap each: few arenas keep the RSS down */
	mallopt(M_ARENA_MAX, 2);
	if (chdir("/") < 0)
		die_errno("proxy: chdir /");
	proxy_confine();
	serve(ctl, sfd);
}

/* ---- the monitor's side ---- */

static int recv_startup(struct policy *p, struct proxy *px)
{
	char *buf = xmalloc(CTL_MSG_MAX);
	struct obuf pem = { 0 };
	int ret = -1;

	for (;;) {
		ssize_t n = recv(px->ctl, buf, CTL_MSG_MAX, MSG_TRUNC);
		uint32_t idx;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || n > CTL_MSG_MAX) {
			if (n > CTL_MSG_MAX || n < 0)
				msg("proxy: bad start-up message");
			break; /* EOF: the proxy died; it said why */
		}
		if (buf[0] == CTL_DONE) {
			ret = 0;
			break;
		}
		if (buf[0] == CTL_FAIL)
			break;
		if (buf[0] == CTL_CA) {
			oput(&pem, buf + 1, (size_t)n - 1);
			continue;
		}
		if (buf[0] != CTL_SECRET || n < 5) {
			msg("proxy: bad start-up message");
			break;
		}
		memcpy(&idx, buf + 1, sizeof(idx));
		if (idx >= p->secrets.n) {
			msg("proxy: bad start-up message");
			break;
		}
		free(p->secrets.v[idx].placeholder);
		p->secrets.v[idx].placeholder = xstrndup(buf + 5, (size_t)n - 5);
	}
	if (ret == 0 && pem.n) {
		oput(&pem, "", 1);
		px->ca_pem = pem.b;
		px->ca_pem_len = pem.n - 1;
	} else {
		free(pem.b);
	}
	free(buf);
	return ret;
}

int proxy_fork(struct policy *p, struct proxy *px)
{
	int sv[2];
	pid_t parent = getpid(), pid;

	px->pid = -1;
	px->ctl = -1;
	px->ca_pem = NULL;
	px->ca_pem_len = 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		msg("proxy: socketpair: %s", strerror(errno));
		return -1;
	}
	fflush(NULL); /* nothing buffered twice */
	pid = fork();
	if (pid < 0) {
		msg("proxy: fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		proxy_child(p, sv[1], parent);
	}
	close(sv[1]);
	px->pid = pid;
	px->ctl = sv[0];
	return 0;
}

int proxy_ready(struct policy *p, struct proxy *px)
{
	if (recv_startup(p, px) < 0) {
		proxy_stop(px);
		msg("the network proxy could not start");
		return -1;
	}
	return 0;
}

int proxy_start(struct policy *p, struct proxy *px)
{
	return proxy_fork(p, px) || proxy_ready(p, px) ? -1 : 0;
}

int proxy_send_listener(int ctl, int listen_fd)
{
	char c = CTL_LISTEN;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &c, 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	memset(cbuf, 0, sizeof(cbuf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &listen_fd, sizeof(int));
	while (sendmsg(ctl, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

int proxy_stop(struct proxy *px)
{
	int st = 0;

	if (px->pid <= 0)
		return 0;
	kill(px->pid, SIGTERM);
	while (waitpid(px->pid, &st, 0) < 0) {
		if (errno != EINTR) {
			st = 0;
			break;
		}
	}
	px->pid = -1;
	if (px->ctl >= 0)
		close(px->ctl);
	px->ctl = -1;
	return st;
}
