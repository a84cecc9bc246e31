#!/bin/bash
# bench/start.sh - start-to-exit time of a jail (issue 2, Speed; issue 4, last target).
#
# In one run, with hyperfine, as an unprivileged user, in a fresh workspace:
#   agentjail --net none -- /bin/true              target: median <= 0.5 x bubblewrap
#   bubblewrap, same namespaces, same kind of mounts, running true
#   /bin/true                                      the floor of fork+exec
#   agentjail --allow example.test -- /bin/true    proxy on; target: <= 0.6 x bubblewrap
#   bench/floor.c                                  the floor issue 2 names: clone into the seven
#                                                  namespaces, /proc, a tmpfs, two ro binds, a
#                                                  seccomp filter, exec true; nothing else
# The commands are measured in ROUNDS (default 3) rounds of hyperfine and every sample of a
# command pooled before taking its median, so that a burst of load from something else on the
# machine does not land on one command only.
#
#   bench/start.sh                  RUNS=300 ROUNDS=3
#   BENCH_QUICK=1 bench/start.sh    fewer runs
#   BENCH_PROFILE=1 bench/start.sh  also: where agentjail's time goes (strace timeline of the
#                                   phases, averaged; strace -c -f; perf if it may run)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_as_user "$@"
need hyperfine bwrap

RUNS="${RUNS:-300}"
ROUNDS="${ROUNDS:-3}"
[ -z "${BENCH_QUICK:-}" ] || { RUNS=60; ROUNDS=2; }
machine_line
bench_tmp
WS="$T/ws"
mkdir -p "$WS"
cc -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$T/floor" "$BENCH_DIR/floor.c" ||
	{ echo "bench: cannot build bench/floor.c" >&2; exit 1; }
cd "$WS"

# bubblewrap with the same namespaces (--unshare-all: user, mount, pid, net, ipc, uts,
# cgroup) and the same kind of view: /usr read-only, the top-level /bin /sbin /lib* as on this
# machine (symlinks into /usr on a merged-/usr system, read-only binds otherwise), the
# workspace read-write, tmpfs $HOME and /tmp, a new /proc and a minimal /dev.
BWRAP=(bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr)
for d in /bin /sbin /lib /lib32 /lib64 /libx32; do
	if [ -L "$d" ]; then
		BWRAP+=(--symlink "$(readlink "$d")" "$d")
	elif [ -d "$d" ]; then
		BWRAP+=(--ro-bind "$d" "$d")
	fi
done
BWRAP+=(--bind "$WS" "$WS" --tmpfs "$HOME" --proc /proc --dev /dev --tmpfs /tmp true)

# Each must work before it is timed.
"$AJ" --net none -- /bin/true || { echo "bench: agentjail --net none failed" >&2; exit 1; }
"${BWRAP[@]}" || { echo "bench: bwrap failed" >&2; exit 1; }
"$AJ" -q --allow example.test -- /bin/true || { echo "bench: agentjail --allow failed" >&2; exit 1; }
"$T/floor" /bin/true || { echo "bench: floor failed" >&2; exit 1; }

CMDS=("$AJ --net none -- /bin/true" "${BWRAP[*]}" "/bin/true" "$AJ -q --allow example.test -- /bin/true"
	"$T/floor /bin/true")
NAMES=(agentjail-net-none bwrap true agentjail-proxy floor)

section "start-to-exit: $ROUNDS rounds x $RUNS runs, $(nproc) cores, $(uname -r), user $(id -un)"
for r in $(seq "$ROUNDS"); do
	hyperfine -N --style none --warmup 20 --runs "$RUNS" --export-json "$T/round$r.json" \
		"${CMDS[@]}" >"$T/round$r.txt" 2>&1 ||
		{ cat "$T/round$r.txt" >&2; exit 1; }
done

# Pool the samples of each command over the rounds; medians in ms.
$PY - "$T" "$ROUNDS" "${NAMES[@]}" <<'EOF' | tee "$T/summary"
import json, statistics, sys
tmp, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
pooled = [[] for _ in names]
cpu = [[] for _ in names]
for r in range(1, rounds + 1):
    d = json.load(open(f"{tmp}/round{r}.json"))
    for i, res in enumerate(d["results"]):
        pooled[i].extend(res["times"])
        cpu[i].append(res["user"] + res["system"])
med = {n: statistics.median(p) * 1e3 for n, p in zip(names, pooled)}
# CPU time (user + system of the whole process tree, hyperfine's mean) moves less than wall
# time when other work shares the machine.
for n, p, c in zip(names, pooled, cpu):
    q = statistics.quantiles(p, n=10)
    print(f"{n:20s} median {med[n]:7.2f} ms   p10 {q[0]*1e3:6.2f}   p90 {q[-1]*1e3:6.2f}   "
          f"cpu {statistics.mean(c)*1e3:5.2f} ms   n={len(p)}")
bw = med["bwrap"]
r1 = med["agentjail-net-none"] / bw
r2 = med["agentjail-proxy"] / bw
print(f"ratio agentjail --net none / bwrap      = {r1:.2f}   (target <= 0.50: {'met' if r1 <= 0.5 else 'MISSED'})")
print(f"ratio agentjail --allow (proxy) / bwrap = {r2:.2f}   (target <= 0.60: {'met' if r2 <= 0.6 else 'MISSED'})")
print(f"ratio bwrap / true                      = {bw / med['true']:.2f}")
fl = med["floor"]
print(f"floor (bench/floor.c) / bwrap            = {fl / bw:.2f}   "
      f"(0.5 x bwrap = {0.5 * bw:.2f} ms; the floor alone takes {fl:.2f} ms)")
print(f"ratio agentjail --net none / floor      = {med['agentjail-net-none'] / fl:.2f}")
print(f"ratio agentjail --allow (proxy) / floor = {med['agentjail-proxy'] / fl:.2f}")
EOF
echo "bwrap command: ${BWRAP[*]}"

[ -n "${BENCH_PROFILE:-}" ] || exit 0

# ---- where the time goes ------------------------------------------------------------------
# A low-overhead timeline: strace stops only on the few calls that mark the phases
# (--seccomp-bpf: the others run untraced), so the gaps are close to the real ones.
need strace
section "agentjail --net none: phases (strace --seccomp-bpf, key calls only, medians of 30 runs)"
for i in $(seq 30); do
	strace --seccomp-bpf -f -ttt -e trace=execve,clone,clone3,pivot_root,exit_group,wait4 \
		-e signal=none -o "$T/tl.$i" "$AJ" --net none -- /bin/true
done
$PY "$BENCH_DIR/timeline.py" "$T"/tl.*
section "bwrap, the same way"
for i in $(seq 30); do
	strace --seccomp-bpf -f -ttt -e trace=execve,clone,clone3,pivot_root,exit_group,wait4 \
		-e signal=none -o "$T/bw.$i" "${BWRAP[@]}"
done
$PY "$BENCH_DIR/timeline.py" "$T"/bw.*
section "agentjail --net none: syscalls (strace -c -f, one run)"
strace -c -f -S calls -o "$T/c.txt" "$AJ" --net none -- /bin/true
head -n 25 "$T/c.txt"
section "dynamic loading alone (agentjail --version vs /bin/true)"
hyperfine -N --style basic --warmup 20 --runs 200 "$AJ --version" /bin/true 2>&1 | grep -E 'Benchmark|Time'
