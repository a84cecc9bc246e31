/*
 * secrets_codec.h - the parts of secrets.c that intercept.c and the unit tests use:
 * encodings (base64, percent), placeholder shapes, host binding, substitution of
 * placeholders by values in request heads, and streaming redaction of values in
 * responses. Proxy process only.
 *
 * Placeholders have exactly the length of their value, so that replacing one by the
 * other never changes a Content-Length or a chunk size.
 */
#ifndef AGENTJAIL_SECRETS_CODEC_H
#define AGENTJAIL_SECRETS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy.h"

#define SECRETS_MAX	 64	     /* secrets per run: one bit each in a uint64_t mask */
#define SECRET_VALUE_MAX (64 * 1024) /* bytes of a value (file or command output) */
#define SECRET_VALUE_MIN 8	     /* shorter values are refused: see docs/secrets.md */

/* A growable byte buffer. */
struct sbuf {
	char *v;
	size_t n, cap;
};
void sbuf_add(struct sbuf *b, const void *p, size_t len);
void sbuf_adds(struct sbuf *b, const char *s);
/* Wipe (the contents may hold a value) and free. */
void sbuf_free(struct sbuf *b);

/* Base64 (RFC 4648). Encoding writes 4*((len+2)/3) chars plus a NUL. Decoding accepts
 * the standard and the URL-safe alphabet, with or without padding; -1 when malformed. */
size_t b64_encode(const unsigned char *in, size_t len, char *out);
ssize_t b64_decode(const char *in, size_t len, unsigned char *out);
/* Percent-decoding (a malformed escape is kept as is); the output is never longer. */
size_t pct_decode(const char *in, size_t len, char *out);
/* Percent-encoding of everything but RFC 3986 unreserved characters: up to 3*len. */
size_t pct_encode(const char *in, size_t len, char *out);

/*
 * A placeholder shaped like value[0..len): a known prefix (ghp_, sk-ant-, AKIA, ...) kept,
 * separators (anything not a letter or digit) kept in place, every letter or digit
 * replaced by a random one from the value's alphabet (hex, digits, lower, upper, or
 * their union as present). Writes len bytes plus a NUL into out. 0, or -1 when the value
 * leaves fewer than SECRET_VALUE_MIN random positions.
 */
int secrets_make_placeholder(const char *value, size_t len, char *out);

/* Host patterns: "example.com" exact, "*.example.com" subdomains only; any ":port" in
 * the pattern is ignored; case-insensitive, trailing dot and [brackets] ignored. */
bool secrets_host_match(const char *pattern, const char *host);
bool secrets_rule_bound(const struct secret_rule *s, const char *host);
/* Bit i set when secret i (of the first SECRETS_MAX) is bound to host. */
uint64_t secrets_bound_mask(const struct policy *p, const char *host);

/* The value of secret i (loaded by secrets_load), or NULL. */
const char *secrets_value(size_t i, size_t *len);

/*
 * Request-side substitution for an intercepted request to host. Each function appends
 * the rewritten text to out and ORs into *used the bit (1 << i) of every secret
 * substituted. Only secrets bound to host are substituted.
 *   secrets_subst_raw:   every placeholder in in[0..len) -> its value.
 *   secrets_subst_basic: in is the credentials of "Authorization: Basic <b64>": decode,
 *                        substitute, re-encode. Appends the input unchanged when it is
 *                        not base64 or holds no placeholder.
 *   secrets_subst_query: in is a URL query: placeholders of secrets with in_query ->
 *                        their value, percent-encoded.
 */
void secrets_subst_raw(const struct policy *p, const char *host, const char *in, size_t len,
		       struct sbuf *out, uint64_t *used);
void secrets_subst_basic(const struct policy *p, const char *host, const char *in, size_t len,
			 struct sbuf *out, uint64_t *used);
void secrets_subst_query(const struct policy *p, const char *host, const char *in, size_t len,
			 struct sbuf *out, uint64_t *used);

/* The longest placeholder's encoded form (for the carry of a streaming exfil scan). */
size_t secrets_scan_window(void);

/*
 * Streaming redaction of values -> placeholders (same length) in a response body.
 * Feed each piece of payload; the bytes returned in *out are ready to send (valid until
 * the next call); a tail shorter than the longest value is held back until more data
 * comes or secrets_redact_finish() releases it.
 */
struct redact_stream {
	struct sbuf b;
	size_t keep; /* longest value - 1 */
};
void secrets_redact_init(struct redact_stream *r);
void secrets_redact_feed(struct redact_stream *r, const char *in, size_t len, const char **out,
			 size_t *outlen);
void secrets_redact_finish(struct redact_stream *r, const char **out, size_t *outlen);
void secrets_redact_free(struct redact_stream *r);
/* Redact values in buf[0..len) in place; the number of replacements. */
size_t secrets_redact_buf(char *buf, size_t len);

#endif
