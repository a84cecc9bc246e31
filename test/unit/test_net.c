/* test_net.c - net.c: normalisation, host patterns, rules, address classes */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "util.h"

#include "check.h"

static const char *special(const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t l;

	if (net_parse_ip(ip, &ss, &l) < 0)
		return "PARSE-ERROR";
	return net_addr_special((struct sockaddr *)&ss);
}

static bool str_is(const char *a, const char *b)
{
	return a && b ? strcmp(a, b) == 0 : a == b;
}

static void add(struct policy *p, const char *pat, int port, bool deny, const char *origin)
{
	struct host_rule *r = VEC_PUSH(p->hosts);

	r->pattern = xstrdup(pat);
	r->port = port;
	r->deny = deny;
	snprintf(r->origin, sizeof(r->origin), "%s", origin);
}

int main(void)
{
	char buf[NET_HOST_MAX];
	struct policy p;
	const struct host_rule *r;
	bool denied;

	CHECK(net_normalize_host("Example.COM.", buf, sizeof(buf)) == 0 && !strcmp(buf, "example.com"));
	CHECK(net_normalize_host("[::1]", buf, sizeof(buf)) == 0 && !strcmp(buf, "::1"));
	CHECK(net_normalize_host("a b", buf, sizeof(buf)) < 0);
	CHECK(net_normalize_host(".", buf, sizeof(buf)) < 0);

	CHECK(net_pattern_match("example.com", "example.com"));
	CHECK(!net_pattern_match("example.com", "www.example.com"));
	CHECK(net_pattern_match("*.example.com", "www.example.com"));
	CHECK(net_pattern_match("*.example.com", "a.b.example.com"));
	CHECK(!net_pattern_match("*.example.com", "example.com"));
	CHECK(!net_pattern_match("*.example.com", "badexample.com"));
	CHECK(net_pattern_match("*", "anything.test"));
	CHECK(!net_pattern_match("*", "10.0.0.1"));
	CHECK(net_pattern_match("10.0.0.0/8", "10.2.3.4"));
	CHECK(!net_pattern_match("10.0.0.0/8", "11.2.3.4"));
	CHECK(net_pattern_match("::1", "::1"));
	CHECK(net_pattern_match("fd00::/8", "fd12::5"));
	CHECK(!net_pattern_match("10.0.0.1", "ten.example"));

	CHECK(net_is_ip_literal("127.0.0.1") && net_is_ip_literal("::ffff:1.2.3.4"));
	CHECK(net_is_legacy_ipv4("2130706433") && net_is_legacy_ipv4("127.1") &&
	      net_is_legacy_ipv4("0x7f.0.0.1"));
	CHECK(!net_is_legacy_ipv4("127.0.0.1") && !net_is_legacy_ipv4("example.com"));

	CHECK(str_is(special("127.0.0.1"), "loopback"));
	CHECK(str_is(special("10.1.1.1"), "private"));
	CHECK(str_is(special("172.31.0.1"), "private"));
	CHECK(special("172.32.0.1") == NULL);
	CHECK(str_is(special("192.168.1.1"), "private"));
	CHECK(str_is(special("100.64.0.1"), "CGNAT"));
	CHECK(str_is(special("169.254.169.254"), "cloud metadata"));
	CHECK(str_is(special("169.254.1.1"), "link-local"));
	CHECK(str_is(special("0.0.0.0"), "unspecified"));
	CHECK(str_is(special("224.0.0.1"), "multicast"));
	CHECK(str_is(special("255.255.255.255"), "reserved"));
	CHECK(special("93.184.216.34") == NULL);
	CHECK(str_is(special("::1"), "loopback"));
	CHECK(str_is(special("::"), "unspecified"));
	CHECK(str_is(special("fd00:ec2::254"), "cloud metadata"));
	CHECK(str_is(special("fd12::1"), "private"));
	CHECK(str_is(special("fe80::1"), "link-local"));
	CHECK(str_is(special("ff02::1"), "multicast"));
	CHECK(str_is(special("::ffff:127.0.0.1"), "loopback"));
	CHECK(str_is(special("64:ff9b::a00:1"), "private"));   /* NAT64 of 10.0.0.1 */
	CHECK(str_is(special("2002:a9fe:a9fe::1"), "cloud metadata")); /* 6to4 */
	CHECK(special("2606:4700::1111") == NULL);

	memset(&p, 0, sizeof(p));
	add(&p, "*.example.com", 0, false, "a.ini:1");
	add(&p, "bad.example.com", 0, true, "--deny");
	add(&p, "api.example.com", 8443, false, "--allow");
	add(&p, "any.test", -1, false, "--allow");
	add(&p, "10.0.0.0/8", 0, true, "--deny");
	add(&p, "192.168.1.5", 0, false, "--allow");

	r = net_match_host(&p, "WWW.example.com.", 443, 443, &denied);
	CHECK(r && !denied && !strcmp(r->origin, "a.ini:1"));
	CHECK(!net_match_host(&p, "www.example.com", 8443, 443, &denied) && !denied);
	CHECK(net_match_host(&p, "www.example.com", 80, 80, &denied) && !denied);
	r = net_match_host(&p, "bad.example.com", 8080, 443, &denied);
	CHECK(r && denied); /* a deny rule without a port denies every port */
	CHECK(net_match_host(&p, "api.example.com", 8443, 443, &denied) && !denied);
	CHECK(!net_match_host(&p, "example.com", 443, 443, &denied));
	CHECK(net_match_host(&p, "any.test", 1, 443, &denied) && !denied);
	CHECK(net_match_host(&p, "10.1.1.1", 443, 443, &denied) && denied);
	CHECK(net_match_host(&p, "192.168.1.5", 443, 443, &denied) && !denied);
	CHECK(!net_match_host(&p, "192.168.1.5", 444, 443, &denied));
	{
		struct sockaddr_storage ss;
		socklen_t l;

		net_parse_ip("192.168.1.5", &ss, &l);
		/* an allowed address may be dialled on any port a name rule allowed */
		CHECK(net_match_addr(&p, (struct sockaddr *)&ss, 444, 443, &denied) && !denied);
		net_parse_ip("::ffff:10.9.9.9", &ss, &l);
		CHECK(net_match_addr(&p, (struct sockaddr *)&ss, 443, 443, &denied) && denied);
		net_parse_ip("1.1.1.1", &ss, &l);
		CHECK(!net_match_addr(&p, (struct sockaddr *)&ss, 443, 443, &denied));
		net_addr_str((struct sockaddr *)&ss, buf, sizeof(buf));
		CHECK(!strcmp(buf, "1.1.1.1"));
	}
	for (size_t i = 0; i < p.hosts.n; i++)
		free(p.hosts.v[i].pattern);
	free(p.hosts.v);
	if (failed)
		fprintf(stderr, "%d failed\n", failed);
	else
		printf("test_net: ok\n");
	return failed ? 1 : 0;
}
