/*
 * fuzz_preamble.c - what the jail can send the proxy on a new connection, before any TLS
 * is terminated: the request head in arbitrary read sizes, then (after a CONNECT to a
 * host with a bound secret) the bytes the proxy hands to its TLS server, i.e. a
 * ClientHello with SNI.
 *
 * proxy.c has no side-effect-free entry point for one connection, so this harness walks
 * the same decisions with the modules proxy.c calls, in its order (see DESIGN.md and
 * proxy.h): parse the head as it arrives (bounded, *scan resumed), refuse what is
 * malformed, take the target (CONNECT authority or absolute URI), refuse legacy IPv4
 * forms, decide the host against a fixed allowlist, run the exfiltration guard over the
 * head, frame a body, answer with http_format_error. For an allowed CONNECT to the bound
 * host the rest of the input is written to a socketpair and tls_accept_client() runs on
 * it (OpenSSL parses the ClientHello; tls.c checks the SNI).
 *
 * Checks: no memory error; a head over HTTP_MAX_HEAD is never accepted; the error answer
 * never carries a CR or LF from the request into its head (response splitting); a host
 * the allowlist does not name is never allowed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "harness.h"
#include "http.h"
#include "net.h"
#include "policy.h"
#include "secrets.h"
#include "secrets_codec.h"
#include "tls.h"
#include "tls_session.h"
#include "util.h"

#define BOUND_HOST "api.example.test"

static struct policy pol;
static struct http_request req;

static void add_host(const char *pattern, int port, bool deny)
{
	struct host_rule *r = VEC_PUSH(pol.hosts);

	r->pattern = xstrdup(pattern);
	r->port = port;
	r->deny = deny;
	snprintf(r->origin, sizeof(r->origin), "fuzz");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct secret_rule *s;

	memset(&pol, 0, sizeof(pol));
	add_host(BOUND_HOST, 0, false);
	add_host("*.example.test", -1, false);
	add_host("deny.example.test", 0, true);
	add_host("10.0.0.0/8", 0, true);
	s = VEC_PUSH(pol.secrets);
	s->name = xstrdup("FUZZ_TOKEN");
	s->source = SECRET_ENV;
	*VEC_PUSH(s->hosts) = xstrdup(BOUND_HOST);
	setenv("FUZZ_TOKEN", "ghp_Fz9aQ3LmX7pT2wKc8RbN5vY1sD4hJ6eU0gIo", 1);
	if (secrets_load(&pol) < 0 || tls_init(&pol) < 0)
		abort();
	return 0;
}

/* The error answer the proxy would send, checked for response splitting. */
static void answer(int status, const char *host)
{
	char body[512], out[2048];
	int n;

	snprintf(body, sizeof(body), "agentjail: %s is not allowed (add --allow %s)\n",
		 host ? host : "?", host ? host : "?");
	n = http_format_error(out, sizeof(out), status, NULL, body);
	if (n > 0) {
		const char *end = memmem(out, (size_t)n, "\r\n\r\n", 4);
		size_t lines = 0;

		FUZZ_CHECK(end != NULL);
		for (const char *c = out; c < end; c++)
			lines += *c == '\n';
		/* status line + Content-Length, Content-Type, Connection: nothing injected */
		FUZZ_CHECK(lines <= 3);
	}
}

static void tls_stage(const uint8_t *p, size_t n)
{
	int sv[2];
	char why[256];
	SSL *ssl;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	if (n > 16384)
		n = 16384; /* fits the socket buffer: the write cannot block */
	if (write_all(sv[1], p, n) == 0 && shutdown(sv[1], SHUT_WR) == 0) {
		ssl = tls_accept_client(sv[0], BOUND_HOST, why, sizeof(why));
		/* No Finished can be forged without the keys: the handshake never completes. */
		if (ssl)
			tls_close(ssl);
		FUZZ_CHECK(strlen(why) < sizeof(why));
	}
	close(sv[0]);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	size_t step = fuzz_byte(&in) * 16 + 1, got = 0, scan = 0;
	char *buf = fuzz_dup(in.p, in.n);
	char host[NET_HOST_MAX];
	const struct host_rule *rule = NULL;
	bool denied = false, connect;
	int rc = 0, port = 0;

	/* The head arrives in reads of `step` bytes. */
	while (got < in.n && rc == 0) {
		got = got + step < in.n ? got + step : in.n;
		rc = http_parse_request(buf, got, &scan, &req);
	}
	if (rc <= 0) {
		if (rc < 0)
			answer(-rc, NULL);
		goto out;
	}
	FUZZ_CHECK(rc <= HTTP_MAX_HEAD && (size_t)rc <= got);
	connect = http_span_eq(req.method, "CONNECT");
	if (connect) {
		if (http_parse_authority(req.target, host, sizeof(host), &port) < 0)
			goto bad;
	} else {
		struct http_span path;

		if (http_parse_absolute_uri(req.target, "http", 80, host, sizeof(host), &port,
					    &path) < 0)
			goto bad;
	}
	if (net_is_legacy_ipv4(host))
		goto bad;
	rule = net_match_host(&pol, host, port, connect ? 443 : 80, &denied);
	if (rule && denied) {
		answer(403, host);
		goto out;
	}
	/* proxy.c decide_host(): a secret bound to the host implies it on the default port. */
	if (!rule && !(!net_is_ip_literal(host) && port == (connect ? 443 : 80) &&
		       secrets_bound(&pol, host))) {
		answer(403, host);
		goto out;
	}
	/*
	 * Allowed: the host, normalised as the policy sees it, is one the allowlist or the
	 * secret binding names (the same pattern language), and not the denied one.
	 */
	{
		char norm[NET_HOST_MAX];

		FUZZ_CHECK(net_normalize_host(host, norm, sizeof(norm)) == 0);
		if (!(net_pattern_match("*.example.test", norm) ||
		      net_pattern_match(BOUND_HOST, norm))) {
			fprintf(stderr, "allowed host \"%s\" (normalised \"%s\") is named by no rule\n",
				host, norm);
			FUZZ_CHECK(!"an allowed host is named by a rule");
		}
		FUZZ_CHECK(strcmp(norm, "deny.example.test") != 0);
	}
	if (secrets_exfil_scan(&pol, host, buf, (size_t)rc)) {
		answer(403, host);
		goto out;
	}
	if (connect) {
		if (secrets_bound(&pol, host) && in.n > (size_t)rc)
			tls_stage(in.p + rc, in.n - (size_t)rc);
	} else {
		enum http_body kind;
		uint64_t blen;

		if (http_request_body(&req, &kind, &blen) < 0)
			goto bad;
	}
	goto out;
bad:
	answer(400, NULL);
out:
	free(buf);
	return 0;
}
