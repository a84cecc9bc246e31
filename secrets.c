/*
 * secrets.c - secret sources, placeholders, substitution, exfiltration guard, redaction.
 *
 * Runs in the proxy process only. Values live in page-aligned anonymous mappings that are
 * locked (best effort: RLIMIT_MEMLOCK may refuse) and excluded from core dumps, and the
 * process is made non-dumpable before the first value is read. Nothing here prints a
 * value; errors name the secret and its source only.
 */
#include "secrets.h"
#include "secrets_codec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "util.h"

#define CMD_TIMEOUT_MS 30000
#define BASIC_MAX      (64 * 1024) /* base64 credentials decoded at most */

/* Encoded forms of a placeholder the exfiltration guard looks for. */
enum { PAT_RAW, PAT_HEXL, PAT_HEXU, PAT_B64 = 3, PAT_B64URL = 6, PAT_MAX = 9 };

struct secret_val {
	char *val; /* in a locked, non-dumpable mapping of maplen bytes */
	size_t len, maplen;
	char *pat[PAT_MAX];
	size_t patlen[PAT_MAX];
	/* base64 (std, url) of the value at each alignment, and of the placeholder likewise:
	 * redaction swaps one for the other (same length) */
	char *vb64[6], *pb64[6];
	size_t b64len[6];
};

static struct secret_val vals[SECRETS_MAX];
static size_t nvals;
static size_t max_vlen;	  /* longest value */
static size_t max_redact; /* longest string redaction replaces (value or its base64) */
static size_t max_window; /* longest encoded placeholder, times 3 for percent-encoding */
static unsigned bound_gen; /* bumped by secrets_load and secrets_wipe: drops bound-mask caches */

extern char **environ;

/* ---- small buffers ---- */

/*
 * Grown by hand, not with realloc(): a realloc that moves the block frees the old one with
 * the value bytes it held (a request head grows while values are substituted into it).
 */
static void sbuf_reserve(struct sbuf *b, size_t need)
{
	size_t ncap = b->cap ? b->cap : 64;
	char *nv;

	if (need <= b->cap)
		return;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			die("out of memory");
		ncap *= 2;
	}
	nv = xmalloc(ncap);
	if (b->n)
		memcpy(nv, b->v, b->n);
	if (b->v) {
		wipe(b->v, b->cap);
		free(b->v);
	}
	b->v = nv;
	b->cap = ncap;
}

void sbuf_add(struct sbuf *b, const void *p, size_t len)
{
	if (!len)
		return;
	sbuf_reserve(b, b->n + len + 1);
	memcpy(b->v + b->n, p, len);
	b->n += len;
	b->v[b->n] = '\0';
}

