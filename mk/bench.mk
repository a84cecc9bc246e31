# mk/bench.mk - benchmarks against bubblewrap, direct connections, squid, tinyproxy and
# mitmproxy (included by Makefile).  See bench/README.md for what each measures and the figures.
#
#   make bench             every benchmark (bench/start.sh, bench/proxy.sh, bench/intercept.sh)
#   make bench-start       one of them; also bench-proxy, bench-intercept
#   make bench BENCH_QUICK=1      fewer runs (a smoke test of the scripts, not figures)
#   make bench-start BENCH_PROFILE=1   also where agentjail's start-up time goes
#   make bench-deps        install the Debian packages they need, only those missing
#
# Started as root, each script runs itself as the unprivileged user ajtest (created if
# missing).  Loopback only; every run is bounded and stops by itself.

BENCH_CLIENT := build/bench/tlsclient
BENCH_DEBS   := nginx-light squid tinyproxy mitmproxy hyperfine wrk bubblewrap strace curl
# command that shows each package is there, in the same order as BENCH_DEBS
BENCH_CMDS   := nginx squid tinyproxy mitmdump hyperfine wrk bwrap strace curl
BENCH_ENV     = $(if $(BENCH_QUICK),BENCH_QUICK=1) $(if $(BENCH_PROFILE),BENCH_PROFILE=1) \
		AGENTJAIL=$(CURDIR)/agentjail BENCH_TLSCLIENT=$(CURDIR)/$(BENCH_CLIENT)

$(BENCH_CLIENT): bench/tlsclient.c | build
	@mkdir -p build/bench
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
		$(shell pkg-config --cflags openssl) -o $@ $< \
		$(shell pkg-config --libs openssl) -lpthread

# Each benchmark runs even when one before it failed; the target fails if any did.
bench: agentjail $(BENCH_CLIENT)
	@rc=0; for b in start proxy intercept; do \
		echo "### bench/$$b.sh"; \
		$(BENCH_ENV) bench/$$b.sh || rc=1; \
	done; exit $$rc

bench-start: agentjail
	$(BENCH_ENV) bench/start.sh
bench-proxy: agentjail $(BENCH_CLIENT)
	$(BENCH_ENV) bench/proxy.sh
bench-intercept: agentjail $(BENCH_CLIENT)
	$(BENCH_ENV) bench/intercept.sh

bench-deps:
	@missing=; set -- $(BENCH_CMDS); for p in $(BENCH_DEBS); do \
		c=$$1; shift; \
		command -v $$c >/dev/null 2>&1 || [ -x /usr/sbin/$$c ] || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "bench-deps: installing$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends $$missing; \
	else \
		echo "bench-deps: all present"; \
	fi

.PHONY: bench bench-start bench-proxy bench-intercept bench-deps
