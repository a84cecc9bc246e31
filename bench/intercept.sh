#!/bin/bash
# bench/intercept.sh - credential injection (TLS interception) against direct TLS and against
# mitmproxy (issue 5, Speed).  Same machine, same run, loopback only, as an unprivileged user.
#
# Upstream: nginx on 127.0.0.1 (temp config, TLS with a certificate from a temp CA) serving a
# 1 GiB file and a 1 KiB one.  Clients:
#   direct       curl / bench/tlsclient on the host, straight to nginx (TLS)
#   agentjail    the same client inside `agentjail --secret BENCH_TOKEN@bench.test ...`: the
#                host bench.test has a bound secret, so the proxy intercepts (its own TLS to
#                the client with a leaf from the run CA, verified TLS upstream) and swaps the
#                placeholder in `Authorization: Bearer $BENCH_TOKEN` for the value
#   mitmproxy    mitmdump on 127.0.0.1 with an addon that sets one header (the same
#                Authorization header), bodies streamed; the client trusts mitmproxy's CA
#   nginx-rp     a reference, not a competitor: a second nginx as a TLS-terminating reverse
#                proxy that sets the same header (lib.sh start_nginx_proxy), reached
#                directly.  The same two TLS endpoints and two loopback hops per request as
#                the intercepting proxy, without CONNECT, the jail or any secret check: how
#                close to direct an optimised C proxy gets on this machine.
#
# Figures: 1 GiB download rate (median of REPS, interleaved); requests per second of
# kept-alive 1 KiB requests at concurrency 50 (tlsclient -m rate -k 50); median latency of a
# request on a new intercepted connection (TCP + CONNECT + both TLS handshakes + request).
#
#   bench/intercept.sh                REPS=3
#   BENCH_QUICK=1 bench/intercept.sh  REPS=1, shorter runs
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_as_user "$@"
need nginx mitmdump curl openssl
[ -x "$TLSCLIENT" ] || { echo "bench: $TLSCLIENT missing (make bench builds it)" >&2; exit 1; }

REPS="${REPS:-3}"
RATE_SECONDS=8
NEW_N=300
[ -z "${BENCH_QUICK:-}" ] || { REPS=1; RATE_SECONDS=3; NEW_N=100; }

machine_line
bench_tmp
make_certs "$T" bench.test
NP="$(free_port)"
start_nginx "$T" "$NP"

# mitmproxy: CA in its confdir (made at its first start), upstream verified against our CA.
MP="$(free_port)"
mkdir -p "$T/mitm"
cat >"$T/mitm/addon.py" <<'EOF'
def request(flow):
    flow.request.headers["Authorization"] = "Bearer bench-secret-value-0123456789"
EOF
bg "$T/mitm/out" mitmdump -q --listen-host 127.0.0.1 -p "$MP" --set confdir="$T/mitm" \
	--set ssl_verify_upstream_trusted_ca="$T/ca.crt" --set stream_large_bodies=1m \
	--set connection_strategy=lazy -s "$T/mitm/addon.py"
wait_port "$MP" 60
for _ in $(seq 100); do [ -s "$T/mitm/mitmproxy-ca-cert.pem" ] && break; sleep 0.1; done
RP="$(free_port)"
start_nginx_proxy "$T" "$RP" "$NP"

WS="$T/ws"
mkdir -p "$WS" "$T/res"
cp "$T/ca.crt" "$TLSCLIENT" "$WS/"
cp "$T/mitm/mitmproxy-ca-cert.pem" "$WS/mitm-ca.crt"
cd "$WS"
URL="https://bench.test:$NP"
export BENCH_TOKEN="bench-secret-value-0123456789"
AJI=("$AJ" -q --allow "bench.test:$NP" --add-host bench.test=127.0.0.1 --upstream-ca "$T/ca.crt"
	--secret BENCH_TOKEN@bench.test)
WAYS=(direct agentjail mitmproxy nginx-rp)
# The jail's clients trust the run CA through the variables agentjail sets (CURL_CA_BUNDLE,
# SSL_CERT_FILE): no --cacert / -C there.  $BENCH_TOKEN is expanded inside the jail (the
# placeholder); the proxy puts the value in.

