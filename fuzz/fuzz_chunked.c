/*
 * fuzz_chunked.c - the chunked transfer-coding decoder (http.h), fed a request or
 * response body.
 *
 * Checks: no memory error; each call consumes at most what it was given and hands out
 * payload only from inside it; it never reads past the end of the chunked body; the
 * payload and the end position are the same however the bytes are split (a split point
 * set by the first input bytes), so the proxy and the upstream cannot disagree on where
 * a message ends whatever the read sizes.
 */
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "http.h"

struct result {
	int err;        /* malformed */
	bool done;
	size_t end;     /* bytes consumed when done */
	char *payload;
	size_t plen;
};

/* Decode buf[0..len) handed over in pieces of `step` bytes (0: all at once). */
static void decode(const char *buf, size_t len, size_t step, struct result *res)
{
	struct http_chunked c;
	size_t off = 0;

	memset(res, 0, sizeof(*res));
	res->payload = malloc(len + 1);
	if (!res->payload)
		abort();
	http_chunked_init(&c);
	while (off < len && !c.done) {
		size_t avail = step && len - off > step ? step : len - off;
		/* Each piece is its own exact-size copy: ASan catches any read past it. */
		char *piece = fuzz_dup(buf + off, avail);
		size_t pos = 0;

		while (pos < avail && !c.done) {
			const char *d;
			size_t dl;
			ssize_t n = http_chunked_feed(&c, piece + pos, avail - pos, &d, &dl);

			if (n < 0) {
				res->err = 1;
				free(piece);
				return;
			}
			FUZZ_CHECK((size_t)n <= avail - pos);
			FUZZ_CHECK(fuzz_inside(d, dl, piece + pos, (size_t)n));
			FUZZ_CHECK(n > 0 || c.done); /* progress on every call */
			if (dl)
				memcpy(res->payload + res->plen, d, dl);
			res->plen += dl;
			pos += (size_t)n;
		}
		off += pos;
		free(piece);
	}
	res->done = c.done;
	res->end = off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	size_t step = fuzz_byte(&in) % 17 + 1;
	struct result whole, split;

	decode((const char *)in.p, in.n, 0, &whole);
	decode((const char *)in.p, in.n, step, &split);
	FUZZ_CHECK(whole.err == split.err);
	if (!whole.err) {
		FUZZ_CHECK(whole.done == split.done);
		FUZZ_CHECK(whole.plen == split.plen &&
			   !memcmp(whole.payload, split.payload, whole.plen));
		if (whole.done)
			FUZZ_CHECK(whole.end == split.end && whole.end <= in.n);
		FUZZ_CHECK(whole.plen <= in.n);
	}
	free(whole.payload);
	free(split.payload);
	return 0;
}
