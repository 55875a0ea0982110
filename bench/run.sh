#!/bin/sh
# bench/run.sh — epode side by side with libstrophe, in one run, over
# loopback: receive and send throughput and idle memory per session
# against bench/fake_server (no TLS, SASL ANONYMOUS), and login time
# against a real Prosody (STARTTLS + SCRAM). Each measurement alternates
# between the two libraries, ROUNDS times; throughput reports the best
# round of each, memory the median, and the table gives the ratios.
# The receive path is also set against raw libxml2 SAX on the same bytes
# (bench/parse, which alternates the two itself).
#
#   bench/run.sh [BUILD_DIR]          default: build (next to bench/)
#
# Besides: idle epode sessions over real TCP up to the open-file limit
# (19,000; libstrophe's select() stops at 1,024), and bench/footprint —
# an idle session's bytes through the allocator hook, broken down, with
# 1,000 and 100,000 sessions over in-process memory transports (no fds).
#
# Idle memory with STARTTLS (TLS 1.3, verified) for both libraries, too.
#
# Environment: ROUNDS (3), MESSAGES (200000), LOGINS (20), MANY (19000),
# TLS_ROUNDS (1), NO_TLS=1 skips the TLS pair,
# PARSE_MESSAGES (40000), PARSE_ROUNDS (41),
# NO_PROSODY=1 skips the login figure, NO_MANY=1 the 19,000 and 100,000
# session runs. Needs only 127.0.0.1.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${1:-$root/build}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
rounds=${ROUNDS:-3}
n=${MESSAGES:-200000}
logins=${LOGINS:-20}
py=/usr/bin/python3
[ -x $py ] || py=python3

many=${MANY:-19000}
ep=$build/bench/conn_bench
fp=$build/bench/footprint
st=$build/bench/strophe_bench
fs=$build/bench/fake_server
for f in "$ep" "$fs"; do
    [ -x "$f" ] || { echo "run.sh: $f is missing; build first (ninja -C $build)" >&2; exit 1; }
done
have_st=1
[ -x "$st" ] || { have_st=0; echo "run.sh: no $st (libstrophe-dev not installed): epode only" >&2; }

tmp=$(mktemp -d /tmp/epode-bench.XXXXXX)
fs_pid=
fs_tls_pid=
pros_pid=
cleanup() {
    [ -n "$fs_pid" ] && kill -TERM "$fs_pid" 2>/dev/null || true
    [ -n "$fs_tls_pid" ] && kill -TERM "$fs_tls_pid" 2>/dev/null || true
    [ -n "$fs_tls_pid" ] && wait "$fs_tls_pid" 2>/dev/null || true
    [ -n "$pros_pid" ] && kill -TERM "$pros_pid" 2>/dev/null || true
    [ -n "$fs_pid" ] && wait "$fs_pid" 2>/dev/null || true
    [ -n "$pros_pid" ] && wait "$pros_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

results=$tmp/results
: > "$results"
log=$tmp/stderr.log

# One measurement: its RESULT line goes to the results file (and, short,
# to the terminal); a failure is recorded, not fatal.
run() {
    what=$1; shift
    out=$(timeout "${RUN_TIMEOUT:-150}" "$@" 2>>"$log") || true
    line=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -n 1)
    if [ -z "$line" ]; then
        echo "RESULT $what failed=1" >> "$results"
        printf '  %-40s FAILED\n' "$what"
        tail -n 5 "$log" | sed 's/^/    /'
    else
        echo "$line" >> "$results"
        printf '  %s\n' "${line#RESULT }"
    fi
}

pb=$build/bench/parse
if [ -x "$pb" ]; then
    echo "receive path against raw libxml2 SAX (bench/parse, alternating)..."
    run "parse epode" "$pb" "${PARSE_MESSAGES:-40000}" "${PARSE_ROUNDS:-41}"
fi

echo "starting fake server ($n messages pre-serialized)..."
"$fs" --port-file "$tmp/port" --messages "$n" > "$tmp/fs.out" 2>&1 &
fs_pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
    i=$((i + 1))
    [ $i -gt 200 ] && { echo "run.sh: the fake server did not start" >&2; cat "$tmp/fs.out" >&2; exit 1; }
    sleep 0.05
done
port=$(cat "$tmp/port")

if [ "${NO_MANY:-0}" != 1 ]; then
    # First, while this machine's ephemeral ports are fresh: each run
    # leaves its links in TIME_WAIT for a minute.
    echo "$many idle sessions over TCP in one process (open-file limit: $(ulimit -Hn))"
    run "idle epode" "$ep" idle "$port" "$many"
fi