void sbuf_adds(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

void sbuf_free(struct sbuf *b)
{
	if (b->v)
		wipe(b->v, b->cap);
	free(b->v);
	b->v = NULL;
	b->n = b->cap = 0;
}

/* ---- encodings ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t b64_encode(const unsigned char *in, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = b64chars[v >> 18 & 63];
		out[o++] = b64chars[v >> 12 & 63];
		out[o++] = b64chars[v >> 6 & 63];
		out[o++] = b64chars[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);

		out[o++] = b64chars[v >> 18 & 63];
		out[o++] = b64chars[v >> 12 & 63];
		out[o++] = i + 1 < len ? b64chars[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

ssize_t b64_decode(const char *in, size_t len, unsigned char *out)
{
	uint32_t acc = 0;
	size_t i, o = 0;
	int bits = 0;

	while (len && in[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++) {
		int v = b64_val((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return (ssize_t)o;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

size_t pct_decode(const char *in, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		int h, l;

		if (in[i] == '%' && i + 2 < len && (h = hexval((unsigned char)in[i + 1])) >= 0 &&
		    (l = hexval((unsigned char)in[i + 2])) >= 0) {
			out[o++] = (char)(h << 4 | l);
			i += 2;
		} else {
			out[o++] = in[i];
		}
	}
	return o;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

size_t pct_encode(const char *in, size_t len, char *out)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (unreserved(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hx[c >> 4];
			out[o++] = hx[c & 15];
		}
	}
	return o;
}

/* ---- placeholders ---- */

/* Prefixes that client libraries check; longest first where one extends another. */
static const char *const known_prefixes[] = {
    "github_pat_", "ghp_",   "gho_", "ghu_",  "ghs_",	 "ghr_",   "sk-ant-api03-", "sk-ant-",
    "sk-proj-",	   "sk-",    "npm_", "xoxb-", "xoxp-",	 "xoxa-",  "xapp-",	    "AKIA",
    "ASIA",	   "glpat-", "hf_",  "pypi-", "dop_v1_", "shpat_", "eyJ",	    NULL,
};

static size_t known_prefix(const char *v, size_t len)
{
	for (size_t i = 0; known_prefixes[i]; i++) {
		size_t n = strlen(known_prefixes[i]);

		if (n < len && !memcmp(v, known_prefixes[i], n))
			return n;
	}
	return 0;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}
static bool is_lower(unsigned char c)
{
	return c >= 'a' && c <= 'z';
}
static bool is_upper(unsigned char c)
{
	return c >= 'A' && c <= 'Z';
}

/* A uniformly random index below n (n <= 256), by rejection from getrandom bytes. */
static unsigned rand_below(unsigned n)
{
	static unsigned char pool[256];
	static size_t left;
	unsigned limit = 256 - 256 % n;

	for (;;) {
		unsigned char c;

		if (!left) {
			ssize_t r = getrandom(pool, sizeof(pool), 0);

			if (r != (ssize_t)sizeof(pool))
				die_errno("getrandom");
			left = sizeof(pool);
		}
		c = pool[--left];
		pool[left] = 0;
		if (c < limit)
			return c % n;
	}
}

int secrets_make_placeholder(const char *value, size_t len, char *out)
{
	bool d = false, lo = false, up = false, hexl = true, hexu = true;
	char alpha[64];
	size_t pre = known_prefix(value, len), nrand = 0, na = 0, i;

	for (i = pre; i < len; i++) {
		unsigned char c = (unsigned char)value[i];

		if (!is_digit(c) && !is_lower(c) && !is_upper(c))
			continue;
		nrand++;
		d |= is_digit(c);
		lo |= is_lower(c);
		up |= is_upper(c);
		if (!is_digit(c) && !(c >= 'a' && c <= 'f'))
			hexl = false;
		if (!is_digit(c) && !(c >= 'A' && c <= 'F'))
			hexu = false;
	}
	if (nrand < SECRET_VALUE_MIN)
		return -1;
	if (hexl && lo) {
		memcpy(alpha, "0123456789abcdef", 16);
		na = 16;
	} else if (hexu && up) {
		memcpy(alpha, "0123456789ABCDEF", 16);
		na = 16;
	} else {
		if (d)
			for (char c = '0'; c <= '9'; c++)
				alpha[na++] = c;
		if (lo)
			for (char c = 'a'; c <= 'z'; c++)
				alpha[na++] = c;
		if (up)
			for (char c = 'A'; c <= 'Z'; c++)
				alpha[na++] = c;
	}
	do {
		memcpy(out, value, pre);
		for (i = pre; i < len; i++) {
			unsigned char c = (unsigned char)value[i];

			if (is_digit(c) || is_lower(c) || is_upper(c))
				out[i] = alpha[rand_below((unsigned)na)];
			else
				out[i] = (char)c;
		}
		out[len] = '\0';
	} while (!memcmp(out, value, len)); /* only possible for tiny alphabets */
	return 0;
}

/* ---- host binding ---- */

/* Copy a host or pattern lower-cased, without [brackets], :port or a trailing dot. */
static void host_norm(const char *in, char *out, size_t outsz)
{
	size_t n = 0;
	const char *end;

	if (*in == '[') {
		in++;
		end = strchr(in, ']');
		if (!end)
			end = in + strlen(in);
	} else {
		const char *c = strchr(in, ':');

		/* exactly one colon: host:port; more: an IPv6 literal */
		end = c && !strchr(c + 1, ':') ? c : in + strlen(in);
	}
	while (in < end && n + 1 < outsz) {
		char c = *in++;

		out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[n] = '\0';
}

/*
 * The proxy's own host rules decide (net.c), so that a secret is bound to exactly the
 * hosts the policy would match for that pattern: the host is normalised as the policy
 * does (a host it refuses matches nothing) and only the pattern may carry a port.
 */
bool secrets_host_match(const char *pattern, const char *host)
{
	char raw[NET_HOST_MAX], pat[NET_HOST_MAX], h[NET_HOST_MAX];

	if (!pattern || !host || strchr(host, '[') || strchr(host, ']'))
		return false;
	host_norm(pattern, raw, sizeof(raw));
	/* the pattern is normalised exactly as the policy's: one trailing dot is the root,
	 * any other empty label ("*..") makes it no pattern at all, never "*" */
	if (!*raw || net_normalize_host(raw, pat, sizeof(pat)) < 0 ||
	    net_normalize_host(host, h, sizeof(h)) < 0)
		return false;
	return net_pattern_match(pat, h);
}

bool secrets_rule_bound(const struct secret_rule *s, const char *host)
{
	for (size_t j = 0; j < s->hosts.n; j++)
		if (secrets_host_match(s->hosts.v[j], host))
			return true;
	return false;
}

/*
 * The bound secrets of host as a mask, cached per thread for the last host asked about:
 * every header of every intercepted request asks, and matching normalises both names.
 * The policy's secrets do not change once loaded; the key is the policy, its secrets, the
 * name and the load generation.
 */
uint64_t secrets_bound_mask(const struct policy *p, const char *host)
{
	static __thread const struct policy *c_p;
	static __thread const struct secret_rule *c_v;
	static __thread unsigned c_gen;
	static __thread size_t c_n;
	static __thread char c_host[NET_HOST_MAX];
	static __thread uint64_t c_mask;
	size_t hl = strlen(host);
	uint64_t m = 0;

	if (c_p == p && c_v == p->secrets.v && c_n == p->secrets.n && c_gen == bound_gen &&
	    hl < sizeof(c_host) && !memcmp(c_host, host, hl + 1))
		return c_mask;
	for (size_t i = 0; i < p->secrets.n && i < SECRETS_MAX; i++)
		if (secrets_rule_bound(&p->secrets.v[i], host))
			m |= 1ULL << i;
	if (hl < sizeof(c_host)) {
		memcpy(c_host, host, hl + 1);
		c_p = p;
		c_v = p->secrets.v;
		c_n = p->secrets.n;
		c_gen = bound_gen;
		c_mask = m;
	}
	return m;
}

bool secrets_bound(const struct policy *p, const char *host)
{
	for (size_t i = 0; i < p->secrets.n; i++)
		if (secrets_rule_bound(&p->secrets.v[i], host))
			return true;
	return false;
}

const char *secrets_value(size_t i, size_t *len)
{
	if (i >= nvals || !vals[i].val)
		return NULL;
	*len = vals[i].len;
	return vals[i].val;
}

/* ---- sources ---- */

static void strip_newline(char *buf, size_t *len)
{
	while (*len && (buf[*len - 1] == '\n' || buf[*len - 1] == '\r'))
		(*len)--;
}

/* Read at most SECRET_VALUE_MAX bytes from fd into buf (SECRET_VALUE_MAX + 1 bytes). */
static int read_bounded(int fd, char *buf, size_t *len, int timeout_ms, const char **why)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	*len = 0;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long left;
		ssize_t r;
		int pr;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = timeout_ms - ((now.tv_sec - start.tv_sec) * 1000 +
				     (now.tv_nsec - start.tv_nsec) / 1000000);
		if (timeout_ms >= 0) {
			if (left <= 0) {
				*why = "timed out";
				return -1;
			}
			pr = poll(&pfd, 1, (int)left);
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr < 0) {
				*why = strerror(errno);
				return -1;
			}
			if (pr == 0)
				continue;
		}
		r = read(fd, buf + *len, SECRET_VALUE_MAX + 1 - *len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*why = strerror(errno);
			return -1;
		}
		if (r == 0)
			return 0;
		*len += (size_t)r;
		if (*len > SECRET_VALUE_MAX) {
			*why = "longer than 64 KiB";
			return -1;
		}
	}
}

