/* net.c - host normalisation, host patterns, address classification (see net.h) */
#include "net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int net_normalize_host(const char *in, char *out, size_t outsz)
{
	size_t n = strlen(in), i;

	if (n >= 2 && in[0] == '[' && in[n - 1] == ']') {
		in++;
		n -= 2;
	}
	if (n && in[n - 1] == '.')
		n--;
	if (n == 0 || n >= outsz || n > 253)
		return -1;
	/* empty labels: not a name (one trailing dot, the root, was removed above) */
	if (in[0] == '.' || in[n - 1] == '.' || memmem(in, n, "..", 2))
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '.' ||
		      c == '_' || c == ':' || c == '*'))
			return -1;
		out[i] = (char)c;
	}
	out[n] = 0;
	return 0;
}

int net_parse_ip(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(s, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, s, &a->sin6_addr) != 1)
			return -1;
		a->sin6_family = AF_INET6;
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, s, &a->sin_addr) != 1)
			return -1;
		a->sin_family = AF_INET;
		*len = sizeof(*a);
	}
	return 0;
}

bool net_is_legacy_ipv4(const char *host)
{
	struct in_addr a;

	/* all digits, dots and hex: inet_aton would take it as an address */
	return inet_aton(host, &a) != 0 && inet_pton(AF_INET, host, &a) != 1;
}

bool net_is_ip_literal(const char *host)
{
	struct sockaddr_storage ss;
	socklen_t l;

	return net_parse_ip(host, &ss, &l) == 0 || net_is_legacy_ipv4(host);
}

/* IP literal or prefix pattern -> family, address bytes, prefix length */
static int parse_prefix(const char *pattern, int *family, unsigned char addr[16], int *plen)
{
	char buf[NET_ADDRSTR_MAX];
	const char *slash = strchr(pattern, '/');
	size_t n = slash ? (size_t)(slash - pattern) : strlen(pattern);
	int max;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, pattern, n);
	buf[n] = 0;
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		*family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	*plen = max;
	if (slash) {
		char *end;
		long v = strtol(slash + 1, &end, 10);

		if (!slash[1] || *end || v < 0 || v > max)
			return -1;
		*plen = (int)v;
	}
	/*
	 * An IPv4-mapped IPv6 pattern (::ffff:a.b.c.d[/96+n]) means the IPv4 addresses it
	 * carries: addresses are compared that way (addr_bytes), so patterns must be too,
	 * or such a rule would never match.
	 */
	if (*family == AF_INET6 && *plen >= 96 &&
	    !memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12)) {
		memmove(addr, addr + 12, 4);
		*family = AF_INET;
		*plen -= 96;
	}
	return 0;
}

static bool prefix_eq(const unsigned char *a, const unsigned char *b, int plen)
{
	int full = plen / 8, rem = plen % 8;

	if (memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rem) {
		unsigned char mask = (unsigned char)(0xff << (8 - rem));

		return (a[full] & mask) == (b[full] & mask);
	}
	return true;
}

/* The address bytes of sa; IPv4-mapped IPv6 is reported as IPv4. */
static int addr_bytes(const struct sockaddr *sa, unsigned char out[16])
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (memcmp(b, mapped, 12) == 0) {
			memcpy(out, b + 12, 4);
			return AF_INET;
		}
		memcpy(out, b, 16);
		return AF_INET6;
	}
	return -1;
}

bool net_pattern_match_addr(const char *pattern, const struct sockaddr *sa)
{
	unsigned char want[16], have[16];
	int fam, plen, hfam;

	if (parse_prefix(pattern, &fam, want, &plen) < 0)
		return false;
	hfam = addr_bytes(sa, have);
	return hfam == fam && prefix_eq(want, have, plen);
}

bool net_pattern_match(const char *pattern, const char *host)
{
	size_t pl, hl;

	if (net_is_ip_literal(host)) {
		struct sockaddr_storage ss;
		socklen_t l;

		if (net_parse_ip(host, &ss, &l) < 0)
			return false; /* legacy forms match nothing */
		return net_pattern_match_addr(pattern, (struct sockaddr *)&ss);
	}
	if (strcmp(pattern, "*") == 0)
		return true;
	if (pattern[0] == '*' && pattern[1] == '.') {
		/* "*.example.com": a proper subdomain, never the apex */
		pl = strlen(pattern + 1); /* ".example.com" */
		hl = strlen(host);
		return hl > pl && strcasecmp(host + hl - pl, pattern + 1) == 0;
	}
	return strcasecmp(pattern, host) == 0;
}

bool net_port_match(const struct host_rule *r, int port, int default_port)
{
	if (r->port < 0)
		return true;
	if (r->port == 0)
		return r->deny || port == default_port;
	return r->port == port;
}

