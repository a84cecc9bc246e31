#!/usr/bin/python3
"""Phases of one agentjail run, from `strace -f -ttt` traces of a few key calls (bench/start.sh).

Each argument is the trace of one run.  Prints, for each event in order, the median over the
runs of its time since the launcher's execve (agentjail or bwrap) and of the step from the event before it.
"""
import collections
import re
import statistics
import sys


def events(path):
    ev = []
    for line in open(path):
        m = re.match(r"(\d+) +([\d.]+) (.*)", line.strip())
        if not m:
            continue
        t, rest = float(m.group(2)), m.group(3)
        if rest.startswith("<..."):
            continue
        if rest.startswith("clone(") and "CLONE_NEWUSER" in rest:
            name = "clone(all namespaces)"
        elif rest.startswith("clone("):
            name = "clone(fork)"
        elif rest.startswith('execve("'):
            name = "execve(launcher)"
        elif rest.startswith("execve("):
            name = "execve(command)"
        elif rest.startswith("+++ exited"):
            name = "exited"
        else:
            name = rest.split("(")[0]
        ev.append((t, name))
    return ev


def main():
    at = collections.defaultdict(list)
    step = collections.defaultdict(list)
    runs = sys.argv[1:]
    for path in runs:
        ev = events(path)
        if not ev:
            continue
        seen = collections.Counter()
        t0 = prev = ev[0][0]
        for t, name in ev:
            seen[name] += 1
            label = "%s#%d" % (name, seen[name])
            at[label].append((t - t0) * 1e3)
            step[label].append((t - prev) * 1e3)
            prev = t
    for k in sorted(at, key=lambda k: statistics.median(at[k])):
        if len(at[k]) >= len(runs) // 2:
            print("  at %6.2f ms   step %5.2f ms   %s"
                  % (statistics.median(at[k]), statistics.median(step[k]), k))


if __name__ == "__main__":
    main()
