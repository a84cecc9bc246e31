// SPDX-License-Identifier: MIT
/*
 * tlsclient - a small HTTPS load client for the benchmarks in bench/.
 *
 * It measures what wrk cannot: requests through an HTTP CONNECT proxy.  Each connection is
 * TCP (to the server, or to a proxy followed by "CONNECT host:port"), then TLS (SNI = host,
 * certificate verified against -C FILE or the default trust, which honours SSL_CERT_FILE), then
 * HTTP/1.1 GETs with keep-alive.
 *
 *   tlsclient -m keep -n N ...   one connection, N sequential requests: per-request latency
 *   tlsclient -m new  -n N ...   N requests, each on a new connection (TCP + CONNECT + TLS):
 *                                latency of the whole thing, connect to last body byte
 *   tlsclient -m rate -k K -t S  K connections in K threads, each sending requests back to back
 *                                for S seconds: requests per second
 *
 * Target: -h NAME -P PORT [-a ADDR] (ADDR to dial when direct, default 127.0.0.1);
 * proxy: -x HOST:PORT, or -x env for $HTTPS_PROXY (http://HOST:PORT/); -T ADDR names ADDR
 * instead of NAME in the CONNECT request (for proxies that cannot resolve NAME).  -u PATH (default /),
 * -H 'Name: value' adds one request header.  Prints one line of key=value figures.
 * Loopback benchmarking only: every count and duration is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_N 1000000
#define MAX_K 1000
#define MAX_SECONDS 600
#define BUFSZ (64 * 1024)

static const char *opt_mode = "keep", *opt_host, *opt_addr = "127.0.0.1", *opt_proxy;
static const char *opt_path = "/", *opt_header, *opt_ca, *opt_tunnel;
static int opt_port, opt_n = 1000, opt_k = 1;
static double opt_seconds = 5;
static char proxy_host[256];
static int proxy_port;
static SSL_CTX *ctx;

struct conn {
	int fd;
	SSL *ssl;
	char buf[BUFSZ];
	size_t off, len;
};

static void fail(const char *what)
{
	fprintf(stderr, "tlsclient: %s\n", what);
	exit(1);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int tcp_connect(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd, one = 1;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send CONNECT and read the proxy's reply head (byte by byte: nothing after it is ours). */
static int proxy_connect(int fd)
{
	const char *to = opt_tunnel ? opt_tunnel : opt_host;
	char req[512], head[4096];
	size_t n = 0;
	int len;

	len = snprintf(req, sizeof(req), "CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n", to,
		       opt_port, to, opt_port);
	if (len < 0 || (size_t)len >= sizeof(req) || write(fd, req, (size_t)len) != len)
		return -1;
	while (n < sizeof(head) - 1) {
		ssize_t r = read(fd, head + n, 1);

		if (r <= 0)
			return -1;
		n++;
		if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	head[n] = 0;
	if (strncmp(head, "HTTP/1.", 7) != 0 || strncmp(head + 9, "200", 3) != 0) {
		fprintf(stderr, "tlsclient: proxy said: %.*s\n", (int)strcspn(head, "\r\n"), head);
		return -1;
	}
	return 0;
}

static int conn_open(struct conn *c)
{
	c->off = c->len = 0;
	c->ssl = NULL;
	c->fd = opt_proxy ? tcp_connect(proxy_host, proxy_port) : tcp_connect(opt_addr, opt_port);
	if (c->fd < 0)
		return -1;
	if (opt_proxy && proxy_connect(c->fd) < 0)
		goto bad;
	c->ssl = SSL_new(ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || !SSL_set_tlsext_host_name(c->ssl, opt_host) ||
	    !SSL_set1_host(c->ssl, opt_host) || SSL_connect(c->ssl) != 1) {
		ERR_print_errors_fp(stderr);
		goto bad;
	}
	return 0;
bad:
	if (c->ssl)
		SSL_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
	return -1;
}

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	close(c->fd);
	c->ssl = NULL;
}

