/*
 * harness.h - small helpers shared by the libFuzzer harnesses in fuzz/.
 *
 * Each harness defines LLVMFuzzerTestOneInput and checks, besides the sanitizers, the
 * properties its parser promises (spans inside the buffer, the same answer whether bytes
 * arrive at once or in pieces, round trips). A broken property aborts, which libFuzzer
 * reports as a crash with the input saved.
 */
#ifndef AGENTJAIL_FUZZ_HARNESS_H
#define AGENTJAIL_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__,        \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/*
 * Long runs past a bug already reported: AJ_FUZZ_KNOWN=ignore makes the harnesses skip
 * the properties a known, reported bug breaks (each such place names the bug), so that
 * the run explores further instead of stopping on it. Never set in the test suite.
 */
static inline int fuzz_ignore_known(void)
{
	static int v = -1;

	if (v < 0) {
		const char *e = getenv("AJ_FUZZ_KNOWN");

		v = e && !strcmp(e, "ignore");
	}
	return v;
}

/* A reader over the fuzzer's bytes: control bytes first, the rest is the payload. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline unsigned fuzz_byte(struct fuzz_in *in)
{
	unsigned b;

	if (!in->n)
		return 0;
	b = in->p[0];
	in->p++;
	in->n--;
	return b;
}

/* The bytes up to the next NUL (or the end), as a fresh NUL-ended string. */
static inline char *fuzz_cstr(struct fuzz_in *in)
{
	const uint8_t *nul = memchr(in->p, 0, in->n);
	size_t l = nul ? (size_t)(nul - in->p) : in->n;
	char *s = malloc(l + 1);

	if (!s)
		abort();
	memcpy(s, in->p, l);
	s[l] = '\0';
	in->p += nul ? l + 1 : l;
	in->n -= nul ? l + 1 : l;
	return s;
}

/* An exact-size heap copy, so that ASan sees any read past the end. */
static inline char *fuzz_dup(const void *p, size_t n)
{
	char *d = malloc(n ? n : 1);

	if (!d)
		abort();
	if (n)
		memcpy(d, p, n);
	return d;
}

/* True when the span [p, p+len) lies inside [base, base+n). */
static inline int fuzz_inside(const void *p, size_t len, const void *base, size_t n)
{
	const char *a = p, *b = base;

	return len == 0 || (a >= b && a <= b + n && len <= (size_t)(b + n - a));
}

#endif
