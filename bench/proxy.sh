#!/bin/bash
# bench/proxy.sh - the egress proxy's tunnels against a direct connection, squid and tinyproxy
# (issue 4, Speed and load).  Same machine, same run, loopback only, as an unprivileged user.
#
# Upstream: nginx on 127.0.0.1 (temp config, TLS with a certificate from a temp CA) serving a
# 1 GiB file and a 1 KiB one.  Clients:
#   direct     curl / bench/tlsclient on the host, straight to nginx
#   agentjail  the same client inside `agentjail --allow bench.test:PORT --add-host
#              bench.test=127.0.0.1`, through the jail's proxy (HTTPS_PROXY, a CONNECT tunnel);
#              jail start-up (a few ms) is inside the download figure, and negligible there
#   squid, tinyproxy   the same client on the host with the proxy named explicitly (CONNECT)
#
# Figures: 1 GiB download rate (median of REPS, interleaved); added latency of a kept-alive
# 1 KiB request (median over N requests on one tunnel) and of a request on a new connection
# (TCP + CONNECT + TLS + request); 1,000 simultaneous tunnels held and served
# (bench/tunnels.py); the proxy's RSS idle and with the 1,000 tunnels open.
#
#   bench/proxy.sh                 REPS=3
#   BENCH_QUICK=1 bench/proxy.sh   REPS=1, fewer requests
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_as_user "$@"
need nginx squid tinyproxy curl openssl
[ -x "$TLSCLIENT" ] || { echo "bench: $TLSCLIENT missing (make bench builds it)" >&2; exit 1; }

REPS="${REPS:-3}"
KEEP_N=5000
NEW_N=400
TUNNELS="${TUNNELS:-1000}"
[ -z "${BENCH_QUICK:-}" ] || { REPS=1; KEEP_N=1000; NEW_N=100; }

machine_line
bench_tmp
make_certs "$T" bench.test
NP="$(free_port)"
start_nginx "$T" "$NP"
SP="$(free_port)"
start_squid "$T" "$SP"
TP="$(free_port)"
start_tinyproxy "$T" "$TP"

WS="$T/ws"
mkdir -p "$WS" "$T/res"
cp "$T/ca.crt" "$TLSCLIENT" "$BENCH_DIR/tunnels.py" "$WS/"
cd "$WS"
URL="https://bench.test:$NP"
AJP=("$AJ" -q --allow "bench.test:$NP" --add-host bench.test=127.0.0.1)
CURL=(curl -sS --fail --cacert ca.crt -o /dev/null -w '%{speed_download}\n')
# squid and tinyproxy cannot resolve bench.test: the tunnel names 127.0.0.1 (curl --connect-to;
# -T for tlsclient); TLS still checks the name bench.test.
TO=(--connect-to "bench.test:$NP:127.0.0.1:$NP")
PROXIES=(direct agentjail squid tinyproxy)

# run_client WHICH CMD...: CMD (curl or tlsclient args) the way WHICH reaches nginx.
run_client() {
	local which="$1"
	shift
	case "$which" in
	direct)
		if [ "$1" = curl ]; then
			timeout 300 "$@" --resolve "bench.test:$NP:127.0.0.1"
		else
			timeout 300 "$@"
		fi ;;
	agentjail)
		if [ "$1" = curl ]; then
			timeout 300 "${AJP[@]}" -- "$@"
		else
			timeout 300 "${AJP[@]}" -- "$@" -x env
		fi ;;
	squid | tinyproxy)
		local port=$SP
		[ "$which" = squid ] || port=$TP
		if [ "$1" = curl ]; then
			timeout 300 "$@" -x "http://127.0.0.1:$port" "${TO[@]}"
		else
			timeout 300 "$@" -x "127.0.0.1:$port" -T 127.0.0.1
		fi ;;
	esac
}

section "1 GiB HTTPS download, curl, median of $REPS (rounds interleaved)"
# One untimed download first: the file's pages enter the page cache.
run_client direct "${CURL[@]}" "$URL/1g" >/dev/null
for _ in $(seq "$REPS"); do
	for p in "${PROXIES[@]}"; do
		run_client "$p" "${CURL[@]}" "$URL/1g" >>"$T/res/dl.$p"
	done
done
D_DL="$(median "$T/res/dl.direct")"
for p in "${PROXIES[@]}"; do
	m="$(median "$T/res/dl.$p")"
	printf '  %-10s %8.0f MB/s   %5s x direct   (runs: %s)\n' "$p" "$(awk -v v="$m" 'BEGIN{print v/1e6}')" \
		"$(ratio "$m" "$D_DL")" "$(awk '{printf "%.0f ", $1/1e6}' "$T/res/dl.$p")"
done
A_DL="$(median "$T/res/dl.agentjail")"
S_DL="$(median "$T/res/dl.squid")"
Y_DL="$(median "$T/res/dl.tinyproxy")"

section "kept-alive 1 KiB request, one connection, $KEEP_N sequential requests, median of $REPS"
for _ in $(seq "$REPS"); do
	for p in "${PROXIES[@]}"; do
		out="$(run_client "$p" ./tlsclient -C ca.crt -h bench.test -P "$NP" -u /1k -m keep -n "$KEEP_N")"
		kv "$out" median_ms >>"$T/res/keep.$p"
	done
done
D_KEEP="$(median "$T/res/keep.direct")"
for p in "${PROXIES[@]}"; do
	m="$(median "$T/res/keep.$p")"
	printf '  %-10s %.4f ms   added %+.4f ms\n' "$p" "$m" "$(awk -v a="$m" -v b="$D_KEEP" 'BEGIN{print a-b}')"
