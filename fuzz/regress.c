/*
 * fuzz/regress.c - regression tests for what the fuzzers in fuzz/ found (see
 * docs/security.md), as plain unit checks: `make fuzz-regress` builds and runs it.
 * Each input here is also a seed in fuzz/corpus/<harness>/regress-*, which test/fuzz.bats
 * replays under ASan/UBSan. Findings fixed since moved to test/unit/test_fuzz_regress.c;
 * what is left here is still open.
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

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static struct http_span span(const char *s)
{
	return (struct http_span){ s, strlen(s) };
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

int main(void)
{
	mapped_pattern_matches();
	no_trailing_dot();
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures ? 1 : 0;
}