static bool is_addr_pattern(const char *pattern)
{
	int fam, plen;
	unsigned char a[16];

	return parse_prefix(pattern, &fam, a, &plen) == 0;
}

const struct host_rule *net_match_host(const struct policy *p, const char *host, int port,
				       int default_port, bool *denied)
{
	char norm[NET_HOST_MAX];
	const struct host_rule *allow = NULL;

	*denied = false;
	if (net_normalize_host(host, norm, sizeof(norm)) < 0)
		return NULL;
	for (size_t i = 0; i < p->hosts.n; i++) {
		const struct host_rule *r = &p->hosts.v[i];
		char pat[NET_HOST_MAX];

		if (is_addr_pattern(r->pattern))
			snprintf(pat, sizeof(pat), "%s", r->pattern);
		else if (net_normalize_host(r->pattern, pat, sizeof(pat)) < 0)
			continue;
		if (!net_port_match(r, port, default_port) || !net_pattern_match(pat, norm))
			continue;
		if (r->deny) {
			*denied = true;
			return r;
		}
		if (!allow)
			allow = r;
	}
	return allow;
}

const struct host_rule *net_match_addr(const struct policy *p, const struct sockaddr *sa,
				       int port, int default_port, bool *denied)
{
	const struct host_rule *allow = NULL;

	*denied = false;
	for (size_t i = 0; i < p->hosts.n; i++) {
		const struct host_rule *r = &p->hosts.v[i];

		if (!is_addr_pattern(r->pattern) || !net_pattern_match_addr(r->pattern, sa))
			continue;
		if (r->deny) {
			if (!net_port_match(r, port, default_port))
				continue;
			*denied = true;
			return r;
		}
		if (!allow)
			allow = r;
	}
	return allow;
}

struct range {
	unsigned char net[16];
	int plen;
	const char *why;
};

static const struct range v4_ranges[] = {
	{ { 169, 254, 169, 254 }, 32, "cloud metadata" },
	{ { 100, 100, 100, 200 }, 32, "cloud metadata" },
	{ { 0 }, 8, "unspecified" },
	{ { 10 }, 8, "private" },
	{ { 100, 64 }, 10, "CGNAT" },
	{ { 127 }, 8, "loopback" },
	{ { 169, 254 }, 16, "link-local" },
	{ { 172, 16 }, 12, "private" },
	{ { 192, 0, 0 }, 24, "reserved" },
	{ { 192, 168 }, 16, "private" },
	{ { 198, 18 }, 15, "reserved" },
	{ { 224 }, 4, "multicast" },
	{ { 240 }, 4, "reserved" },
};

static const struct range v6_ranges[] = {
	{ { 0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54 }, 128, "cloud metadata" },
	{ { 0 }, 128, "unspecified" },
	{ { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, 128, "loopback" },
	{ { 0 }, 96, "reserved" }, /* IPv4-compatible (deprecated) */
	{ { 0xfc }, 7, "private" }, /* ULA */
	{ { 0xfe, 0x80 }, 10, "link-local" },
	{ { 0xfe, 0xc0 }, 10, "private" }, /* site-local (deprecated) */
	{ { 0xff }, 8, "multicast" },
	{ { 0x01, 0x00 }, 64, "reserved" }, /* discard-only */
};

const char *net_addr_special(const struct sockaddr *sa)
{
	static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b };
	unsigned char b[16];
	int fam = addr_bytes(sa, b);

	if (fam < 0)
		return "unsupported";
	if (fam == AF_INET6) {
		/* NAT64 well-known prefix and 6to4 carry an IPv4 address: judge that */
		if (memcmp(b, nat64, 12) == 0) {
			memmove(b, b + 12, 4);
			fam = AF_INET;
		} else if (b[0] == 0x20 && b[1] == 0x02) {
			memmove(b, b + 2, 4);
			fam = AF_INET;
		}
	}
	if (fam == AF_INET) {
		for (size_t i = 0; i < sizeof(v4_ranges) / sizeof(v4_ranges[0]); i++)
			if (prefix_eq(v4_ranges[i].net, b, v4_ranges[i].plen))
				return v4_ranges[i].why;
		if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
			return "broadcast";
		return NULL;
	}
	for (size_t i = 0; i < sizeof(v6_ranges) / sizeof(v6_ranges[0]); i++)
		if (prefix_eq(v6_ranges[i].net, b, v6_ranges[i].plen))
			return v6_ranges[i].why;
	return NULL;
}

void net_addr_str(const struct sockaddr *sa, char *buf, size_t n)
{
	const void *a = sa->sa_family == AF_INET6
				? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
				: (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

	if (!inet_ntop(sa->sa_family, a, buf, (socklen_t)n))
		snprintf(buf, n, "?");
}