static int fill(struct conn *c)
{
	int r;

	if (c->off == c->len)
		c->off = c->len = 0;
	r = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
	if (r <= 0)
		return -1;
	c->len += (size_t)r;
	return 0;
}

/* One GET on an open connection; reads the whole response (Content-Length framing). */
static int request(struct conn *c)
{
	char req[1024], *end, *cl;
	long long body;
	int len;

	len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%s\r\n", opt_path,
		       opt_host, opt_port, opt_header ? opt_header : "", opt_header ? "\r\n" : "",
		       "User-Agent: agentjail-bench\r\n");
	if (len < 0 || (size_t)len >= sizeof(req) || SSL_write(c->ssl, req, len) != len)
		return -1;
	for (;;) {
		c->buf[c->len < sizeof(c->buf) ? c->len : sizeof(c->buf) - 1] = 0;
		end = c->len > c->off ? memmem(c->buf + c->off, c->len - c->off, "\r\n\r\n", 4) : NULL;
		if (end)
			break;
		if (c->len == sizeof(c->buf)) {
			if (c->off == 0)
				return -1; /* head larger than the buffer */
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		if (fill(c) < 0)
			return -1;
	}
	*end = 0;
	if (strncmp(c->buf + c->off, "HTTP/1.1 200", 12) != 0) {
		fprintf(stderr, "tlsclient: got: %.*s\n", (int)strcspn(c->buf + c->off, "\r\n"),
			c->buf + c->off);
		return -1;
	}
	cl = strcasestr(c->buf + c->off, "\r\ncontent-length:");
	if (!cl)
		return -1;
	body = strtoll(cl + 17, NULL, 10);
	c->off = (size_t)(end + 4 - c->buf);
	while (body > 0) {
		size_t have = c->len - c->off;

		if (have == 0) {
			if (fill(c) < 0)
				return -1;
			continue;
		}
		if ((long long)have > body)
			have = (size_t)body;
		c->off += have;
		body -= (long long)have;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report_latency(double *v, int n, int errors)
{
	double sum = 0;
	int i;

	if (n == 0)
		fail("no request succeeded");
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	for (i = 0; i < n; i++)
		sum += v[i];
	printf("mode=%s n=%d errors=%d median_ms=%.4f p10_ms=%.4f p90_ms=%.4f mean_ms=%.4f\n",
	       opt_mode, n, errors, v[n / 2] / 1e3, v[n / 10] / 1e3, v[n * 9 / 10] / 1e3,
	       sum / n / 1e3);
}

static void run_keep(void)
{
	struct conn *c = calloc(1, sizeof(*c));
	double *v = calloc((size_t)opt_n, sizeof(double)), t0, stop = now_us() + opt_seconds * 1e6;
	int i, done = 0;

	if (!c || !v)
		fail("out of memory");
	if (conn_open(c) < 0)
		fail("cannot connect");
	for (i = 0; i < opt_n && now_us() < stop; i++) {
		t0 = now_us();
		if (request(c) < 0)
			fail("request failed");
		v[done++] = now_us() - t0;
	}
	conn_close(c);
	report_latency(v, done, 0);
}

static void run_new(void)
{
	struct conn *c = calloc(1, sizeof(*c));
	double *v = calloc((size_t)opt_n, sizeof(double)), t0, stop = now_us() + opt_seconds * 1e6;
	int i, done = 0, errors = 0;

	if (!c || !v)
		fail("out of memory");
	for (i = 0; i < opt_n && now_us() < stop; i++) {
		t0 = now_us();
		if (conn_open(c) < 0) {
			errors++;
			continue;
		}
		if (request(c) < 0)
			errors++;
		else
			v[done++] = now_us() - t0;
		conn_close(c);
	}
	report_latency(v, done, errors);
}

struct worker {
	pthread_t th;
	double stop;
	long ok, errors;
};

static void *rate_worker(void *arg)
{
	struct worker *w = arg;
	struct conn *c = calloc(1, sizeof(*c));

	if (!c || conn_open(c) < 0) {
		w->errors++;
		free(c);
		return NULL;
	}
	while (now_us() < w->stop) {
		if (request(c) < 0) {
			w->errors++;
			break;
		}
		w->ok++;
	}
	conn_close(c);
	free(c);
	return NULL;
}

static void run_rate(void)
{
	struct worker *w = calloc((size_t)opt_k, sizeof(*w));
	double t0 = now_us(), secs;
	long ok = 0, errors = 0;
	int i;

	if (!w)
		fail("out of memory");
	for (i = 0; i < opt_k; i++) {
		w[i].stop = t0 + opt_seconds * 1e6;
		if (pthread_create(&w[i].th, NULL, rate_worker, &w[i]) != 0)
			fail("pthread_create");
	}
	for (i = 0; i < opt_k; i++) {
		pthread_join(w[i].th, NULL);
		ok += w[i].ok;
		errors += w[i].errors;
	}
	secs = (now_us() - t0) / 1e6;
	printf("mode=rate conns=%d requests=%ld errors=%ld seconds=%.2f rps=%.0f\n", opt_k, ok,
	       errors, secs, ok / secs);
}

static void parse_proxy(void)
{
	const char *p = opt_proxy, *colon;
	size_t n;

	if (strcmp(p, "env") == 0) {
		p = getenv("HTTPS_PROXY");
		if (!p)
			p = getenv("https_proxy");
		if (!p)
			fail("-x env: HTTPS_PROXY is not set");
	}
	if (strncmp(p, "http://", 7) == 0)
		p += 7;
	colon = strrchr(p, ':');
	if (!colon || (n = (size_t)(colon - p)) == 0 || n >= sizeof(proxy_host))
		fail("proxy: expected HOST:PORT");
	memcpy(proxy_host, p, n);
	proxy_host[n] = 0;
	if (strcmp(proxy_host, "localhost") == 0)
		strcpy(proxy_host, "127.0.0.1");
	proxy_port = atoi(colon + 1);
}

int main(int argc, char **argv)
{
	int o;

	while ((o = getopt(argc, argv, "m:n:k:t:h:P:a:x:T:u:H:C:")) != -1) {
		switch (o) {
		case 'm': opt_mode = optarg; break;
		case 'n': opt_n = atoi(optarg); break;
		case 'k': opt_k = atoi(optarg); break;
		case 't': opt_seconds = atof(optarg); break;
		case 'h': opt_host = optarg; break;
		case 'P': opt_port = atoi(optarg); break;
		case 'a': opt_addr = optarg; break;
		case 'x': opt_proxy = optarg; break;
		case 'T': opt_tunnel = optarg; break;
		case 'u': opt_path = optarg; break;
		case 'H': opt_header = optarg; break;
		case 'C': opt_ca = optarg; break;
		default: fail("bad option (see the comment at the top of bench/tlsclient.c)");
		}
	}
	if (!opt_host || opt_port <= 0 || opt_port > 65535)
		fail("-h NAME and -P PORT are required");
	if (opt_n < 1 || opt_n > MAX_N || opt_k < 1 || opt_k > MAX_K || !(opt_seconds > 0) ||
	    opt_seconds > MAX_SECONDS)
		fail("-n, -k or -t out of range");
	if (opt_proxy)
		parse_proxy();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		fail("SSL_CTX_new");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* No session resumption: every new connection pays the full handshake, as a fresh
	 * process (curl, git) would. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (opt_ca ? SSL_CTX_load_verify_locations(ctx, opt_ca, NULL) != 1
		   : SSL_CTX_set_default_verify_paths(ctx) != 1)
		fail("cannot load the trust store");
	{
		static const unsigned char alpn[] = "\x08http/1.1";

		SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
	}
	if (strcmp(opt_mode, "keep") == 0)
		run_keep();
	else if (strcmp(opt_mode, "new") == 0)
		run_new();
	else if (strcmp(opt_mode, "rate") == 0)
		run_rate();
	else
		fail("-m keep|new|rate");
	SSL_CTX_free(ctx);
	return 0;
}