# dl WAY: bytes/s of the 1 GiB download.
dl() {
	case "$1" in
	direct) timeout 300 curl -sS --fail --cacert ca.crt -o /dev/null -w '%{speed_download}\n' \
		-H "Authorization: Bearer $BENCH_TOKEN" --resolve "bench.test:$NP:127.0.0.1" "$URL/1g" ;;
	agentjail) timeout 300 "${AJI[@]}" -- sh -c 'curl -sS --fail -o /dev/null \
		-w "%{speed_download}\n" -H "Authorization: Bearer $BENCH_TOKEN" "$0"' "$URL/1g" ;;
	mitmproxy) timeout 300 curl -sS --fail --cacert mitm-ca.crt -o /dev/null \
		-w '%{speed_download}\n' -x "http://127.0.0.1:$MP" \
		--connect-to "bench.test:$NP:127.0.0.1:$NP" "$URL/1g" ;;
	nginx-rp) timeout 300 curl -sS --fail --cacert ca.crt -o /dev/null -w '%{speed_download}\n' \
		--resolve "bench.test:$RP:127.0.0.1" "https://bench.test:$RP/1g" ;;
	esac
}

# tc WAY ARGS...: bench/tlsclient the way WAY reaches nginx.
tc() {
	local way="$1"
	shift
	case "$way" in
	direct) timeout 300 ./tlsclient -C ca.crt -h bench.test -P "$NP" -u /1k \
		-H "Authorization: Bearer $BENCH_TOKEN" "$@" ;;
	agentjail) timeout 300 "${AJI[@]}" -- sh -c './tlsclient -x env -h bench.test -P "$0" -u /1k \
		-H "Authorization: Bearer $BENCH_TOKEN" "$@"' "$NP" "$@" ;;
	mitmproxy) timeout 300 ./tlsclient -C mitm-ca.crt -x "127.0.0.1:$MP" -T 127.0.0.1 \
		-h bench.test -P "$NP" -u /1k "$@" ;;
	nginx-rp) timeout 300 ./tlsclient -C ca.crt -h bench.test -P "$RP" -u /1k "$@" ;;
	esac
}

# The injection must really happen, or the figures mean nothing: nginx does not echo headers,
# so check on agentjail's audit log that the secret was injected.
timeout 60 "${AJI[@]}" --log "$T/audit.jsonl" -- sh -c 'curl -sS --fail -o /dev/null \
	-H "Authorization: Bearer $BENCH_TOKEN" "$0"' "$URL/1k"
grep -q '"inject' "$T/audit.jsonl" || {
	echo "bench: no injection recorded in the audit log:" >&2
	cat "$T/audit.jsonl" >&2
	exit 1
}

section "1 GiB HTTPS download, intercepted, median of $REPS (rounds interleaved)"
dl direct >/dev/null
for _ in $(seq "$REPS"); do
	for w in "${WAYS[@]}"; do
		dl "$w" >>"$T/res/dl.$w"
	done
done
D_DL="$(median "$T/res/dl.direct")"
for w in "${WAYS[@]}"; do
	m="$(median "$T/res/dl.$w")"
	printf '  %-10s %8.0f MB/s   %5s x direct   (runs: %s)\n' "$w" "$(awk -v v="$m" 'BEGIN{print v/1e6}')" \
		"$(ratio "$m" "$D_DL")" "$(awk '{printf "%.0f ", $1/1e6}' "$T/res/dl.$w")"
done
A_DL="$(median "$T/res/dl.agentjail")"
M_DL="$(median "$T/res/dl.mitmproxy")"

section "kept-alive 1 KiB requests, 50 connections, ${RATE_SECONDS} s, median of $REPS"
for _ in $(seq "$REPS"); do
	for w in "${WAYS[@]}"; do
		out="$(tc "$w" -m rate -k 50 -t "$RATE_SECONDS")"
		[ "$(kv "$out" errors)" = 0 ] || echo "  $w: $out" >&2
		kv "$out" rps >>"$T/res/rate.$w"
	done
done
D_RATE="$(median "$T/res/rate.direct")"
for w in "${WAYS[@]}"; do
	m="$(median "$T/res/rate.$w")"
	printf '  %-10s %8.0f req/s   %5s x direct   (runs: %s)\n' "$w" "$m" "$(ratio "$m" "$D_RATE")" \
		"$(tr '\n' ' ' <"$T/res/rate.$w")"
