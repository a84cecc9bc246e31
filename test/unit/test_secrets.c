/*
 * test_secrets.c - placeholders, encodings, substitution, exfiltration guard and
 * streaming redaction of secrets.c. Prints "N passed, M failed"; exits 1 on a failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"
#include "secrets.h"
#include "secrets_codec.h"
#include "util.h"

#include "check.h"

static bool all_in(const char *s, size_t from, const char *set)
{
	for (size_t i = from; s[i]; i++)
		if (!strchr(set, s[i]))
			return false;
	return true;
}

#define UPPER  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define LOWER  "abcdefghijklmnopqrstuvwxyz"
#define DIGITS "0123456789"

static void test_placeholders(void)
{
	const char *ghp = "ghp_R2xvYmFsVG9rZW5Gb3JUZXN0aW5nT25seTEy";
	const char *ant = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_xyzXYZ";
	const char *aws = "AKIAIOSFODNN7EXAMPLE";
	const char *hex = "0123456789abcdef0123456789abcdef01234567";
	const char *pat = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
	char a[128], b[128];

	CHECK(secrets_make_placeholder(ghp, strlen(ghp), a) == 0);
	CHECK(strlen(a) == strlen(ghp) && !strncmp(a, "ghp_", 4) && strcmp(a, ghp));
	CHECK(all_in(a, 4, UPPER LOWER DIGITS));
	CHECK(secrets_make_placeholder(ghp, strlen(ghp), b) == 0 && strcmp(a, b)); /* fresh */

	CHECK(secrets_make_placeholder(ant, strlen(ant), a) == 0);
	CHECK(strlen(a) == strlen(ant) && !strncmp(a, "sk-ant-api03-", 13));
	/* separators stay where they were */
	for (size_t i = 0; i < strlen(ant); i++)
		if (ant[i] == '-' || ant[i] == '_')
			CHECK(a[i] == ant[i]);

	CHECK(secrets_make_placeholder(aws, strlen(aws), a) == 0);
	CHECK(!strncmp(a, "AKIA", 4) && all_in(a, 4, UPPER DIGITS) && strlen(a) == 20);

	CHECK(secrets_make_placeholder(hex, strlen(hex), a) == 0);
	CHECK(all_in(a, 0, "0123456789abcdef") && strlen(a) == 40 && strcmp(a, hex));

	CHECK(secrets_make_placeholder(pat, strlen(pat), a) == 0);
	CHECK(!strncmp(a, "github_pat_", 11) && strlen(a) == strlen(pat));

	CHECK(secrets_make_placeholder("ab-cd", 5, a) < 0);	/* too few random places */
	CHECK(secrets_make_placeholder("ghp_abc", 7, a) < 0);	/* prefix leaves 3 */
	CHECK(secrets_make_placeholder("hunter22", 8, a) == 0); /* 8 is the floor */
	CHECK(all_in(a, 0, LOWER DIGITS));
}

static void test_codecs(void)
{
	char enc[64];
	unsigned char dec[64];
	char pct[64];
	ssize_t n;

	CHECK(b64_encode((const unsigned char *)"x-access-token:abc", 18, enc) == 24);
	CHECK(!strcmp(enc, "eC1hY2Nlc3MtdG9rZW46YWJj"));
	CHECK(b64_encode((const unsigned char *)"ab", 2, enc) == 4 && !strcmp(enc, "YWI="));
	CHECK(b64_encode((const unsigned char *)"a", 1, enc) == 4 && !strcmp(enc, "YQ=="));
	n = b64_decode("YWI=", 4, dec);
	CHECK(n == 2 && !memcmp(dec, "ab", 2));
	n = b64_decode("YWI", 3, dec); /* unpadded */
	CHECK(n == 2 && !memcmp(dec, "ab", 2));
	n = b64_decode("-_-_", 4, dec); /* URL-safe alphabet */
	CHECK(n == 3 && dec[0] == 0xfb && dec[1] == 0xff && dec[2] == 0xbf);
	CHECK(b64_decode("a*bc", 4, dec) < 0);
	CHECK(b64_decode("abcde", 5, dec) < 0);

	CHECK(pct_encode("a b/c~", 6, pct) == 10 && !memcmp(pct, "a%20b%2Fc~", 10));
	n = (ssize_t)pct_decode("%67h%70_%zz%4", 13, pct);
	CHECK(n == 9 && !memcmp(pct, "ghp_%zz%4", 9));
}