r=1
while [ $r -le "$rounds" ]; do
    echo "round $r of $rounds"
    # alternate which library goes first, so order effects cancel out
    if [ $((r % 2)) -eq 1 ] || [ $have_st = 0 ]; then first=ep; else first=st; fi
    for test in recv send; do
        for who in $first $( [ $first = ep ] && echo st || echo ep ); do
            if [ $who = ep ]; then run "$test epode" "$ep" $test "$port" "$n"
            elif [ $have_st = 1 ]; then run "$test strophe" "$st" $test "$port" "$n"; fi
        done
    done
    for who in $first $( [ $first = ep ] && echo st || echo ep ); do
        if [ $who = ep ]; then run "idle epode" "$ep" idle "$port" 1000
        elif [ $have_st = 1 ]; then run "idle strophe" "$st" idle "$port" 1000; fi
    done
    r=$((r + 1))
done

kill -TERM "$fs_pid" 2>/dev/null || true
wait "$fs_pid" 2>/dev/null || true
fs_pid=

if [ "${NO_TLS:-0}" != 1 ]; then
    # Idle memory with STARTTLS (TLS 1.3, the fake server's certificate
    # verified against the CA it writes): TLS_ROUNDS alternating pairs
    # (1 by default: libstrophe takes ~2 minutes to log 1,000 sessions in,
    # as it loads the system trust store into a new context per connection).
    "$fs" --ca-out "$tmp/ca.pem" --port-file "$tmp/port-tls" > "$tmp/fs-tls.out" 2>&1 &
    fs_tls_pid=$!
    i=0
    while [ ! -s "$tmp/port-tls" ] && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.05; done
    if [ -s "$tmp/port-tls" ]; then
        port_tls=$(cat "$tmp/port-tls")
        r=1
        while [ $r -le "${TLS_ROUNDS:-1}" ]; do
            echo "idle sessions with STARTTLS, round $r of ${TLS_ROUNDS:-1}"
            if [ $((r % 2)) -eq 1 ] || [ $have_st = 0 ]; then first=ep; else first=st; fi
            for who in $first $( [ $first = ep ] && echo st || echo ep ); do
                if [ $who = ep ]; then RUN_TIMEOUT=600 run "idle-tls epode" "$ep" idle-tls "$port_tls" 1000 "$tmp/ca.pem"
                elif [ $have_st = 1 ]; then RUN_TIMEOUT=900 run "idle-tls strophe" "$st" idle-tls "$port_tls" 1000 "$tmp/ca.pem"; fi
            done
            r=$((r + 1))
        done
    else
        echo "run.sh: the TLS fake server did not start" >&2
    fi
    kill -TERM "$fs_tls_pid" 2>/dev/null || true
    wait "$fs_tls_pid" 2>/dev/null || true
    fs_tls_pid=
fi

if [ -x "$fp" ]; then
    echo "an idle session's bytes through the allocator hook (bench/footprint, stream management on)"
    "$fp" --sessions 1000 --sm > "$tmp/footprint.txt" 2>>"$log" || true
    grep '^RESULT' "$tmp/footprint.txt" >> "$results" || echo "RESULT footprint failed=1" >> "$results"
    if [ "${NO_MANY:-0}" != 1 ]; then
        "$fp" --sessions 100000 --sm 2>>"$log" | grep '^RESULT' >> "$results" \
            || echo "RESULT footprint failed=1" >> "$results"
    fi
fi

