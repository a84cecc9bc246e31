/* test_http.c - http.c: request/response heads, limits, framing, chunked, targets */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#include "check.h"

static struct http_request req;
static struct http_response resp;

static int preq(const char *s)
{
	size_t scan = 0;

	return http_parse_request(s, strlen(s), &scan, &req);
}

static bool span_is(struct http_span s, const char *str)
{
	return s.len == strlen(str) && memcmp(s.p, str, s.len) == 0;
}

static void test_request(void)
{
	const char *ok = "GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n"
			 "X-A:  spaced value \t\r\nConnection: keep-alive, X-A\r\n\r\nBODY";
	size_t scan = 0;
	int n;

	n = preq(ok);
	CHECK(n == (int)(strlen(ok) - 4));
	CHECK(span_is(req.method, "GET"));
	CHECK(span_is(req.target, "http://example.com/a?b"));
	CHECK(req.minor == 1 && req.nheaders == 3);
	CHECK(span_is(req.headers[1].value, "spaced value"));
	CHECK(http_header_find(req.headers, req.nheaders, "HOST", NULL) == &req.headers[0]);
	CHECK(http_has_token(req.headers[2].value, "x-a"));
	CHECK(http_request_keepalive(&req));

	/* byte by byte: incomplete until the last byte, linear scan */
	for (size_t i = 1; i < strlen(ok) - 4; i++)
		CHECK(http_parse_request(ok, i, &scan, &req) == 0);
	CHECK(http_parse_request(ok, strlen(ok) - 4, &scan, &req) == n);

	CHECK(preq("GET\r\n\r\n") == -400);
	CHECK(preq("GET  / HTTP/1.1\r\n\r\n") == -400);
	CHECK(preq("GET / HTTP/1.1\nHost: x\n\n") == -400);
	CHECK(preq("GET / HTTP/1.1\r\n folded: x\r\n\r\n") == -400);
	CHECK(preq("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n") == -400);
	CHECK(preq("GET / HTTP/1.1\r\nA b: c\r\n\r\n") == -400);
	CHECK(preq("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n") == -400);
	CHECK(preq("GET / HTTP/2.0\r\n\r\n") == -505);
	CHECK(preq("GET / HTTX/1.1\r\n\r\n") == -400);
	CHECK(preq("\x16\x03\x01") == -400);
	CHECK(preq("GET / HTTP/1.0\r\n\r\n") > 0 && req.minor == 0);
	CHECK(!http_request_keepalive(&req));
	CHECK(preq("\r\nGET / HTTP/1.1\r\n\r\n") > 0);
	CHECK(preq("GET / HTTP/1.1\r\nHost: x\r\n") == 0);

	/* limits */
	{
		char *big = malloc(HTTP_MAX_HEAD + 100);
		size_t l;

		l = (size_t)sprintf(big, "GET / HTTP/1.1\r\nX: ");
		memset(big + l, 'a', HTTP_MAX_HEAD);
		scan = 0;
		CHECK(http_parse_request(big, HTTP_MAX_HEAD, &scan, &req) == -431);
		l = (size_t)sprintf(big, "GET / HTTP/1.1\r\n");
		for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
			l += (size_t)sprintf(big + l, "H%d: v\r\n", i);
		l += (size_t)sprintf(big + l, "\r\n");
		CHECK(preq(big) == -431);
		free(big);
	}
}

