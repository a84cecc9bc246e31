/* http.c - bounded HTTP/1.1 head parsing and chunked framing (see http.h) */
#include "http.h"

#include <stdio.h>
#include <string.h>

/* RFC 9110 5.6.2 tchar */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

bool http_span_eq(struct http_span s, const char *str)
{
	/* no strlen(): most calls differ at the first byte (hop-by-hop lists, header names) */
	for (size_t i = 0; i < s.len; i++)
		if (!str[i] || lower((unsigned char)s.p[i]) != lower((unsigned char)str[i]))
			return false;
	return str[s.len] == '\0';
}

/*
 * Find the end of the head: the first empty line. With crlf_only, only "\r\n\r\n" ends it;
 * otherwise "\n\n" and "\n\r\n" too. Returns the head length or 0; *scan resumes the search.
 */
static size_t head_end(const char *buf, size_t len, size_t *scan, bool crlf_only)
{
	size_t i = scan ? *scan : 0;

	for (; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (crlf_only && (i == 0 || buf[i - 1] != '\r'))
			return (size_t)-1; /* bare LF in a request: refused */
		/* buf[i] ends a line; is the next line empty? */
		if (i + 1 < len && buf[i + 1] == '\n' && !crlf_only)
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			if (!crlf_only || (i > 0 && buf[i - 1] == '\r'))
				return i + 3;
		if (i + 2 >= len)
			break; /* may complete with more bytes: rescan from this '\n' */
	}
	if (scan)
		*scan = i < len ? i : len;
	return 0;
}

/* The next line in [*pos, end): sets *line (without its end) and advances *pos. */
static int next_line(const char *buf, size_t end, size_t *pos, struct http_span *line,
		     bool crlf_only)
{
	const char *nl;
	size_t start = *pos, l;

	if (start >= end)
		return -1;
	nl = memchr(buf + start, '\n', end - start);
	if (!nl)
		return -1;
	l = (size_t)(nl - (buf + start));
	*pos = start + l + 1;
	if (l > 0 && buf[start + l - 1] == '\r')
		l--;
	else if (crlf_only)
		return -1;
	line->p = buf + start;
	line->len = l;
	return 0;
}

/* Parse the header lines of a head whose first line ended at pos. */
static int parse_headers(const char *buf, size_t end, size_t pos, struct http_header *h,
			 size_t *nh, bool crlf_only, int too_many)
{
	struct http_span line;

	*nh = 0;
	for (;;) {
		size_t i = 0, vs, ve;

		if (next_line(buf, end, &pos, &line, crlf_only) < 0)
			return -400;
		if (line.len == 0)
			return 0;
		/* obs-fold (a line starting with whitespace) is refused: RFC 9112 5.2 */
		while (i < line.len && is_tchar((unsigned char)line.p[i]))
			i++;
		if (i == 0 || i >= line.len || line.p[i] != ':')
			return -400;
		if (*nh >= HTTP_MAX_HEADERS)
			return too_many;
		h[*nh].name.p = line.p;
		h[*nh].name.len = i;
		vs = i + 1;
		ve = line.len;
		while (vs < ve && (line.p[vs] == ' ' || line.p[vs] == '\t'))
			vs++;
		while (ve > vs && (line.p[ve - 1] == ' ' || line.p[ve - 1] == '\t'))
			ve--;
		for (size_t k = vs; k < ve; k++) {
			unsigned char c = (unsigned char)line.p[k];

			if (c == 0 || c == '\r' || c == '\n' || (c < 0x20 && c != '\t') || c == 0x7f)
				return -400;
		}
		h[*nh].value.p = line.p + vs;
		h[*nh].value.len = ve - vs;
		(*nh)++;
	}
}