if [ "${NO_PROSODY:-0}" != 1 ] && command -v prosody >/dev/null 2>&1; then
    echo "starting Prosody (STARTTLS + SCRAM) for the login figure..."
    $py "$root/tests/servers/xmppservers.py" run prosody --user alice:pw --no-stdin \
        --info-file "$tmp/prosody.json" > "$tmp/prosody.out" 2>&1 &
    pros_pid=$!
    i=0
    while [ ! -s "$tmp/prosody.json" ] && kill -0 "$pros_pid" 2>/dev/null && [ $i -lt 600 ]; do
        i=$((i + 1))
        sleep 0.1
    done
    if [ -s "$tmp/prosody.json" ]; then
        set -- $($py -c 'import json,sys; d=json.load(open(sys.argv[1])); u=d["users"][0]
print(d["host"], d["c2s_port"], d["domain"], d["ca_file"], u["jid"], u["password"])' "$tmp/prosody.json")
        run "login epode" "$ep" login "$@" "$logins"
        [ $have_st = 1 ] && run "login strophe" "$st" login "$@" "$logins"
    else
        echo "run.sh: Prosody did not start; no login figure" >&2
        tail -n 20 "$tmp/prosody.out" >&2
    fi
    kill -TERM "$pros_pid" 2>/dev/null || true
    wait "$pros_pid" 2>/dev/null || true
    pros_pid=
fi

strophe_version=$(pkg-config --modversion libstrophe 2>/dev/null || echo '?')
$py - "$results" "$rounds" "$n" "$logins" "$strophe_version" "$(nproc)" "$build" <<'EOF'
import sys, statistics
path, rounds, n, logins, sver, cpus, root = sys.argv[1:8]
rows = []
for line in open(path):
    f = line.split()
    if len(f) < 3 or f[0] != 'RESULT':
        continue
    if f[1] == 'footprint':  # RESULT footprint k=v...
        rows.append(('footprint', 'epode', dict(x.split('=', 1) for x in f[2:] if '=' in x)))
        continue
    kv = dict(x.split('=', 1) for x in f[3:] if '=' in x)
    rows.append((f[1], f[2], kv))

def get(test, lib, cond=lambda kv: True):
    return [kv for t, l, kv in rows if t == test and l == lib and cond(kv) and 'failed' not in kv]

def num(x): return f"{x:,.0f}"

out = []
def row(name, a, b, ratio, target, verdict):
    out.append(f"{name:<34} {a:>16} {b:>24} {ratio:>9} {target:>10}  {verdict}")

print()
print(f"epode vs libstrophe {sver}: loopback, fake server without TLS, "
      f"{cpus} CPUs, {rounds} rounds alternating")
print("throughput: best round of each; memory: median of the rounds")
print()
row("measurement", "epode", "libstrophe", "ratio", "target", "")
row("-" * 34, "-" * 16, "-" * 24, "-" * 9, "-" * 10, "-" * 6)
notes = []
for test, label in (("recv", "receive, stanzas/s"), ("send", "send, stanzas/s")):
    e, s = get(test, 'epode'), get(test, 'strophe')
    be = max(e, key=lambda kv: float(kv['rate'])) if e else None
    bs = max(s, key=lambda kv: float(kv['rate'])) if s else None
    a = num(float(be['rate'])) if be else 'failed'
    b = num(float(bs['rate'])) if bs else \
        ('failed' if any(t == test and l == 'strophe' for t, l, _ in rows) else 'n/a')
    if be and bs:
        ratio = float(be['rate']) / float(bs['rate'])
        row(f"{label} ({int(n):,})", a, b, f"{ratio:.2f}x", ">= 2.50x", "ok" if ratio >= 2.5 else "MISSED")
    else:
        row(f"{label} ({int(n):,})", a, b, "-", ">= 2.50x", "-")
    for who, best in (("epode", be), ("libstrophe", bs)):
        if best:
            notes.append(f"  {test} {who:<10}: {float(best['secs']):.3f} s, client CPU "
                         f"{float(best['client_cpu'])*100:.0f}%, fake server CPU "
                         f"{float(best['server_cpu'])*100:.0f}% of the wall time"
                         + (f", {int(best['bytes'])/int(n):.0f} bytes/stanza" if 'bytes' in best else ""))

pe = get('parse', 'epode')
if pe:
    kv = pe[-1]
    ratio = float(kv['ratio'])
    row("receive vs raw libxml2 SAX", num(float(kv['rate'])),
        num(float(kv['sax_rate'])) + " libxml2 SAX", f"{ratio:.2f}x", ">= 0.85x",
        "ok" if ratio >= 0.85 else "MISSED")
    notes.append(f"  parse: the same stream into stanza trees and through a minimal libxml2 SAX "
                 f"consumer, {kv['rounds']} rounds alternating, chunks of {kv['chunk']} bytes; "
                 f"ratio: median of the per-round ratios (of the best rounds: "
                 f"{float(kv['best_ratio']):.2f}); rates: best rounds")

many = sorted({kv.get('k') for t, l, kv in rows if t == 'idle' and kv.get('k') not in (None, '1000')},
              key=int)
for k in ["1000"] + many:
    e = [kv for kv in get('idle', 'epode', lambda kv: kv.get('k') == k)]
    s_all = [kv for t, l, kv in rows if t == 'idle' and l == 'strophe' and kv.get('k') == k]
    eok = [kv for kv in e if kv.get('ok') == '1']
    sok = [kv for kv in s_all if kv.get('ok') == '1']
    a = f"{statistics.median(float(kv['kb_per_session']) for kv in eok):.1f} KB" if eok else \
        (f"failed ({e[0].get('ready', '?')} ready)" if e else "failed")
    if sok:
        b = f"{statistics.median(float(kv['kb_per_session']) for kv in sok):.1f} KB"
    elif any(kv.get('crashed') == '1' for kv in s_all):
        c = [kv for kv in s_all if kv.get('crashed') == '1'][0]
        b = f"n/a (aborted at {int(c.get('started', 0)):,})"
        notes.append(f"  libstrophe with {int(k):,} sessions: {c.get('signal', 'exit ' + c.get('exit', '?'))} "
                     f"after {int(c.get('started', 0)):,} connections opened, "
                     f"{int(c.get('ready', 0)):,} logged in (select(): FD_SETSIZE 1024)")
    elif s_all:
        b = f"failed ({s_all[0].get('ready', '?')} ready)"
    else:
        b = "n/a"
    name = f"idle memory, {int(k):,} sessions"
    if eok and sok:
        ea = statistics.median(float(kv['kb_per_session']) for kv in eok)
        sa = statistics.median(float(kv['kb_per_session']) for kv in sok)
        row(name, a + "/session", b + "/session", f"{ea/sa:.2f}x", "<= 1.00x", "ok" if ea <= sa else "MISSED")
    else:
        row(name, a + ("/session" if eok else ""), b, "-", f"{int(k):,} ok" if k != "1000" else "<= 1.00x",
            ("ok" if eok else "MISSED") if k != "1000" else "-")
    if eok:
        notes.append(f"  idle epode {int(k):,}: logged in in {statistics.median(float(kv['login_secs']) for kv in eok):.2f} s, "
                     f"RSS delta {statistics.median(int(kv['rss_delta_kb']) for kv in eok)/1024:.1f} MB")

et = [kv for kv in get('idle-tls', 'epode') if kv.get('ok') == '1']
st_ = [kv for kv in get('idle-tls', 'strophe') if kv.get('ok') == '1']
if et or st_ or any(t == 'idle-tls' for t, l, kv in rows):
    ea = statistics.median(float(kv['kb_per_session']) for kv in et) if et else None
    sa = statistics.median(float(kv['kb_per_session']) for kv in st_) if st_ else None
    row("idle memory, 1,000 sessions, STARTTLS", f"{ea:.1f} KB/session" if ea else "failed",
        f"{sa:.1f} KB/session" if sa else "n/a", f"{ea/sa:.2f}x" if ea and sa else "-",
        "<= 1.00x", ("ok" if ea <= sa else "MISSED") if ea and sa else "-")
    if et:
        notes.append(f"  idle-tls epode: heap {float(et[0].get('heap_bytes', 0))/1024:.1f} KB/session "
                     f"(epode's own {float(et[0].get('epode_bytes', 0))/1024:.1f} KB, the rest gnutls), "
                     f"logged in in {float(et[0]['login_secs']):.1f} s")
    if st_:
        notes.append(f"  idle-tls libstrophe: logged in in {float(st_[0]['login_secs']):.1f} s "
                     f"(a new OpenSSL context with the system trust store per connection)")

fps = sorted(get('footprint', 'epode'), key=lambda kv: int(kv['sessions']))
for kv in fps:
    b = float(kv['bytes_per_session'])
    row(f"allocator bytes/idle session, {int(kv['sessions']):,}", f"{b:,.0f} B", "n/a", "-",
        "<= 6 KB", "ok" if b <= 6144 and kv.get('ok') == '1' else "MISSED")
if len(fps) >= 2:
    a, z = fps[0], fps[-1]
    ratio = float(z['us_per_login']) / float(a['us_per_login'])
    row(f"CPU/login {int(z['sessions']):,} vs {int(a['sessions']):,}",
        f"{float(z['us_per_login']):.0f} vs {float(a['us_per_login']):.0f} us", "n/a", f"{ratio:.2f}x",
        "flat", "ok" if ratio <= 1.5 else "MISSED")
if fps:
    notes.append(f"  footprint (in-process memory transports, SM on): the breakdown by part: "
                 f"{root}/bench/footprint --sessions 1000 --sm")

le, ls = get('login', 'epode'), get('login', 'strophe')
if le or ls:
    a = f"{float(le[0]['median_ms']):.1f} ms" if le else "failed"
    b = f"{float(ls[0]['median_ms']):.1f} ms" if ls else "n/a"
    ratio = f"{float(ls[0]['median_ms'])/float(le[0]['median_ms']):.2f}x" if le and ls else "-"
    row(f"login, Prosody, median of {logins}", a, b, ratio, "(figure)", "")
    if le:
        notes.append(f"  login epode: best {float(le[0]['best_ms']):.1f} ms, "
                     f"{le[0].get('security', '?').replace('_', ' ')}")
    if ls:
        notes.append(f"  login libstrophe: best {float(ls[0]['best_ms']):.1f} ms (STARTTLS, SASL of its choice)")
print("\n".join(out))
print()
print("ratios: throughput epode/libstrophe (higher is better); memory epode/libstrophe "
      "(lower is better); login libstrophe time / epode time")
print("\n".join(notes))
fails = [f"{t} {l}" for t, l, kv in rows if 'failed' in kv]
if fails:
    print("failed runs: " + ", ".join(fails))
EOF
if grep -q 'failed=1' "$results"; then
    echo
    echo "stderr of the runs (last lines):"
    tail -n 8 "$log"
fi