done
A_KEEP_ADD="$(awk -v a="$(median "$T/res/keep.agentjail")" -v b="$D_KEEP" 'BEGIN{print a-b}')"

section "request on a new connection (TCP + CONNECT + TLS 1.3 + 1 KiB GET), $NEW_N each, median of $REPS"
for _ in $(seq "$REPS"); do
	for p in "${PROXIES[@]}"; do
		out="$(run_client "$p" ./tlsclient -C ca.crt -h bench.test -P "$NP" -u /1k -m new -n "$NEW_N")"
		kv "$out" median_ms >>"$T/res/new.$p"
	done
done
D_NEW="$(median "$T/res/new.direct")"
for p in "${PROXIES[@]}"; do
	m="$(median "$T/res/new.$p")"
	printf '  %-10s %.3f ms   added %+.3f ms\n' "$p" "$m" "$(awk -v a="$m" -v b="$D_NEW" 'BEGIN{print a-b}')"
done
A_NEW_ADD="$(awk -v a="$(median "$T/res/new.agentjail")" -v b="$D_NEW" 'BEGIN{print a-b}')"

section "proxy CPU time per operation (user + system, /proc/PID/stat), beside nginx's"
CPU_NEW="$(proxy_cpu tunnel-new './tlsclient -C ca.crt -x env -h bench.test -P "$0" -u /1k -m new -n '"$((NEW_N * 2))" "${AJP[@]}")"
CPU_KEEP="$(proxy_cpu tunnel-keep './tlsclient -C ca.crt -x env -h bench.test -P "$0" -u /1k -m keep -n '"$((KEEP_N * 4))" "${AJP[@]}")"
printf '  new tunnel + 1 request:  proxy %.3f ms, nginx %.3f ms (ops %s)\n' "$(kv "$CPU_NEW" proxy_ms_per_op)" \
	"$(kv "$CPU_NEW" nginx_ms_per_op)" "$(kv "$CPU_NEW" ops)"
printf '  kept-alive request:      proxy %.4f ms, nginx %.4f ms (ops %s)\n' "$(kv "$CPU_KEEP" proxy_ms_per_op)" \
	"$(kv "$CPU_KEEP" nginx_ms_per_op)" "$(kv "$CPU_KEEP" ops)"

section "$TUNNELS simultaneous tunnels through agentjail's proxy (bench/tunnels.py in the jail)"
SYNC="$WS/sync"
mkdir -p "$SYNC"
timeout 300 "${AJP[@]}" -- /usr/bin/python3 ./tunnels.py --proxy env --host bench.test \
	--port "$NP" --ca ca.crt --n "$TUNNELS" --sync "$SYNC" >"$T/tunnels.out" 2>&1 &
AJPID=$!
# `timeout` is the parent of agentjail: find agentjail, then its proxy child.
sleep 0.2
MON="$(pgrep -P "$AJPID" -x agentjail || true)"
PPID_PROXY="$(proxy_pid "$MON")" || { echo "bench: proxy process not found" >&2; cat "$T/tunnels.out"; exit 1; }
for _ in $(seq 600); do [ -e "$SYNC/idle" ] && break; sleep 0.05; done
RSS_IDLE="$(rss_kib "$PPID_PROXY")"
touch "$SYNC/go"
for _ in $(seq 1200); do [ -e "$SYNC/held" ] && break; sleep 0.05; done
RSS_HELD="$(rss_kib "$PPID_PROXY")"
touch "$SYNC/release"
TUN_RC=0
wait "$AJPID" || TUN_RC=$?
cat "$T/tunnels.out"
printf '  proxy pid %s: RSS idle %s KiB (%.2f MiB), with %s tunnels open %s KiB (%.2f MiB)\n' \
	"$PPID_PROXY" "$RSS_IDLE" "$(awk -v k="$RSS_IDLE" 'BEGIN{print k/1024}')" "$TUNNELS" "$RSS_HELD" \
	"$(awk -v k="$RSS_HELD" 'BEGIN{print k/1024}')"
TUN_OK=0
grep -q "open_ok=$TUNNELS open_errors=0 served_again_ok=$TUNNELS served_again_errors=0" "$T/tunnels.out" &&
	[ "$TUN_RC" -eq 0 ] && TUN_OK=1

section "targets (issue 4)"
printf '  tunnel throughput %.2f x direct (>= 0.70): %s\n' "$(ratio "$A_DL" "$D_DL")" "$(verdict "$A_DL >= 0.7 * $D_DL")"
printf '  ahead of squid (%.2f x) and tinyproxy (%.2f x): %s, %s\n' "$(ratio "$S_DL" "$D_DL")" \
	"$(ratio "$Y_DL" "$D_DL")" "$(verdict "$A_DL > $S_DL")" "$(verdict "$A_DL > $Y_DL")"
printf '  added kept-alive latency %.4f ms (<= 0.05): %s\n' "$A_KEEP_ADD" "$(verdict "$A_KEEP_ADD <= 0.05")"
printf '  added new-connection latency %.3f ms (<= 0.5): %s\n' "$A_NEW_ADD" "$(verdict "$A_NEW_ADD <= 0.5")"
printf '  %s tunnels held and served without error: %s\n' "$TUNNELS" "$(verdict "$TUN_OK == 1")"
printf '  proxy RSS idle %.2f MiB (<= 4): %s; at %s tunnels %.2f MiB (<= 32): %s\n' \
	"$(awk -v k="$RSS_IDLE" 'BEGIN{print k/1024}')" "$(verdict "$RSS_IDLE <= 4096")" "$TUNNELS" \
	"$(awk -v k="$RSS_HELD" 'BEGIN{print k/1024}')" "$(verdict "$RSS_HELD <= 32768")"