static int parse_version(const char *p, size_t len, int *minor)
{
	if (len != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.')
		return -400;
	if (p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
		return -400;
	if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
		return -505;
	*minor = p[7] - '0';
	return 0;
}

int http_parse_request(const char *buf, size_t len, size_t *scan, struct http_request *req)
{
	struct http_span line;
	size_t end, pos = 0, i, sp1, sp2;
	int rc;

	/* Tolerate empty lines before the request line (RFC 9112 2.2): at most a few. */
	while (pos < len && pos < 8 && (buf[pos] == '\r' || buf[pos] == '\n'))
		pos++;
	if (pos == len)
		return len >= 8 ? -400 : 0;
	if (scan && *scan < pos)
		*scan = pos;
	end = head_end(buf, len, scan, true);
	if (end == (size_t)-1)
		return -400;
	if (!end) {
		if (len >= HTTP_MAX_HEAD)
			return -431;
		/* A request line that is plainly not HTTP is refused early. */
		for (i = pos; i < len && buf[i] != ' '; i++)
			if (!is_tchar((unsigned char)buf[i]))
				return -400;
		return 0;
	}
	if (end > HTTP_MAX_HEAD)
		return -431;
	if (next_line(buf, end, &pos, &line, true) < 0)
		return -400;
	/* method SP request-target SP HTTP-version, single spaces */
	for (sp1 = 0; sp1 < line.len && line.p[sp1] != ' '; sp1++)
		if (!is_tchar((unsigned char)line.p[sp1]))
			return -400;
	if (sp1 == 0 || sp1 >= line.len)
		return -400;
	for (sp2 = sp1 + 1; sp2 < line.len && line.p[sp2] != ' '; sp2++) {
		unsigned char c = (unsigned char)line.p[sp2];

		if (c <= 0x20 || c >= 0x7f)
			return -400;
	}
	if (sp2 == sp1 + 1 || sp2 >= line.len)
		return -400;
	rc = parse_version(line.p + sp2 + 1, line.len - sp2 - 1, &req->minor);
	if (rc < 0)
		return rc;
	req->method.p = line.p;
	req->method.len = sp1;
	req->target.p = line.p + sp1 + 1;
	req->target.len = sp2 - sp1 - 1;
	rc = parse_headers(buf, end, pos, req->headers, &req->nheaders, true, -431);
	if (rc < 0)
		return rc;
	req->head_len = end;
	return (int)end;
}

int http_parse_response(const char *buf, size_t len, size_t *scan, struct http_response *resp)
{
	struct http_span line;
	size_t end, pos = 0, i;
	int st = 0;

	end = head_end(buf, len, scan, false);
	if (!end)
		return len >= HTTP_MAX_HEAD ? -1 : 0;
	if (end > HTTP_MAX_HEAD)
		return -1;
	if (next_line(buf, end, &pos, &line, false) < 0)
		return -1;
	/* HTTP-version SP 3DIGIT SP [reason]; some servers omit the last SP */
	if (line.len < 12 || parse_version(line.p, 8, &resp->minor) < 0 || line.p[8] != ' ')
		return -1;
	for (i = 9; i < 12; i++) {
		if (line.p[i] < '0' || line.p[i] > '9')
			return -1;
		st = st * 10 + (line.p[i] - '0');
	}
	if (st < 100 || (line.len > 12 && line.p[12] != ' '))
		return -1;
	resp->status = st;
	resp->reason.p = line.p + (line.len > 12 ? 13 : 12);
	resp->reason.len = line.len > 12 ? line.len - 13 : 0;
	for (i = 0; i < resp->reason.len; i++) {
		unsigned char c = (unsigned char)resp->reason.p[i];

		if (c == 0 || c == '\r' || (c < 0x20 && c != '\t'))
			return -1;
	}
	if (parse_headers(buf, end, pos, resp->headers, &resp->nheaders, false, -1) < 0)
		return -1;
	resp->head_len = end;
	return (int)end;
}

const struct http_header *http_header_find(const struct http_header *h, size_t n,
					   const char *name, size_t *from)
{
	for (size_t i = from ? *from : 0; i < n; i++) {
		if (http_span_eq(h[i].name, name)) {
			if (from)
				*from = i + 1;
			return &h[i];
		}
	}
	if (from)
		*from = n;
	return NULL;
}

bool http_has_token(struct http_span v, const char *token)
{
	size_t i = 0;

	while (i < v.len) {
		struct http_span t;

		while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
			i++;
		t.p = v.p + i;
		while (i < v.len && v.p[i] != ',')
			i++;
		t.len = (size_t)(v.p + i - t.p);
		while (t.len && (t.p[t.len - 1] == ' ' || t.p[t.len - 1] == '\t'))
			t.len--;
		/* a parameter (";q=...") is not part of the token */
		for (size_t k = 0; k < t.len; k++)
			if (t.p[k] == ';') {
				t.len = k;
				while (t.len && (t.p[t.len - 1] == ' ' || t.p[t.len - 1] == '\t'))
					t.len--;
				break;
			}
		if (t.len && http_span_eq(t, token))
			return true;
	}
	return false;
}

int http_parse_content_length(struct http_span v, uint64_t *out)
{
	uint64_t n = 0;

	if (v.len == 0 || v.len > 19)
		return -1;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(v.p[i] - '0');
	}
	if (n > (1ULL << 62))
		return -1;
	*out = n;
	return 0;
}

/* Every Content-Length field (also comma lists "5, 5") must give the same value. */
static int content_length(const struct http_header *h, size_t n, bool *present, uint64_t *len)
{
	const struct http_header *f;
	size_t from = 0;

	*present = false;
	while ((f = http_header_find(h, n, "content-length", &from))) {
		size_t i = 0;

		while (i <= f->value.len) {
			struct http_span part = { f->value.p + i, 0 };
			uint64_t v;

			while (i + part.len < f->value.len && f->value.p[i + part.len] != ',')
				part.len++;
			i += part.len + 1;
			while (part.len && (*part.p == ' ' || *part.p == '\t')) {
				part.p++;
				part.len--;
			}
			while (part.len && (part.p[part.len - 1] == ' ' || part.p[part.len - 1] == '\t'))
				part.len--;
			if (http_parse_content_length(part, &v) < 0)
				return -1;
			if (*present && v != *len)
				return -1;
			*present = true;
			*len = v;
		}
	}
	return 0;
}

/* Transfer-Encoding: 0 none, 1 exactly chunked (last), -1 anything else */
static int transfer_encoding(const struct http_header *h, size_t n)
{
	const struct http_header *f;
	size_t from = 0;
	int seen = 0;

	while ((f = http_header_find(h, n, "transfer-encoding", &from))) {
		if (seen || !http_span_eq(f->value, "chunked"))
			return -1;
		seen = 1;
	}
	return seen;
}

int http_request_body(const struct http_request *req, enum http_body *kind, uint64_t *len)
{
	int te = transfer_encoding(req->headers, req->nheaders);
	bool has_cl;

	*len = 0;
	if (te < 0 || content_length(req->headers, req->nheaders, &has_cl, len) < 0)
		return -400;
	if (te && has_cl)
		return -400;
	if (te && req->minor == 0)
		return -400;
	if (te)
		*kind = HTTP_BODY_CHUNKED;
	else if (has_cl && *len > 0)
		*kind = HTTP_BODY_LENGTH;
	else
		*kind = HTTP_BODY_NONE;
	return 0;
}

int http_response_body(const struct http_response *resp, struct http_span req_method,
		       enum http_body *kind, uint64_t *len)
{
	bool has_cl;
	int te;

	*len = 0;
	if (http_span_eq(req_method, "CONNECT") && resp->status / 100 == 2) {
		*kind = HTTP_BODY_TUNNEL;
		return 0;
	}
	if (resp->status == 101) {
		*kind = HTTP_BODY_TUNNEL;
		return 0;
	}
	if (http_span_eq(req_method, "HEAD") || resp->status / 100 == 1 || resp->status == 204 ||
	    resp->status == 304) {
		*kind = HTTP_BODY_NONE;
		return 0;
	}
	te = transfer_encoding(resp->headers, resp->nheaders);
	if (content_length(resp->headers, resp->nheaders, &has_cl, len) < 0)
		return -1;
	if (te > 0) {
		*kind = HTTP_BODY_CHUNKED;
		*len = 0;
	} else if (te < 0) {
		*kind = HTTP_BODY_CLOSE; /* another coding: read until close (RFC 9112 6.3) */
		*len = 0;
	} else if (has_cl) {
		*kind = *len ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
	} else {
		*kind = HTTP_BODY_CLOSE;
	}
	return 0;
}

static bool keepalive(const struct http_header *h, size_t n, int minor)
{
	const struct http_header *f;
	size_t from = 0;
	bool close = false, keep = false;

	while ((f = http_header_find(h, n, "connection", &from))) {
		close |= http_has_token(f->value, "close");
		keep |= http_has_token(f->value, "keep-alive");
	}
	if (close)
		return false;
	return minor >= 1 || keep;
}

bool http_request_keepalive(const struct http_request *req)
{
	return keepalive(req->headers, req->nheaders, req->minor);
}

bool http_response_keepalive(const struct http_response *resp)
{
	return keepalive(resp->headers, resp->nheaders, resp->minor);
}

bool http_is_hop_header(struct http_span name)
{
	static const char *const hop[] = {
		"connection", "keep-alive", "proxy-connection", "proxy-authorization",
		"proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade",
	};

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (http_span_eq(name, hop[i]))
			return true;
	return false;
}

/* Chunked decoder states */
enum {
	CH_SIZE,      /* hex digits of chunk-size */
	CH_EXT,       /* chunk extensions up to CRLF */
	CH_SIZE_LF,   /* CR seen after the size line */
	CH_DATA,      /* payload */
	CH_DATA_CR,   /* CRLF after payload */
	CH_DATA_LF,
	CH_TRAILER,   /* start of a trailer line (or the final empty line) */
	CH_TRAILER_LINE,
	CH_TRAILER_LF,
	CH_END_LF,    /* CR of the final empty line seen */
	CH_DONE,
};

void http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

ssize_t http_chunked_feed(struct http_chunked *c, const char *in, size_t len,
			  const char **data, size_t *data_len)
{
	size_t i = 0;

	*data = NULL;
	*data_len = 0;
	while (i < len && c->state != CH_DONE) {
		char ch = in[i];
		int h;

		switch (c->state) {
		case CH_SIZE:
			h = hexval(ch);
			if (h >= 0) {
				/* at most 15 hex digits: no overflow */
				if (++c->digits > 15)
					return -1;
				c->remaining = c->remaining * 16 + (uint64_t)h;
			} else if (c->digits == 0) {
				return -1;
			} else if (ch == '\r') {
				c->state = CH_SIZE_LF;
			} else if (ch == ';' || ch == ' ' || ch == '\t') {
				c->state = CH_EXT;
			} else {
				return -1;
			}
			break;
		case CH_EXT:
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (ch == '\n' || ch == 0)
				return -1;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return -1;
			c->line = 0;
			c->digits = 0;
			c->state = c->remaining ? CH_DATA : CH_TRAILER;
			i++;
			continue;
		case CH_DATA: {
			size_t n = len - i;

			if (n > c->remaining)
				n = (size_t)c->remaining;
			*data = in + i;
			*data_len = n;
			c->remaining -= n;
			i += n;
			if (!c->remaining)
				c->state = CH_DATA_CR;
			return (ssize_t)i;
		}
		case CH_DATA_CR:
			if (ch != '\r')
				return -1;
			c->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return -1;
			c->state = CH_SIZE;
			c->line = 0;
			i++;
			continue;
		case CH_TRAILER:
			if (ch == '\r') {
				c->state = CH_END_LF;
			} else {
				c->state = CH_TRAILER_LINE;
				continue; /* reprocess as part of the line */
			}
			break;
		case CH_TRAILER_LINE:
			if (ch == '\r')
				c->state = CH_TRAILER_LF;
			else if (ch == '\n' || ch == 0)
				return -1;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return -1;
			c->state = CH_TRAILER;
			break;
		case CH_END_LF:
			if (ch != '\n')
				return -1;
			c->state = CH_DONE;
			c->done = true;
			i++;
			continue;
		default:
			return -1;
		}
		i++;
		if (c->state == CH_SIZE || c->state == CH_EXT || c->state == CH_SIZE_LF) {
			if (++c->line > HTTP_MAX_CHUNK_LINE)
				return -1;
		} else if (c->state >= CH_TRAILER && c->state <= CH_END_LF) {
			if (++c->trailers > HTTP_MAX_TRAILERS)
				return -1;
		}
	}
	return (ssize_t)i;
}

/* host part: lower-case, no trailing dot; IPv6 inside brackets */
static int copy_host(const char *p, size_t n, char *host, size_t hostsz)
{
	if (n && p[n - 1] == '.')
		n--;
	if (n == 0 || n >= hostsz)
		return -1;
	/* One trailing dot is the root; any other empty label ("a..b", ".a", "a..") is not a
	 * name, and must not reach matching as one. */
	if (p[0] == '.' || p[n - 1] == '.' || memmem(p, n, "..", 2))
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '-' || c == '.' || c == '_' || c == ':'))
			return -1;
		host[i] = (char)lower(c);
	}
	host[n] = 0;
	return 0;
}

