/*
 * fuzz_http_request.c - the request head parser (http.h), fed what the jail sends.
 *
 * Input: the raw bytes of a request head (and whatever follows). Checks: no memory error;
 * every span lies inside the buffer; the head length is within the input and the limit;
 * the same answer whether the bytes come at once or in pieces (the *scan resumption);
 * the helpers the proxy then calls (framing, keep-alive, header lookup, target parsing)
 * are safe on every head the parser accepts.
 */
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "http.h"
#include "net.h"

static void check_request(const char *buf, size_t len, int rc, const struct http_request *r)
{
	enum http_body kind;
	uint64_t blen = 0;
	char host[NET_HOST_MAX], norm[NET_HOST_MAX];
	struct http_span path;
	int port = 0;
	size_t from = 0;

	FUZZ_CHECK((size_t)rc == r->head_len && r->head_len <= len);
	FUZZ_CHECK(r->head_len <= HTTP_MAX_HEAD);
	FUZZ_CHECK(r->minor == 0 || r->minor == 1);
	FUZZ_CHECK(r->nheaders <= HTTP_MAX_HEADERS);
	FUZZ_CHECK(r->method.len > 0 && fuzz_inside(r->method.p, r->method.len, buf, rc));
	FUZZ_CHECK(r->target.len > 0 && fuzz_inside(r->target.p, r->target.len, buf, rc));
	for (size_t i = 0; i < r->nheaders; i++) {
		const struct http_header *h = &r->headers[i];

		FUZZ_CHECK(h->name.len > 0 && fuzz_inside(h->name.p, h->name.len, buf, rc));
		FUZZ_CHECK(fuzz_inside(h->value.p, h->value.len, buf, rc));
		/* Strict parsing: no CR, LF or NUL inside a value the proxy may forward. */
		for (size_t k = 0; k < h->value.len; k++)
			FUZZ_CHECK(h->value.p[k] != '\r' && h->value.p[k] != '\n' &&
				   h->value.p[k] != '\0');
		(void)http_is_hop_header(h->name);
		(void)http_has_token(h->value, "close");
	}
	if (http_request_body(r, &kind, &blen) == 0)
		FUZZ_CHECK(kind == HTTP_BODY_NONE || kind == HTTP_BODY_LENGTH ||
			   kind == HTTP_BODY_CHUNKED);
	(void)http_request_keepalive(r);
	while (http_header_find(r->headers, r->nheaders, "host", &from))
		FUZZ_CHECK(from <= r->nheaders);
	/* The proxy's next step: the target, as a CONNECT authority or an absolute URI. */
	if (http_parse_authority(r->target, host, sizeof(host), &port) == 0) {
		FUZZ_CHECK(strlen(host) < sizeof(host));
		FUZZ_CHECK(port > 0 && port < 65536);
		(void)net_normalize_host(host, norm, sizeof(norm));
	}
	if (http_parse_absolute_uri(r->target, "http", 80, host, sizeof(host), &port, &path) ==
	    0) {
		FUZZ_CHECK(strlen(host) < sizeof(host));
		FUZZ_CHECK(port > 0 && port < 65536);
		FUZZ_CHECK(fuzz_inside(path.p, path.len, r->target.p, r->target.len));
		(void)net_normalize_host(host, norm, sizeof(norm));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_request one, inc;
	struct fuzz_in in = {data, size};
	unsigned step = fuzz_byte(&in) % 64 + 1;
	char *buf = fuzz_dup(in.p, in.n);
	size_t len = in.n, scan = 0, got;
	int rc, rc2 = 0;

	if (len > HTTP_MAX_HEAD + 64)
		len = HTTP_MAX_HEAD + 64;
	rc = http_parse_request(buf, len, NULL, &one);
	FUZZ_CHECK(rc >= 0 || rc == -400 || rc == -431 || rc == -505);
	if (rc > 0)
		check_request(buf, len, rc, &one);

	/* The same bytes arriving step at a time, as reads deliver them. */
	for (got = step < len ? step : len;; got = got + step < len ? got + step : len) {
		rc2 = http_parse_request(buf, got, &scan, &inc);
		FUZZ_CHECK(scan <= got);
		if (rc2 != 0 || got == len)
			break;
	}
	if (rc2 > 0) {
		/* Complete with fewer bytes: the one-shot parse must agree on where it ends. */
		check_request(buf, got, rc2, &inc);
		if (rc > 0)
			FUZZ_CHECK(rc == rc2 && inc.nheaders == one.nheaders);
	}
	if (rc > 0 && rc2 < 0) {
		/* Refused early on a prefix: allowed only when the prefix itself is refused. */
		static struct http_request pre;

		FUZZ_CHECK(http_parse_request(buf, got, NULL, &pre) < 0);
	}
	free(buf);
	return 0;
}