static void test_framing(void)
{
	enum http_body k;
	uint64_t len;

	CHECK(preq("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n") > 0);
	CHECK(http_request_body(&req, &k, &len) == 0 && k == HTTP_BODY_LENGTH && len == 12);
	CHECK(preq("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n") > 0);
	CHECK(http_request_body(&req, &k, &len) == 0 && len == 5);
	CHECK(preq("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") > 0);
	CHECK(http_request_body(&req, &k, &len) == -400);
	CHECK(preq("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n") > 0);
	CHECK(http_request_body(&req, &k, &len) == -400);
	CHECK(preq("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n") > 0);
	CHECK(http_request_body(&req, &k, &len) == -400);
	CHECK(preq("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
	CHECK(http_request_body(&req, &k, &len) == 0 && k == HTTP_BODY_CHUNKED);
	CHECK(preq("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n") > 0);
	CHECK(http_request_body(&req, &k, &len) == -400);
	CHECK(preq("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") > 0);
	CHECK(http_request_body(&req, &k, &len) == -400);
	CHECK(preq("GET / HTTP/1.1\r\n\r\n") > 0);
	CHECK(http_request_body(&req, &k, &len) == 0 && k == HTTP_BODY_NONE);

	{
		const char *r = "HTTP/1.1 200 OK\nContent-Length: 3\nConnection: close\n\nabc";
		size_t scan = 0;
		struct http_span get = { "GET", 3 }, head = { "HEAD", 4 }, conn = { "CONNECT", 7 };

		CHECK(http_parse_response(r, strlen(r), &scan, &resp) == (int)strlen(r) - 3);
		CHECK(resp.status == 200 && span_is(resp.reason, "OK"));
		CHECK(!http_response_keepalive(&resp));
		CHECK(http_response_body(&resp, get, &k, &len) == 0 && k == HTTP_BODY_LENGTH &&
		      len == 3);
		CHECK(http_response_body(&resp, head, &k, &len) == 0 && k == HTTP_BODY_NONE);
		CHECK(http_response_body(&resp, conn, &k, &len) == 0 && k == HTTP_BODY_TUNNEL);
		r = "HTTP/1.1 204\r\n\r\n";
		scan = 0;
		CHECK(http_parse_response(r, strlen(r), &scan, &resp) > 0 && resp.status == 204);
		CHECK(http_response_body(&resp, get, &k, &len) == 0 && k == HTTP_BODY_NONE);
		r = "HTTP/1.0 200 OK\r\n\r\n";
		scan = 0;
		CHECK(http_parse_response(r, strlen(r), &scan, &resp) > 0);
		CHECK(http_response_body(&resp, get, &k, &len) == 0 && k == HTTP_BODY_CLOSE);
		r = "HTTP/1.1 2000 OK\r\n\r\n";
		scan = 0;
		CHECK(http_parse_response(r, strlen(r), &scan, &resp) < 0);
	}
}

/* Feed s in pieces of step bytes; return payload, or NULL on error; *rest = bytes after. */
static char *dechunk(const char *s, size_t step, size_t *rest)
{
	static char out[4096];
	struct http_chunked c;
	size_t o = 0, len = strlen(s), i = 0;

	http_chunked_init(&c);
	while (i < len && !c.done) {
		size_t avail = len - i < step ? len - i : step;

		while (avail && !c.done) {
			const char *d;
			size_t dl;
			ssize_t n = http_chunked_feed(&c, s + i, avail, &d, &dl);

			if (n < 0)
				return NULL;
			if (dl)
				memcpy(out + o, d, dl);
			o += dl;
			i += (size_t)n;
			avail -= (size_t)n;
		}
	}
	out[o] = 0;
	*rest = len - i;
	return c.done ? out : NULL;
}

static void test_chunked(void)
{
	const char *body = "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT";
	size_t rest;
	char *r;

	for (size_t step = 1; step < 20; step++) {
		r = dechunk(body, step, &rest);
		CHECK(r && strcmp(r, "hello 0123456789") == 0 && rest == 4);
	}
	CHECK(dechunk("0\r\n\r\n", 100, &rest) && rest == 0);
	CHECK(!dechunk("x\r\n\r\n", 100, &rest));
	CHECK(!dechunk("5\r\nhelloXX0\r\n\r\n", 100, &rest));
	CHECK(!dechunk("1234567890123456\r\n", 100, &rest)); /* size overflow */
	CHECK(!dechunk("5\nhello\r\n0\r\n\r\n", 100, &rest));
}

static void test_targets(void)
{
	char host[256];
	int port;
	struct http_span path;
	struct http_span t;

#define SPAN(s) ((struct http_span){ (s), strlen(s) })
	CHECK(http_parse_authority(SPAN("Example.COM.:8443"), host, sizeof(host), &port) == 0);
	CHECK(strcmp(host, "example.com") == 0 && port == 8443);
	CHECK(http_parse_authority(SPAN("[::1]:443"), host, sizeof(host), &port) == 0);
	CHECK(strcmp(host, "::1") == 0 && port == 443);
	CHECK(http_parse_authority(SPAN("example.com"), host, sizeof(host), &port) < 0);
	CHECK(http_parse_authority(SPAN("example.com:0"), host, sizeof(host), &port) < 0);
	CHECK(http_parse_authority(SPAN("example.com:65536"), host, sizeof(host), &port) < 0);
	CHECK(http_parse_authority(SPAN("exa mple.com:1"), host, sizeof(host), &port) < 0);
	CHECK(http_parse_authority(SPAN("::1:443"), host, sizeof(host), &port) < 0);
	t = SPAN("http://Example.com/p?q=1");
	CHECK(http_parse_absolute_uri(t, "http", 80, host, sizeof(host), &port, &path) == 0);
	CHECK(strcmp(host, "example.com") == 0 && port == 80 && span_is(path, "/p?q=1"));
	t = SPAN("HTTP://example.com:8080");
	CHECK(http_parse_absolute_uri(t, "http", 80, host, sizeof(host), &port, &path) == 0);
	CHECK(port == 8080 && path.len == 0);
	t = SPAN("http://u:p@example.com/");
	CHECK(http_parse_absolute_uri(t, "http", 80, host, sizeof(host), &port, &path) < 0);
	t = SPAN("https://example.com/");
	CHECK(http_parse_absolute_uri(t, "http", 80, host, sizeof(host), &port, &path) < 0);
	t = SPAN("http://example.com/#frag");
	CHECK(http_parse_absolute_uri(t, "http", 80, host, sizeof(host), &port, &path) < 0);
}

static void test_format(void)
{
	char buf[512];
	int n = http_format_error(buf, sizeof(buf), 403, "X-Agentjail-Reason: r\r\n", "r\n");

	CHECK(n > 0 && strncmp(buf, "HTTP/1.1 403 Forbidden\r\nX-Agentjail-Reason: r\r\n", 47) == 0);
	CHECK(strstr(buf, "Content-Length: 2\r\n") && strcmp(buf + n - 6, "\r\n\r\nr\n") == 0);
	CHECK(http_format_error(buf, 10, 403, NULL, "x") < 0);
	CHECK(http_is_hop_header(SPAN("Proxy-Authorization")));
	CHECK(!http_is_hop_header(SPAN("Authorization")));
}

int main(void)
{
	test_request();
	test_framing();
	test_chunked();
	test_targets();
	test_format();
	if (failed)
		fprintf(stderr, "%d failed\n", failed);
	else
		printf("test_http: ok\n");
	return failed ? 1 : 0;
}
