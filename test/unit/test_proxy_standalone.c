/*
 * test_proxy_standalone.c - the proxy without a jail.
 *
 * Without arguments: a self-test (exit 0 on success) that starts the proxy, hands it a
 * listener on the host's 127.0.0.1, and checks a denied CONNECT, a bad request and the
 * shutdown. With --serve PORTFILE: a driver for shell tests and benchmarks; it serves until
 * SIGTERM/SIGINT, then stops the proxy (which prints its summary) and exits with 0.
 *
 *   test_proxy_standalone --serve PORTFILE [--allow P[:PORT]]... [--deny P[:PORT]]...
 *                         [--add-host NAME=ADDR]... [--log FILE] [-q]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy.h"
#include "proxy.h"
#include "util.h"

static void add_rule(struct policy *p, const char *spec, bool deny)
{
	struct host_rule *r = VEC_PUSH(p->hosts);
	const char *colon = strrchr(spec, ':');
	size_t n = strlen(spec);

	r->port = 0;
	/* "host:port", "host:*", "[v6]:port"; a bare IPv6 literal has several colons */
	if (colon && (spec[0] == '[' || strchr(spec, ':') == colon)) {
		r->port = strcmp(colon + 1, "*") == 0 ? -1 : atoi(colon + 1);
		n = (size_t)(colon - spec);
	}
	if (spec[0] == '[') {
		spec++;
		n -= 2;
	}
	r->pattern = xstrndup(spec, n);
	r->deny = deny;
	snprintf(r->origin, sizeof(r->origin), "%s", deny ? "--deny" : "--allow");
}

static int listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4096) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		die_errno("listener");
	*port = ntohs(a.sin_port);
	return fd;
}

static int start(struct policy *p, struct proxy *px, int *port)
{
	int lfd;

	if (proxy_start(p, px) < 0)
		return -1;
	lfd = listener(port);
	if (proxy_send_listener(px->ctl, lfd) < 0)
		die_errno("proxy_send_listener");
	close(lfd);
	return 0;
}

static int serve(int argc, char **argv)
{
	struct policy p;
	struct proxy px;
	const char *portfile = NULL;
	sigset_t set;
	int port, sig, st;
	FILE *f;

	memset(&p, 0, sizeof(p));
	p.net = NET_PROXY;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--serve") && v)
			portfile = argv[++i];
		else if (!strcmp(a, "--allow") && v)
			add_rule(&p, argv[++i], false);
		else if (!strcmp(a, "--deny") && v)
			add_rule(&p, argv[++i], true);
		else if (!strcmp(a, "--add-host") && v && strchr(v, '=')) {
			struct host_map *m = VEC_PUSH(p.host_maps);

			m->name = xstrndup(v, (size_t)(strchr(v, '=') - v));
			m->addr = xstrdup(strchr(v, '=') + 1);
			snprintf(m->origin, sizeof(m->origin), "--add-host");
			i++;
		} else if (!strcmp(a, "--log") && v)
			p.log_path = argv[++i];
		else if (!strcmp(a, "--upstream-ca") && v)
			p.upstream_ca = argv[++i];
		else if (!strcmp(a, "-q"))
			p.quiet = true;
		else
			die("usage: %s --serve PORTFILE [--allow P]... [--deny P]... "
			    "[--add-host N=A]... [--log F] [-q]", argv[0]);
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (start(&p, &px, &port) < 0)
		return 125;
	f = fopen(portfile, "w");
	if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0)
		die_errno("%s", portfile);
	printf("%d\n", (int)px.pid);
	fflush(stdout);
	while (sigwait(&set, &sig) != 0)
		;
	st = proxy_stop(&px);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- self-test ---- */

#include "check.h"

/* Send req to the proxy, return what it answered (until close), NUL-ended. */
static char *exchange(int port, const char *req)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	static char buf[8192];
	size_t n = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die_errno("connect to the proxy");
	if (write_all(fd, req, strlen(req)) < 0)
		die_errno("write");
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);

		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	close(fd);
	return buf;
}

static int selftest(void)
{
	struct policy p;
	struct proxy px;
	char *r;
	int port, st;

	memset(&p, 0, sizeof(p));
	p.net = NET_PROXY;
	p.quiet = true;
	add_rule(&p, "*.allowed.test", false);
	add_rule(&p, "bad.allowed.test", true);
	add_rule(&p, "localhost:*", false);
	if (start(&p, &px, &port) < 0)
		return 1;

	r = exchange(port, "CONNECT billing-debug.external.dev:443 HTTP/1.1\r\n"
			   "Host: billing-debug.external.dev:443\r\n\r\n");
	CHECK(strncmp(r, "HTTP/1.1 403 ", 13) == 0);
	CHECK(strstr(r, "X-Agentjail-Reason: agentjail: CONNECT billing-debug.external.dev:443 "
			"denied: not in the allowlist; to allow it run with --allow "
			"billing-debug.external.dev\r\n") != NULL);

	r = exchange(port, "CONNECT allowed.test:443 HTTP/1.1\r\n\r\n");
	CHECK(strstr(r, "403") && strstr(r, "not in the allowlist")); /* apex */
	r = exchange(port, "CONNECT bad.allowed.test:443 HTTP/1.1\r\n\r\n");
	CHECK(strstr(r, "403") && strstr(r, "deny rules win"));
	r = exchange(port, "CONNECT a.allowed.test:8443 HTTP/1.1\r\n\r\n");
	CHECK(strstr(r, "403") && strstr(r, "--allow a.allowed.test:8443"));
	r = exchange(port, "CONNECT 10.1.2.3:443 HTTP/1.1\r\n\r\n");
	CHECK(strstr(r, "403") && strstr(r, "explicit IP rule"));
	r = exchange(port, "CONNECT localhost:9 HTTP/1.1\r\n\r\n");
	CHECK(strstr(r, "403") && strstr(r, "loopback address"));
	r = exchange(port, "GET http://x.test/ HTTP/1.1\r\nHost: other.test\r\n\r\n");
	CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
	r = exchange(port, "GARBAGE\x01 / HTTP/1.1\r\n\r\n");
	CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
	r = exchange(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0 && strstr(r, "egress proxy"));

	st = proxy_stop(&px);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (failed)
		fprintf(stderr, "%d failed\n", failed);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1)
		return serve(argc, argv);
	return selftest();
}