static void test_hosts(void)
{
	CHECK(secrets_host_match("api.github.com", "API.GitHub.com"));
	CHECK(secrets_host_match("api.github.com", "api.github.com."));
	CHECK(secrets_host_match("api.github.com:443", "api.github.com"));
	CHECK(!secrets_host_match("api.github.com", "github.com"));
	CHECK(secrets_host_match("*.github.com", "api.github.com"));
	CHECK(secrets_host_match("*.github.com", "a.b.github.com"));
	CHECK(!secrets_host_match("*.github.com", "github.com"));
	CHECK(!secrets_host_match("*.github.com", "evilgithub.com"));
	CHECK(secrets_host_match("[::1]:8443", "::1"));
	CHECK(secrets_host_match("127.0.0.1", "127.0.0.1"));
}

static struct secret_rule *add_secret(struct policy *p, const char *name, enum secret_source src,
				      const char *arg, const char *host)
{
	struct secret_rule *s = VEC_PUSH(p->secrets);

	s->name = xstrdup(name);
	s->source = src;
	s->source_arg = arg ? xstrdup(arg) : NULL;
	*VEC_PUSH(s->hosts) = xstrdup(host);
	snprintf(s->origin, sizeof(s->origin), "test");
	return s;
}

#define GH_VALUE  "ghp_RealValueRealValueRealValueRealValue1"
#define NPM_VALUE "npm_FileValueFileValueFileValueFileValue"
#define CMD_VALUE "sk-CmdValue/with+slash=CmdValueCmdValue"

static struct policy P;

static void test_load(void)
{
	char path[] = "/tmp/aj-secret-XXXXXX";
	int fd = mkstemp(path);
	size_t vl;
	const char *v;

	CHECK(fd >= 0);
	CHECK(write(fd, NPM_VALUE "\n", sizeof(NPM_VALUE)) == (ssize_t)sizeof(NPM_VALUE));
	close(fd);
	setenv("AJT_GH", GH_VALUE, 1);
	add_secret(&P, "GH", SECRET_ENV, "AJT_GH", "api.example.test");
	add_secret(&P, "NPM", SECRET_FILE, path, "registry.example.test");
	add_secret(&P, "CMD", SECRET_CMD, "printf '%s\\n' '" CMD_VALUE "'", "*.example.test");
	P.secrets.v[2].in_query = true;
	CHECK(secrets_load(&P) == 0);
	unlink(path);
	CHECK(getenv("AJT_GH") == NULL); /* read, overwritten and unset */
	v = secrets_value(0, &vl);
	CHECK(v && vl == strlen(GH_VALUE) && !memcmp(v, GH_VALUE, vl));
	v = secrets_value(1, &vl);
	CHECK(v && vl == strlen(NPM_VALUE) && !memcmp(v, NPM_VALUE, vl)); /* newline stripped */
	v = secrets_value(2, &vl);
	CHECK(v && vl == strlen(CMD_VALUE) && !memcmp(v, CMD_VALUE, vl));
	for (size_t i = 0; i < 3; i++) {
		const char *ph = P.secrets.v[i].placeholder;

		v = secrets_value(i, &vl);
		CHECK(ph && strlen(ph) == vl && memcmp(ph, v, vl));
	}
	CHECK(!strncmp(P.secrets.v[0].placeholder, "ghp_", 4));
	CHECK(!strncmp(P.secrets.v[1].placeholder, "npm_", 4));
	CHECK(!strncmp(P.secrets.v[2].placeholder, "sk-", 3));
	CHECK(strchr(P.secrets.v[2].placeholder, '/') && strchr(P.secrets.v[2].placeholder, '+'));
	CHECK(secrets_bound(&P, "api.example.test") && secrets_bound(&P, "x.example.test"));
	CHECK(!secrets_bound(&P, "example.test") && !secrets_bound(&P, "other.test"));
}

