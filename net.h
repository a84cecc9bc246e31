/*
 * net.h - host names, host patterns and addresses for the proxy's policy.
 *
 * Names are compared normalised: lower case, no trailing dot, IPv6 without brackets.
 * Patterns (struct host_rule.pattern): "example.com" matches only itself, "*.example.com"
 * any name below it but not the apex, "*" any name (never an address), an IP literal only
 * that address, "ADDR/LEN" a prefix. Name patterns never match IP literals and address
 * patterns never match names.
 */
#ifndef AGENTJAIL_NET_H
#define AGENTJAIL_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "policy.h"

#define NET_HOST_MAX   256 /* a DNS name is at most 253 characters */
#define NET_ADDRSTR_MAX 64

/* Normalise in into out (see above). 0, or -1 when it is not a plausible host. */
int net_normalize_host(const char *in, char *out, size_t outsz);

/* Parse an IPv4 (dotted quad only) or IPv6 literal. 0 or -1. */
int net_parse_ip(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* True for an IP literal, and for the legacy IPv4 forms inet_aton accepts ("127.1",
 * "0x7f.0.0.1", "2130706433"), which the proxy refuses outright. */
bool net_is_ip_literal(const char *host);
bool net_is_legacy_ipv4(const char *host);

/* Does the (normalised) name or IP literal host match pattern? */
bool net_pattern_match(const char *pattern, const char *host);
/* Does the address fall in the IP-literal or prefix pattern? */
bool net_pattern_match_addr(const char *pattern, const struct sockaddr *sa);

/* Does the rule's port (0 default, -1 any) admit port? Deny rules without a port deny
 * every port. */
bool net_port_match(const struct host_rule *r, int port, int default_port);

/*
 * Decide host:port against p->hosts: the first matching deny rule, else the first
 * matching allow rule, else NULL (not allowed). *denied tells which of the two it is.
 * Exposed for policy.c's policy_match_host().
 */
const struct host_rule *net_match_host(const struct policy *p, const char *host, int port,
				       int default_port, bool *denied);
/* The same for a dialled address against the IP rules: deny rules by port, allow rules
 * for any port (an allowed address is an allowance to dial it). */
const struct host_rule *net_match_addr(const struct policy *p, const struct sockaddr *sa,
				       int port, int default_port, bool *denied);

/*
 * Why an address must not be dialled without an explicit allowance: "loopback",
 * "private", "link-local", "CGNAT", "multicast", "unspecified", "cloud metadata",
 * "reserved", ... or NULL for an ordinary public address. IPv4-mapped, NAT64 and 6to4
 * IPv6 addresses are judged by the IPv4 address they carry.
 */
const char *net_addr_special(const struct sockaddr *sa);

/* Numeric text of an address (no port). */
void net_addr_str(const struct sockaddr *sa, char *buf, size_t n);

#endif
