/*
 * test_fuzz_regress.c - regression tests for what the fuzzers in fuzz/ found and what has
 * been fixed since (see docs/security.md). Each input is also a seed in
 * fuzz/corpus/<harness>/regress-*, replayed under ASan/UBSan by test/fuzz.bats.
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "net.h"
#include "policy.h"
#include "secrets.h"
#include "secrets_codec.h"
#include "util.h"

#include "check.h"

static struct http_span span(const char *s)
{
	return (struct http_span){ s, strlen(s) };
}

/* fuzz_net: the secret binding and the policy must agree on a parsed CONNECT host. */
static void host_binding_agrees(const char *target, const char *pattern)
{
	char host[NET_HOST_MAX], norm[NET_HOST_MAX];
	int port;

	if (http_parse_authority(span(target), host, sizeof(host), &port) < 0)
		return; /* refused outright: agreement by construction */
	if (net_normalize_host(host, norm, sizeof(norm)) < 0)
		return;
	CHECK(secrets_host_match(pattern, host) == net_pattern_match(pattern, norm));
}

/* fuzz_net: an IPv4-mapped IPv6 address pattern matches that address. */
static void mapped_pattern_matches(void)
{
	struct sockaddr_storage ss;
	socklen_t l;

	CHECK(net_parse_ip("::ffff:10.0.0.1", &ss, &l) == 0);
	CHECK(net_pattern_match_addr("::ffff:10.0.0.1", (struct sockaddr *)&ss));
	CHECK(net_pattern_match_addr("::ffff:0:0/96", (struct sockaddr *)&ss));
}

/* fuzz_net: a parsed host has no trailing dot (http.h). */
static void no_trailing_dot(void)
{
	char host[NET_HOST_MAX];
	int port;

	if (http_parse_authority(span("a.example.test..:443"), host, sizeof(host), &port) == 0)
		CHECK(host[strlen(host) - 1] != '.');
}

/* fuzz_secrets: secrets_exfil_scan() frees its percent-decoding buffer on every return. */
static void exfil_scan_does_not_leak(void)
{
	struct policy p;
	struct secret_rule *s;
	char buf[256];
	size_t before, after;

	memset(&p, 0, sizeof(p));
	setenv("AJ_REGRESS_A", "ghp_Regress0123456789abcdefABCDEFghijklmn", 1);
	setenv("AJ_REGRESS_B", "sk-regress-0123456789abcdefABCDEF", 1);
	s = VEC_PUSH(p.secrets);
	s->name = xstrdup("AJ_REGRESS_A");
	*VEC_PUSH(s->hosts) = xstrdup("a.example.test");
	s = VEC_PUSH(p.secrets);
	s->name = xstrdup("AJ_REGRESS_B");
	*VEC_PUSH(s->hosts) = xstrdup("b.example.test");
	if (secrets_load(&p) < 0) {
		CHECK(!"secrets_load");
		return;
	}
	/* a '%' makes the scan decode (secret A), then secret B's placeholder is a raw hit */
	snprintf(buf, sizeof(buf), "x=%%41&y=%s", p.secrets.v[1].placeholder);
	before = mallinfo2().uordblks;
	for (int i = 0; i < 1000; i++)
		CHECK(secrets_exfil_scan(&p, "evil.test", buf, strlen(buf)) != NULL);
	after = mallinfo2().uordblks;
	CHECK(after - before < 1000); /* 1000 leaked buffers would be tens of kB */
	secrets_wipe();
}

int main(void)
{
	/* fuzz_net, fuzz_preamble: a bracketed name with a port, and extra trailing dots */
	host_binding_agrees("[x.example.test:1]:443", "*.example.test");
	host_binding_agrees("[api.example.test:1]:443", "api.example.test");
	host_binding_agrees("api.example.test...:443", "api.example.test");
	host_binding_agrees("API.Example.Test.:443", "api.example.test");
	host_binding_agrees("a.b.example.test:8443", "*.example.test");
	/* fuzz_net: IPv4-mapped address patterns; hosts keep no trailing dot */
	mapped_pattern_matches();
	no_trailing_dot();
	/* fuzz_secrets: the guard's decoding buffer on a raw hit of a later secret */
	exfil_scan_does_not_leak();
	if (failed)
		fprintf(stderr, "%d failed\n", failed);
	return failed ? 1 : 0;
}