static void test_load_failures(void)
{
	struct policy q;

	memset(&q, 0, sizeof(q));
	add_secret(&q, "NOPE", SECRET_ENV, "AJT_UNSET_VARIABLE", "x.test");
	CHECK(secrets_load(&q) < 0);
	memset(&q, 0, sizeof(q));
	add_secret(&q, "FAIL", SECRET_CMD, "exit 3", "x.test");
	CHECK(secrets_load(&q) < 0);
	memset(&q, 0, sizeof(q));
	add_secret(&q, "BIG", SECRET_CMD, "head -c 70000 /dev/zero | tr '\\0' a", "x.test");
	CHECK(secrets_load(&q) < 0);
	memset(&q, 0, sizeof(q));
	add_secret(&q, "CRLF", SECRET_CMD, "printf 'abcdefgh\\r\\nX-Evil: 1'", "x.test");
	CHECK(secrets_load(&q) < 0);
	memset(&q, 0, sizeof(q));
	add_secret(&q, "SHORT", SECRET_CMD, "echo abc", "x.test");
	CHECK(secrets_load(&q) < 0);
	memset(&q, 0, sizeof(q));
	add_secret(&q, "MISSING", SECRET_FILE, "/nonexistent/secret", "x.test");
	CHECK(secrets_load(&q) < 0);
}

static void test_subst(void)
{
	const char *gh = P.secrets.v[0].placeholder, *cmd = P.secrets.v[2].placeholder;
	struct sbuf out = {0};
	uint64_t used = 0;
	char in[512], b64[512], want[1200];
	size_t n;

	snprintf(in, sizeof(in), "token %s", gh);
	secrets_subst_raw(&P, "api.example.test", in, strlen(in), &out, &used);
	CHECK(out.n == strlen("token " GH_VALUE) && !strcmp(out.v, "token " GH_VALUE));
	CHECK(used == 1);

	/* not bound to this host: left alone */
	out.n = 0;
	used = 0;
	secrets_subst_raw(&P, "other.test", in, strlen(in), &out, &used);
	CHECK(!strcmp(out.v, in) && used == 0);

	/* Basic: decode, replace, re-encode (git sends tokens as the password) */
	snprintf(in, sizeof(in), "x-access-token:%s", gh);
	b64_encode((const unsigned char *)in, strlen(in), b64);
	out.n = 0;
	used = 0;
	secrets_subst_basic(&P, "api.example.test", b64, strlen(b64), &out, &used);
	b64_encode((const unsigned char *)"x-access-token:" GH_VALUE,
		   strlen("x-access-token:" GH_VALUE), want);
	CHECK(used == 1 && !strcmp(out.v, want));
	out.n = 0;
	used = 0;
	secrets_subst_basic(&P, "api.example.test", "bm90OmEtdG9rZW4=", 16, &out, &used);
	CHECK(used == 0 && !strcmp(out.v, "bm90OmEtdG9rZW4="));

	/* query: only for a secret with in_query, and percent-encoded */
	snprintf(in, sizeof(in), "a=1&key=%s&gh=%s", cmd, gh);
	out.n = 0;
	used = 0;
	secrets_subst_query(&P, "api.example.test", in, strlen(in), &out, &used);
	n = pct_encode(CMD_VALUE, strlen(CMD_VALUE), b64);
	b64[n] = '\0';
	snprintf(want, sizeof(want), "a=1&key=%s&gh=%s", b64, gh);
	CHECK(used == 4 && !strcmp(out.v, want));
	sbuf_free(&out);
}

static void test_exfil(void)
{
	const char *gh = P.secrets.v[0].placeholder;
	char in[1024], b[1024], pct[1024];
	size_t n;

	snprintf(in, sizeof(in), "GET /?t=%s HTTP/1.1\r\n", gh);
	CHECK(secrets_exfil_scan(&P, "api.example.test", in, strlen(in)) == NULL); /* bound */
	CHECK(!strcmp(secrets_exfil_scan(&P, "other.test", in, strlen(in)), "GH"));
	CHECK(secrets_exfil_scan(&P, "other.test", "GET / HTTP/1.1\r\n", 16) == NULL);

	/* base64 at every alignment, inside longer text, standard and URL-safe */
	for (int pre = 0; pre < 3; pre++) {
		snprintf(in, sizeof(in), "%.*suser:%s:tail", pre, "xyz", gh);
		n = b64_encode((const unsigned char *)in, strlen(in), b);
		CHECK(!strcmp(secrets_exfil_scan(&P, "other.test", b, n), "GH"));
		for (size_t i = 0; i < n; i++)
			b[i] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : b[i];
		CHECK(!strcmp(secrets_exfil_scan(&P, "other.test", b, n), "GH"));
	}
	/* every character percent-encoded, then twice */
	n = 0;
	for (const char *c = gh; *c; c++)
		n += (size_t)sprintf(pct + n, "%%%02X", (unsigned char)*c);
	CHECK(!strcmp(secrets_exfil_scan(&P, "other.test", pct, n), "GH"));
	n = 0;
	for (const char *c = gh; *c; c++)
		n += (size_t)sprintf(b + n, "%%25%02x", (unsigned char)*c);
	CHECK(!strcmp(secrets_exfil_scan(&P, "other.test", b, n), "GH"));
	/* hex */
	n = 0;
	for (const char *c = gh; *c; c++)
		n += (size_t)sprintf(b + n, "%02x", (unsigned char)*c);
	CHECK(!strcmp(secrets_exfil_scan(&P, "other.test", b, n), "GH"));
	/* base64 then percent-encoded (a form field) */
	snprintf(in, sizeof(in), "%s", P.secrets.v[2].placeholder);
	n = b64_encode((const unsigned char *)in, strlen(in), b);
	n = pct_encode(b, n, pct);
	CHECK(!strcmp(secrets_exfil_scan(&P, "example.test", pct, n), "CMD"));
}

