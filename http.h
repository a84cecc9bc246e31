/*
 * http.h - bounded HTTP/1.1 message framing for the proxy and for intercepted sessions.
 *
 * Nothing here allocates or does I/O. The parsers work on a caller's buffer holding the
 * bytes received so far: call again after every read until the head is complete. Spans
 * point into that buffer and stay valid while it is unchanged.
 *
 * Request heads are parsed strictly (RFC 9112): CRLF line ends, token methods and header
 * names, no obsolete line folding, no NUL/CR/LF inside values, HTTP/1.0 or HTTP/1.1 only.
 * Response heads also accept bare LF line ends. Anything else is refused rather than
 * guessed at, so that the proxy and the upstream never disagree about where a message
 * ends (request smuggling).
 */
#ifndef AGENTJAIL_HTTP_H
#define AGENTJAIL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_MAX_HEAD    (64 * 1024) /* request or response head, request line included */
#define HTTP_MAX_HEADERS 128         /* header fields per head; more is 431 */
#define HTTP_MAX_CHUNK_LINE 1024     /* chunk-size line with extensions */
#define HTTP_MAX_TRAILERS (16 * 1024) /* trailer section after the last chunk */

struct http_span {
	const char *p;
	size_t len;
};

struct http_header {
	struct http_span name, value; /* value without surrounding whitespace */
};

struct http_request {
	struct http_span method;
	struct http_span target; /* as sent: origin-form, absolute-form or authority-form */
	int minor;               /* HTTP/1.<minor>: 0 or 1 */
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	size_t head_len; /* bytes up to and including the empty line */
};

struct http_response {
	int minor;
	int status; /* 100..999 */
	struct http_span reason;
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	size_t head_len;
};

/*
 * Parse a request head at the start of buf[0..len).
 *   > 0   the head is complete; the value is its length (req->head_len)
 *   0     incomplete: read more (len < HTTP_MAX_HEAD)
 *   -400  malformed; -431 head or header count over the limits; -505 not HTTP/1.x
 * *scan (may be NULL) remembers how far the end-of-head search got between calls, so that
 * a head arriving byte by byte costs linear time; start it at 0 for each new message.
 */
int http_parse_request(const char *buf, size_t len, size_t *scan, struct http_request *req);
/* Same for a response head: > 0, 0, or -1 (malformed or over the limits). */
int http_parse_response(const char *buf, size_t len, size_t *scan, struct http_response *resp);

/* Case-insensitive comparison of a span with a C string. */
bool http_span_eq(struct http_span s, const char *str);
/* The first header named name (case-insensitive) at or after index *from (NULL: 0), or
 * NULL. *from is set past the match so that repeated calls walk every same-name field. */
const struct http_header *http_header_find(const struct http_header *h, size_t n,
					   const char *name, size_t *from);
/* True when a comma-separated header list value contains token (case-insensitive). */
bool http_has_token(struct http_span value, const char *token);

/* Content-Length: digits only, no sign, at most 2^62. 0, or -1 when malformed. */
int http_parse_content_length(struct http_span v, uint64_t *out);

enum http_body {
	HTTP_BODY_NONE,    /* no body */
	HTTP_BODY_LENGTH,  /* exactly *len bytes */
	HTTP_BODY_CHUNKED, /* chunked framing: use struct http_chunked */
	HTTP_BODY_CLOSE,   /* (responses) until the upstream closes */
	HTTP_BODY_TUNNEL,  /* (responses to CONNECT, 101) the connection becomes a tunnel */
};

/*
 * Body framing of a request (RFC 9112 6.3). Refuses (-400) what a proxy cannot frame
 * unambiguously: Transfer-Encoding together with Content-Length, a Transfer-Encoding
 * other than exactly "chunked", differing or malformed Content-Length fields.
 */
int http_request_body(const struct http_request *req, enum http_body *kind, uint64_t *len);
/* Body framing of a response to a request with the given method. 0 or -1. */
int http_response_body(const struct http_response *resp, struct http_span req_method,
		       enum http_body *kind, uint64_t *len);

/* Keep-alive after this exchange? (HTTP/1.1 default on, 1.0 default off, Connection.) */
bool http_request_keepalive(const struct http_request *req);
bool http_response_keepalive(const struct http_response *resp);

/* True for hop-by-hop fields a proxy must not forward (Connection, Keep-Alive,
 * Proxy-Connection, Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade). The
 * caller also drops every field named in Connection. */
bool http_is_hop_header(struct http_span name);

/*
 * Chunked transfer coding, decoded incrementally.
 *
 *	struct http_chunked c; http_chunked_init(&c);
 *	while (have bytes) {
 *		ssize_t n = http_chunked_feed(&c, in, len, &data, &dlen);
 *		if (n < 0) malformed; ... data[0..dlen) is payload (dlen may be 0) ...
 *		in += n; len -= n;
 *		if (c.done) break;   // in[0..len) belongs to the next message
 *	}
 *
 * Each call consumes framing bytes and at most one run of payload, and never reads
 * past the end of the chunked body. Every line and the trailer section are bounded.
 */
struct http_chunked {
	int state;
	uint64_t remaining; /* payload bytes left in the current chunk */
	size_t line;        /* bytes of the current size/trailer line seen */
	size_t trailers;    /* bytes of trailer section seen */
	int digits;
	bool done;
};

void http_chunked_init(struct http_chunked *c);
ssize_t http_chunked_feed(struct http_chunked *c, const char *in, size_t len,
			  const char **data, size_t *data_len);

/*
 * Targets. An authority "host:port" (CONNECT; "[v6]:port" for IPv6) and an absolute URI
 * "http://host[:port][/path][?query]" (plain-HTTP proxying; no userinfo, no fragment).
 * host is written lower-cased, without brackets and without a trailing dot, NUL-ended,
 * into host[0..hostsz). *path points into the target ("/" when the URI has none: then
 * *path_len is 0 and the caller sends "/"). 0, or -1 when malformed.
 */
int http_parse_authority(struct http_span target, char *host, size_t hostsz, int *port);
int http_parse_absolute_uri(struct http_span target, const char *scheme, int default_port,
			    char *host, size_t hostsz, int *port, struct http_span *path);

/* Write a short response "HTTP/1.1 <status> <reason>" with the given extra header lines
 * (each ending in CRLF, may be NULL) and a text body into buf. Returns the length, or -1
 * when it does not fit. Adds Content-Length, Content-Type: text/plain, Connection: close. */
int http_format_error(char *buf, size_t bufsz, int status, const char *extra_headers,
		      const char *body);
/* The standard reason phrase for status ("Forbidden"), or "Error". */
const char *http_reason(int status);

#endif