static int source_env(const struct secret_rule *s, char *buf, size_t *len, const char **why)
{
	const char *var = s->source_arg && *s->source_arg ? s->source_arg : s->name;
	size_t vl = strlen(var);
	const char *v = getenv(var);

	if (!v) {
		*why = "the environment variable is not set";
		return -1;
	}
	*len = strlen(v);
	if (*len > SECRET_VALUE_MAX) {
		*why = "longer than 64 KiB";
		return -1;
	}
	memcpy(buf, v, *len);
	/* Overwrite the value in our own environment block, then drop the variable. */
	for (char **e = environ; e && *e; e++)
		if (!strncmp(*e, var, vl) && (*e)[vl] == '=')
			wipe(*e + vl + 1, strlen(*e + vl + 1));
	unsetenv(var);
	return 0;
}

static int source_file(const struct secret_rule *s, char *buf, size_t *len, const char **why)
{
	int fd, ret;

	if (!s->source_arg) {
		*why = "no file named";
		return -1;
	}
	fd = open(s->source_arg, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	ret = read_bounded(fd, buf, len, -1, why);
	close(fd);
	return ret;
}

static int source_cmd(const struct secret_rule *s, char *buf, size_t *len, const char **why)
{
	int pfd[2], st, ret;
	pid_t pid;

	if (!s->source_arg) {
		*why = "no command given";
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		*why = strerror(errno);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		*why = strerror(errno);
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (nul < 0 || dup2(nul, 0) < 0 || dup2(pfd[1], 1) < 0)
			_exit(127);
		execl("/bin/sh", "sh", "-c", s->source_arg, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	ret = read_bounded(pfd[0], buf, len, CMD_TIMEOUT_MS, why);
	close(pfd[0]);
	if (ret < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			*why = strerror(errno);
			return -1;
		}
	if (ret == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		*why = "the command failed";
		return -1;
	}
	return ret;
}

static const char *source_desc(const struct secret_rule *s)
{
	switch (s->source) {
	case SECRET_FILE:
		return "file";
	case SECRET_CMD:
		return "command";
	default:
		return "environment variable";
	}
}

static int check_value(const char *v, size_t len, const char **why)
{
	if (len < SECRET_VALUE_MIN) {
		*why = "the value is shorter than 8 characters";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c < 0x20 || c == 0x7f) {
			*why = "the value holds a control character (CR, LF, NUL, ...)";
			return -1;
		}
	}
	return 0;
}

/* Every encoded form of the placeholder the guard searches for. */
static void make_patterns(struct secret_val *sv, const char *ph, size_t len)
{
	static const char hl[] = "0123456789abcdef", hu[] = "0123456789ABCDEF";
	char *a = xmalloc(2 * len + 1), *b = xmalloc(2 * len + 1);

	for (size_t i = 0; i < len; i++) {
		a[2 * i] = hl[(unsigned char)ph[i] >> 4];
		a[2 * i + 1] = hl[(unsigned char)ph[i] & 15];
		b[2 * i] = hu[(unsigned char)ph[i] >> 4];
		b[2 * i + 1] = hu[(unsigned char)ph[i] & 15];
	}
	sv->pat[PAT_RAW] = xstrndup(ph, len);
	sv->patlen[PAT_RAW] = len;
	sv->pat[PAT_HEXL] = a;
	sv->patlen[PAT_HEXL] = 2 * len;
	sv->pat[PAT_HEXU] = b;
	sv->patlen[PAT_HEXU] = 2 * len;
	/*
	 * Base64 of text that contains the placeholder depends on where the placeholder
	 * falls relative to the 3-byte groups. For each of the 3 alignments, the whole
	 * groups that lie inside the placeholder encode to a fixed string.
	 */
	for (size_t s = 0; s < 3; s++) {
		size_t n = (len - s) / 3 * 3;
		char *e = xmalloc(4 * (n / 3) + 1), *u;
		size_t el = b64_encode((const unsigned char *)ph + s, n, e);

		u = xstrdup(e);
		for (char *c = u; *c; c++)
			*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
		sv->pat[PAT_B64 + s] = e;
		sv->patlen[PAT_B64 + s] = el;
		sv->pat[PAT_B64URL + s] = u;
		sv->patlen[PAT_B64URL + s] = el;
	}
	if (3 * 2 * len > max_window)
		max_window = 3 * 2 * len;
}

/* Base64 of bytes [s, s + 3k) of text, std or URL alphabet (the encoding of whole groups). */
static char *b64_aligned(const char *text, size_t len, size_t s, bool url, size_t *outlen)
{
	size_t n = (len - s) / 3 * 3;
	char *e = xmalloc(4 * (n / 3) + 1);

	*outlen = b64_encode((const unsigned char *)text + s, n, e);
	for (char *c = e; url && *c; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
	return e;
}

/*
 * An upstream that echoes an Authorization: Basic header sends the value base64-encoded.
 * The whole 3-byte groups inside the value are swapped for the placeholder's; the at most
 * 2 bytes at each end share a group with the surrounding text and are not (see docs).
 */
static void make_b64_swaps(struct secret_val *sv, const char *ph, size_t len)
{
	for (int k = 0; k < 6; k++) {
		size_t a, b;

		sv->vb64[k] = b64_aligned(sv->val, len, (size_t)k % 3, k >= 3, &a);
		sv->pb64[k] = b64_aligned(ph, len, (size_t)k % 3, k >= 3, &b);
		sv->b64len[k] = a;
		(void)b;
		if (a > max_redact)
			max_redact = a;
	}
}

static int load_one(struct secret_rule *s, size_t i, char *buf)
{
	struct secret_val *sv = &vals[i];
	const char *why = NULL;
	size_t len = 0, pg = (size_t)sysconf(_SC_PAGESIZE);
	int ret;

	switch (s->source) {
	case SECRET_FILE:
		ret = source_file(s, buf, &len, &why);
		break;
	case SECRET_CMD:
		ret = source_cmd(s, buf, &len, &why);
		break;
	default:
		ret = source_env(s, buf, &len, &why);
		break;
	}
	if (ret == 0) {
		strip_newline(buf, &len);
		ret = check_value(buf, len, &why);
	}
	if (ret < 0) {
		/* The command line is not printed: it may embed a credential itself. */
		msg("secret %s (%s %s): %s", s->name, source_desc(s),
		    s->source == SECRET_CMD ? "output"
		    : s->source_arg	    ? s->source_arg
					    : s->name,
		    why);
		return -1;
	}
	sv->maplen = (len + 1 + pg - 1) / pg * pg;
	sv->val =
	    mmap(NULL, sv->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sv->val == MAP_FAILED) {
		sv->val = NULL;
		msg("secret %s: cannot map memory", s->name);
		return -1;
	}
	(void)mlock(sv->val, sv->maplen); /* best effort: RLIMIT_MEMLOCK may refuse */
	(void)madvise(sv->val, sv->maplen, MADV_DONTDUMP);
	memcpy(sv->val, buf, len);
	sv->val[len] = '\0';
	sv->len = len;
	free(s->placeholder);
	s->placeholder = xmalloc(len + 1);
	if (secrets_make_placeholder(sv->val, len, s->placeholder) < 0) {
		msg("secret %s: the value has fewer than %d letters or digits to randomise",
		    s->name, SECRET_VALUE_MIN);
		return -1;
	}
	make_patterns(sv, s->placeholder, len);
	make_b64_swaps(sv, s->placeholder, len);
	if (len > max_vlen)
		max_vlen = len;
	if (len > max_redact)
		max_redact = len;
	return 0;
}

int secrets_load(struct policy *p)
{
	char *buf;
	int ret = 0;

	bound_gen++;
	if (!p->secrets.n)
		return 0;
	if (p->secrets.n > SECRETS_MAX) {
		msg("at most %d secrets per run", SECRETS_MAX);
		return -1;
	}
	/* No core dumps, no ptrace by the same user, no /proc/PID/mem of this process. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		msg("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
		return -1;
	}
	buf = xmalloc(SECRET_VALUE_MAX + 1);
	for (size_t i = 0; i < p->secrets.n && ret == 0; i++) {
		ret = load_one(&p->secrets.v[i], i, buf);
		nvals = i + 1;
	}
	wipe(buf, SECRET_VALUE_MAX + 1);
	free(buf);
	/* Two secrets with the same value would make redaction ambiguous: refuse. */
	for (size_t i = 0; i < nvals && ret == 0; i++)
		for (size_t j = i + 1; j < nvals && ret == 0; j++)
			if (vals[i].len == vals[j].len &&
			    !memcmp(vals[i].val, vals[j].val, vals[i].len)) {
				msg("secrets %s and %s have the same value", p->secrets.v[i].name,
				    p->secrets.v[j].name);
				ret = -1;
			}
	if (ret < 0)
		secrets_wipe();
	return ret;
}

void secrets_wipe(void)
{
	for (size_t i = 0; i < nvals; i++) {
		struct secret_val *sv = &vals[i];

		if (sv->val) {
			wipe(sv->val, sv->maplen);
			munmap(sv->val, sv->maplen);
		}
		for (int k = 0; k < PAT_MAX; k++)
			free(sv->pat[k]);
		for (int k = 0; k < 6; k++) {
			if (sv->vb64[k])
				wipe(sv->vb64[k], sv->b64len[k]);
			free(sv->vb64[k]);
			free(sv->pb64[k]);
		}
		memset(sv, 0, sizeof(*sv));
	}
	nvals = 0;
	bound_gen++;
	max_vlen = 0;
	max_redact = 0;
	max_window = 0;
}

/* ---- exfiltration guard ---- */

size_t secrets_scan_window(void)
{
	return max_window;
}

static bool has_pattern(const struct secret_val *sv, const char *buf, size_t len)
{
	for (int k = 0; k < PAT_MAX; k++)
		if (sv->patlen[k] && memmem(buf, len, sv->pat[k], sv->patlen[k]))
			return true;
	return false;
}

const char *secrets_exfil_scan(const struct policy *p, const char *host, const char *buf,
			       size_t len)
{
	const char *hit = NULL;
	char *dec = NULL;
	size_t dlen = len;
	uint64_t bound = secrets_bound_mask(p, host);

	for (size_t i = 0; i < nvals && i < p->secrets.n; i++) {
		const struct secret_rule *s = &p->secrets.v[i];

		if (bound & (1ULL << i))
			continue;
		if (has_pattern(&vals[i], buf, len)) {
			hit = s->name;
			break;
		}
		/* Percent-encoded, up to three layers deep. */
		if (!dec && memchr(buf, '%', len)) {
			dec = xmalloc(len + 1);
			memcpy(dec, buf, len);
		}
		for (int layer = 0; dec && layer < 3 && !hit; layer++) {
			size_t n;

			if (layer == 0) {
				dlen = pct_decode(buf, len, dec);
			} else {
				if (!memchr(dec, '%', dlen))
					break;
				n = pct_decode(dec, dlen,
					       dec); /* in place: output is never longer */
				if (n == dlen)
					break;
				dlen = n;
			}
			if (has_pattern(&vals[i], dec, dlen))
				hit = s->name;
		}
		if (hit)
			break;
	}
	if (dec)
		wipe(dec, len);
	free(dec);
	return hit;
}

/* ---- substitution (requests to a bound host) ---- */

typedef void (*emit_fn)(struct sbuf *out, const char *val, size_t len);

static void emit_raw(struct sbuf *out, const char *val, size_t len)
{
	sbuf_add(out, val, len);
}

static void emit_pct(struct sbuf *out, const char *val, size_t len)
{
	char *e = xmalloc(3 * len + 1);
	size_t n = pct_encode(val, len, e);

	sbuf_add(out, e, n);
	wipe(e, 3 * len + 1);
	free(e);
}

static void subst(const struct policy *p, const char *host, const char *in, size_t len,
		  struct sbuf *out, uint64_t *used, bool query, emit_fn emit)
{
	size_t pos = 0;
	uint64_t bound = secrets_bound_mask(p, host);

	while (pos < len) {
		const char *best = NULL;
		size_t bi = 0;

		for (size_t i = 0; i < nvals && i < p->secrets.n; i++) {
			const struct secret_rule *s = &p->secrets.v[i];
			const char *hit;

			if ((query && !s->in_query) || !(bound & (1ULL << i)))
				continue;
			hit = memmem(in + pos, len - pos, vals[i].pat[PAT_RAW], vals[i].len);
			if (hit && (!best || hit < best)) {
				best = hit;
				bi = i;
			}
		}
		if (!best) {
			sbuf_add(out, in + pos, len - pos);
			return;
		}
		sbuf_add(out, in + pos, (size_t)(best - (in + pos)));
		emit(out, vals[bi].val, vals[bi].len);
		*used |= 1ULL << bi;
		pos = (size_t)(best - in) + vals[bi].len;
	}
}

void secrets_subst_raw(const struct policy *p, const char *host, const char *in, size_t len,
		       struct sbuf *out, uint64_t *used)
{
	subst(p, host, in, len, out, used, false, emit_raw);
}

void secrets_subst_query(const struct policy *p, const char *host, const char *in, size_t len,
			 struct sbuf *out, uint64_t *used)
{
	subst(p, host, in, len, out, used, true, emit_pct);
}

void secrets_subst_basic(const struct policy *p, const char *host, const char *in, size_t len,
			 struct sbuf *out, uint64_t *used)
{
	unsigned char *dec;
	struct sbuf plain = {0};
	uint64_t u = 0;
	ssize_t dl;

	if (len > BASIC_MAX) {
		sbuf_add(out, in, len);
		return;
	}
	dec = xmalloc(len + 1);
	dl = b64_decode(in, len, dec);
	if (dl > 0)
		subst(p, host, (const char *)dec, (size_t)dl, &plain, &u, false, emit_raw);
	if (dl <= 0 || !u) {
		sbuf_add(out, in, len);
	} else {
		char *enc = xmalloc(4 * (plain.n / 3 + 1) + 1);
		size_t el = b64_encode((const unsigned char *)plain.v, plain.n, enc);

		sbuf_add(out, enc, el);
		wipe(enc, el);
		free(enc);
		*used |= u;
	}
	if (dl > 0)
		wipe(dec, (size_t)dl);
	free(dec);
	sbuf_free(&plain);
}

/* ---- redaction (responses from a bound host) ---- */

static size_t swap_all(char *buf, size_t len, const char *from, const char *to, size_t n)
{
	char *at = buf, *hit;
	size_t count = 0;

	if (!n)
		return 0;
	while ((hit = memmem(at, len - (size_t)(at - buf), from, n))) {
		memcpy(hit, to, n);
		at = hit + n;
		count++;
	}
	return count;
}

size_t secrets_redact_buf(char *buf, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < nvals; i++) {
		const struct secret_val *sv = &vals[i];

		if (!sv->val)
			continue;
		n += swap_all(buf, len, sv->val, sv->pat[PAT_RAW], sv->len);
		for (int k = 0; k < 6; k++)
			n += swap_all(buf, len, sv->vb64[k], sv->pb64[k], sv->b64len[k]);
	}
	return n;
}

void secrets_redact_init(struct redact_stream *r)
{
	memset(r, 0, sizeof(*r));
	r->keep = max_redact ? max_redact - 1 : 0;
}

void secrets_redact_feed(struct redact_stream *r, const char *in, size_t len, const char **out,
			 size_t *outlen)
{
	size_t ready;

	/* Drop what the previous call handed out; keep the held-back tail. */
	if (r->b.n > r->keep) {
		memmove(r->b.v, r->b.v + r->b.n - r->keep, r->keep);
		r->b.n = r->keep;
	}
	sbuf_add(&r->b, in, len);
	if (!r->b.v) {
		*out = "";
		*outlen = 0;
		return;
	}
	secrets_redact_buf(r->b.v, r->b.n);
	ready = r->b.n > r->keep ? r->b.n - r->keep : 0;
	*out = r->b.v;
	*outlen = ready;
}

void secrets_redact_finish(struct redact_stream *r, const char **out, size_t *outlen)
{
	if (r->b.n > r->keep) {
		memmove(r->b.v, r->b.v + r->b.n - r->keep, r->keep);
		r->b.n = r->keep;
	}
	*out = r->b.v ? r->b.v : "";
	*outlen = r->b.n;
	r->b.n = 0; /* a further feed starts empty; the bytes stay valid until then */
}

void secrets_redact_free(struct redact_stream *r)
{
	sbuf_free(&r->b);
}
