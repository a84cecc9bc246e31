/*
 * fuzz_http_response.c - the response head parser (http.h), fed what an upstream sends.
 *
 * An upstream is outside the trust boundary too: a hostile server answers an intercepted
 * request. Checks: no memory error, spans inside the buffer, status in range, the same
 * answer whole or in pieces, and body framing for each request method.
 */
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "http.h"

static const char *const methods[] = {"GET", "HEAD", "POST", "CONNECT", "PUT"};

static void check_response(const char *buf, size_t len, int rc, const struct http_response *r)
{
	enum http_body kind;
	uint64_t blen = 0;

	FUZZ_CHECK((size_t)rc == r->head_len && r->head_len <= len);
	FUZZ_CHECK(r->head_len <= HTTP_MAX_HEAD);
	FUZZ_CHECK(r->status >= 100 && r->status <= 999);
	FUZZ_CHECK(r->minor == 0 || r->minor == 1);
	FUZZ_CHECK(r->nheaders <= HTTP_MAX_HEADERS);
	FUZZ_CHECK(fuzz_inside(r->reason.p, r->reason.len, buf, rc));
	for (size_t i = 0; i < r->nheaders; i++) {
		const struct http_header *h = &r->headers[i];

		FUZZ_CHECK(h->name.len > 0 && fuzz_inside(h->name.p, h->name.len, buf, rc));
		FUZZ_CHECK(fuzz_inside(h->value.p, h->value.len, buf, rc));
		for (size_t k = 0; k < h->value.len; k++)
			FUZZ_CHECK(h->value.p[k] != '\r' && h->value.p[k] != '\n');
		(void)http_is_hop_header(h->name);
	}
	for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
		struct http_span meth = {methods[m], strlen(methods[m])};

		if (http_response_body(r, meth, &kind, &blen) == 0)
			FUZZ_CHECK(kind >= HTTP_BODY_NONE && kind <= HTTP_BODY_TUNNEL);
	}
	(void)http_response_keepalive(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_response one, inc;
	struct fuzz_in in = {data, size};
	unsigned step = fuzz_byte(&in) % 64 + 1;
	char *buf = fuzz_dup(in.p, in.n);
	size_t len = in.n, scan = 0, got;
	int rc, rc2 = 0;

	if (len > HTTP_MAX_HEAD + 64)
		len = HTTP_MAX_HEAD + 64;
	rc = http_parse_response(buf, len, NULL, &one);
	FUZZ_CHECK(rc >= -1);
	if (rc > 0)
		check_response(buf, len, rc, &one);
	for (got = step < len ? step : len;; got = got + step < len ? got + step : len) {
		rc2 = http_parse_response(buf, got, &scan, &inc);
		FUZZ_CHECK(scan <= got);
		if (rc2 != 0 || got == len)
			break;
	}
	if (rc2 > 0) {
		check_response(buf, got, rc2, &inc);
		if (rc > 0)
			FUZZ_CHECK(rc == rc2);
	}
	free(buf);
	return 0;
}