done
A_RATE="$(median "$T/res/rate.agentjail")"
M_RATE="$(median "$T/res/rate.mitmproxy")"

section "request on a new connection (TCP + CONNECT + TLS both sides + 1 KiB GET), $NEW_N each, median of $REPS"
# not nginx-rp: no CONNECT, and its upstream connection stays open
NEW_WAYS=(direct agentjail mitmproxy)
for _ in $(seq "$REPS"); do
	for w in "${NEW_WAYS[@]}"; do
		out="$(tc "$w" -m new -n "$NEW_N")"
		kv "$out" median_ms >>"$T/res/new.$w"
	done
done
for w in "${NEW_WAYS[@]}"; do
	printf '  %-10s %.3f ms\n' "$w" "$(median "$T/res/new.$w")"
done
A_NEW="$(median "$T/res/new.agentjail")"

section "proxy CPU time per operation (user + system, /proc/PID/stat), beside nginx's"
CPU_NEW="$(proxy_cpu intercept-new './tlsclient -x env -h bench.test -P "$0" -u /1k -H "Authorization: Bearer $BENCH_TOKEN" -m new -n '"$NEW_N" "${AJI[@]}")"
CPU_RATE="$(proxy_cpu intercept-rate './tlsclient -x env -h bench.test -P "$0" -u /1k -H "Authorization: Bearer $BENCH_TOKEN" -m rate -k 50 -t '"$RATE_SECONDS" "${AJI[@]}")"
printf '  new intercepted connection + 1 request: proxy %.3f ms, nginx %.3f ms (ops %s)\n' \
	"$(kv "$CPU_NEW" proxy_ms_per_op)" "$(kv "$CPU_NEW" nginx_ms_per_op)" "$(kv "$CPU_NEW" ops)"
printf '  kept-alive request at c=50:             proxy %.4f ms, nginx %.4f ms (ops %s)\n' \
	"$(kv "$CPU_RATE" proxy_ms_per_op)" "$(kv "$CPU_RATE" nginx_ms_per_op)" "$(kv "$CPU_RATE" ops)"
# the reference proxy's workers, over one whole rate run
mapfile -t RPW < <(pgrep -P "$NGINX_PROXY_PID")
a="$(cpu_ticks "${RPW[@]}")"
out="$(tc nginx-rp -m rate -k 50 -t "$RATE_SECONDS")"
b="$(cpu_ticks "${RPW[@]}")"
printf '  kept-alive request at c=50, nginx-rp:   proxy %.4f ms (its %d workers; ops %s)\n' \
	"$(awk -v t=$((b - a)) -v o="$(kv "$out" requests)" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { print t * 1000 / hz / o }')" "${#RPW[@]}" "$(kv "$out" requests)"

section "targets (issue 5)"
printf '  intercepted throughput %.2f x direct (>= 0.40): %s; %.2f x mitmproxy (>= 1.3): %s\n' \
	"$(ratio "$A_DL" "$D_DL")" "$(verdict "$A_DL >= 0.4 * $D_DL")" \
	"$(ratio "$A_DL" "$M_DL")" "$(verdict "$A_DL >= 1.3 * $M_DL")"
printf '  kept-alive req/s at c=50 %.2f x direct (>= 0.7): %s; %.1f x mitmproxy (>= 10): %s\n' \
	"$(ratio "$A_RATE" "$D_RATE")" "$(verdict "$A_RATE >= 0.7 * $D_RATE")" \
	"$(ratio "$A_RATE" "$M_RATE")" "$(verdict "$A_RATE >= 10 * $M_RATE")"
printf '  new intercepted connection median %.3f ms (<= 2.5): %s\n' "$A_NEW" "$(verdict "$A_NEW <= 2.5")"
R_RATE="$(median "$T/res/rate.nginx-rp")"
printf '  reference: nginx as a TLS reverse proxy, kept-alive %.2f x direct, agentjail %.2f x it\n' \
	"$(ratio "$R_RATE" "$D_RATE")" "$(ratio "$A_RATE" "$R_RATE")"