static int parse_port(const char *p, size_t n, int *port)
{
	int v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = v;
	return 0;
}

/* "host[:port]" or "[v6][:port]"; port < 0 in default_port means the port is required */
static int parse_hostport(const char *p, size_t n, char *host, size_t hostsz, int *port,
			  int default_port)
{
	size_t hend, pstart;

	if (n && p[0] == '[') {
		const char *rb = memchr(p, ']', n);

		if (!rb)
			return -1;
		hend = (size_t)(rb - p);
		if (copy_host(p + 1, hend - 1, host, hostsz) < 0 || !strchr(host, ':'))
			return -1;
		pstart = hend + 1;
	} else {
		const char *colon = memchr(p, ':', n);

		hend = colon ? (size_t)(colon - p) : n;
		if (copy_host(p, hend, host, hostsz) < 0 || strchr(host, ':'))
			return -1;
		pstart = hend;
	}
	if (pstart == n) {
		if (default_port < 0)
			return -1;
		*port = default_port;
		return 0;
	}
	if (p[pstart] != ':')
		return -1;
	return parse_port(p + pstart + 1, n - pstart - 1, port);
}

int http_parse_authority(struct http_span t, char *host, size_t hostsz, int *port)
{
	return parse_hostport(t.p, t.len, host, hostsz, port, -1);
}