/* The body with the value split at every position across two pieces. */
static void test_redaction(void)
{
	const char *ph = P.secrets.v[0].placeholder;
	char body[256], want[256];
	size_t bl;

	snprintf(body, sizeof(body), "{\"echo\":\"%s\",\"again\":\"%s\"}", GH_VALUE, GH_VALUE);
	snprintf(want, sizeof(want), "{\"echo\":\"%s\",\"again\":\"%s\"}", ph, ph);
	bl = strlen(body);
	for (size_t cut = 0; cut <= bl; cut++) {
		struct redact_stream r;
		struct sbuf got = {0};
		const char *o;
		size_t ol;

		secrets_redact_init(&r);
		secrets_redact_feed(&r, body, cut, &o, &ol);
		sbuf_add(&got, o, ol);
		secrets_redact_feed(&r, body + cut, bl - cut, &o, &ol);
		sbuf_add(&got, o, ol);
		secrets_redact_finish(&r, &o, &ol);
		sbuf_add(&got, o, ol);
		CHECK(got.n == bl && !memcmp(got.v, want, bl));
		secrets_redact_free(&r);
		sbuf_free(&got);
	}
	/* byte by byte */
	{
		struct redact_stream r;
		struct sbuf got = {0};
		const char *o;
		size_t ol;

		secrets_redact_init(&r);
		for (size_t i = 0; i < bl; i++) {
			secrets_redact_feed(&r, body + i, 1, &o, &ol);
			sbuf_add(&got, o, ol);
		}
		secrets_redact_finish(&r, &o, &ol);
		sbuf_add(&got, o, ol);
		CHECK(got.n == bl && !memcmp(got.v, want, bl));
		secrets_redact_free(&r);
		sbuf_free(&got);
	}
	/* an echoed Basic header: base64 of the value at any alignment */
	for (int pre = 0; pre < 3; pre++) {
		char plain[128], enc[256];
		unsigned char dec[256];
		ssize_t dl;

		snprintf(plain, sizeof(plain), "%.*sx-access-token:%s", pre, "abc", GH_VALUE);
		b64_encode((const unsigned char *)plain, strlen(plain), enc);
		bl = strlen(enc);
		CHECK(secrets_redact_buf(enc, bl) == 1 && strlen(enc) == bl);
		dl = b64_decode(enc, bl, dec);
		CHECK(dl > 0);
		dec[dl > 0 ? dl : 0] = '\0';
		/* at most 2 bytes of the value at each end survive, sharing a group with the
		 * text around it */
		CHECK(!memmem(dec, (size_t)dl, GH_VALUE + 2, 5) && !strstr((char *)dec, GH_VALUE));
		CHECK(memmem(dec, (size_t)dl, ph + 3, strlen(ph) - 6) != NULL);
	}
	memcpy(body, "X-Echo: " NPM_VALUE, sizeof("X-Echo: " NPM_VALUE));
	CHECK(secrets_redact_buf(body, strlen(body)) == 1 && !strstr(body, NPM_VALUE) &&
	      strstr(body, P.secrets.v[1].placeholder));
}

int main(void)
{
	test_placeholders();
	test_codecs();
	test_hosts();
	test_load_failures();
	test_load();
	test_subst();
	test_exfil();
	test_redaction();
	secrets_wipe();
	CHECK(secrets_value(0, &(size_t){0}) == NULL);
	printf("test_secrets: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
