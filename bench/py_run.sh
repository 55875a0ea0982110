#!/bin/sh
# bench/py_run.sh — the Python binding side by side with slixmpp (Debian's
# python3-slixmpp), in one run, against bench/fake_server on loopback:
# receive and send throughput (messages/s through a Python handler or
# send call) and memory per idle session. Alternates the two libraries
# ROUNDS times; throughput keeps each one's best round, memory the
# median; prints the ratios.
#
#   bench/py_run.sh [BUILD_DIR]      default: build (next to bench/)
#
# Environment: ROUNDS (3), MESSAGES (100000), SESSIONS (1000).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${1:-$root/build}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
rounds=${ROUNDS:-3}
n=${MESSAGES:-100000}
sessions=${SESSIONS:-1000}
py=/usr/bin/python3
fs=$build/bench/fake_server
[ -x "$fs" ] || { echo "py_run.sh: $fs is missing; build first" >&2; exit 1; }
ls "$build"/bindings/python/epode/_epode*.so >/dev/null 2>&1 \
    || { echo "py_run.sh: the Python binding is not built in $build" >&2; exit 1; }
$py -c 'import slixmpp' 2>/dev/null || { echo "py_run.sh: python3-slixmpp is missing" >&2; exit 1; }

tmp=$(mktemp -d /tmp/epode-pybench.XXXXXX)
fs_pid=
cleanup() {
    [ -n "$fs_pid" ] && kill -TERM "$fs_pid" 2>/dev/null || true
    [ -n "$fs_pid" ] && wait "$fs_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$fs" --port-file "$tmp/port" >/dev/null 2>"$tmp/fs.err" &
fs_pid=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")

: > "$tmp/results"
for r in $(seq "$rounds"); do
    for t in recv send idle; do
        count=$n; [ "$t" = idle ] && count=$sessions
        for lib in epode slixmpp; do
            line=$(PYTHONPATH="$build/bindings/python" timeout 300 $py "$here/py_bench.py" \
                --lib $lib --test $t --port "$port" -n "$count" 2>>"$tmp/err" \
                | grep '^RESULT' || echo "RESULT lib=$lib test=$t failed=1")
            echo "$line" >> "$tmp/results"
            echo "  round $r: $line"
        done
    done
done

$py - "$tmp/results" <<'PYEOF'
import re, statistics, sys
vals = {}
for line in open(sys.argv[1]):
    d = dict(re.findall(r"(\w+)=(\S+)", line))
    if "value" in d:
        vals.setdefault((d["lib"], d["test"]), []).append(float(d["value"]))
def pick(lib, test):
    v = vals.get((lib, test))
    if not v:
        return None
    return statistics.median(v) if test == "idle" else max(v)
print()
print("%-34s %14s %14s %9s" % ("", "epode", "slixmpp", "ratio"))
for test, label, unit in (("recv", "receive (msg/s, best)", ""), ("send", "send (msg/s, best)", ""),
                          ("idle", "memory per idle session (median)", "B")):
    e, s = pick("epode", test), pick("slixmpp", test)
    if e is None or s is None:
        print("%-34s %14s %14s %9s" % (label, e or "FAILED", s or "FAILED", "-"))
        continue
    ratio = (e / s) if test != "idle" else (s / e)
    print("%-34s %14.0f %14.0f %8.1fx" % (label, e, s, ratio))
print("(memory ratio: slixmpp / epode; throughput: epode / slixmpp)")
PYEOF