int http_parse_absolute_uri(struct http_span t, const char *scheme, int default_port,
			    char *host, size_t hostsz, int *port, struct http_span *path)
{
	size_t sl = strlen(scheme), i, aend;

	if (t.len < sl + 3)
		return -1;
	for (i = 0; i < sl; i++)
		if (lower((unsigned char)t.p[i]) != lower((unsigned char)scheme[i]))
			return -1;
	if (memcmp(t.p + sl, "://", 3) != 0)
		return -1;
	i = sl + 3;
	for (aend = i; aend < t.len; aend++) {
		char ch = t.p[aend];

		if (ch == '/' || ch == '?')
			break;
		if (ch == '@' || ch == '#')
			return -1; /* userinfo or fragment: refused */
	}
	if (memchr(t.p + aend, '#', t.len - aend))
		return -1;
	if (parse_hostport(t.p + i, aend - i, host, hostsz, port, default_port) < 0)
		return -1;
	path->p = t.p + aend;
	path->len = t.len - aend;
	return 0;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

int http_format_error(char *buf, size_t bufsz, int status, const char *extra_headers,
		      const char *body)
{
	size_t bl = body ? strlen(body) : 0;
	int n = snprintf(buf, bufsz,
			 "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 status, http_reason(status), extra_headers ? extra_headers : "", bl,
			 body ? body : "");

	if (n < 0 || (size_t)n >= bufsz)
		return -1;
	return n;
}
