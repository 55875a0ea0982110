#!/usr/bin/env bash
# tests/run-all.sh — the README's test command: builds (gcc, and clang with
# ASan+UBSan), runs the unit and example tests in both builds, a short
# libFuzzer run of each target, the real-server harness tests and the
# integration tests (epode against real servers, tests/integration), then
# prints one line "N passed, N failed[, N skipped]". Needs the packages in
# tools/packages-{build,demo,test}.txt (installed first when run as root). FUZZ_SECONDS
# (default 20) sets the length of each fuzz run.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
OUT=${EPODE_TEST_OUT:-$ROOT/build-tests}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
mkdir -p "$OUT"

if ! tools/install-deps.sh; then
    echo "0 passed, 1 failed"
    exit 1
fi
RESULTS="$OUT/results.txt"
: > "$RESULTS"

# result NAME ok|fail|skip
result() { echo "$2 $1" >> "$RESULTS"; echo "[$2] $1"; }

# Runs a meson test suite and records each TAP case (or each test).
meson_tests() {
    local dir=$1 label=$2
    meson test -C "$dir" --print-errorlogs --num-processes 2 >"$OUT/$label-meson.txt" 2>&1
    local rc=$?
    "$PY" "$ROOT/tests/tools/count_meson.py" "$dir/meson-logs/testlog.json" "$label" >> "$RESULTS"
    if [ $rc -ne 0 ]; then
        tail -40 "$OUT/$label-meson.txt"
    fi
}

build() {
    local dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
    fi
    ninja -C "$dir" >"$dir.ninja.log" 2>&1 || { tail -60 "$dir.ninja.log"; return 1; }
}

echo "== gcc build"
if CC=gcc build "$OUT/gcc" -Dwerror=true; then
    result build-gcc ok
    # The ABI against tests/abi/libepode.abi: no function removed, no
    # signature or public type changed unless the baseline says so too.
    if tools/abi-check.sh check "$OUT/gcc" > "$OUT/abi-check.txt" 2>&1; then
        result abi-compatible ok
    else
        tail -40 "$OUT/abi-check.txt"
        result abi-compatible fail
    fi
    meson_tests "$OUT/gcc" gcc
else
    result build-gcc fail
fi

echo "== clang ASan+UBSan build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if CC=clang build "$OUT/asan" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false; then
    result build-clang-asan ok
    EPODE_SIM_SCHEDULES=${EPODE_SIM_SCHEDULES_ASAN:-10000} meson_tests "$OUT/asan" asan
else
    result build-clang-asan fail
fi

echo "== release builds (what packagers and benchmarkers use), warnings as errors"
for cc in gcc clang; do
    if CC=$cc build "$OUT/release-$cc" --buildtype=release -Dwerror=true -Dtests=false; then
        result "build-release-$cc" ok
    else
        result "build-release-$cc" fail
    fi
done

echo "== install, then build a program with pkg-config as a user would"
PREFIX="$OUT/prefix"
rm -rf "$PREFIX"
if CC=gcc build "$OUT/install" --prefix="$PREFIX" -Dtests=false -Dexamples=false -Dbench=false \
        && meson install -C "$OUT/install" >"$OUT/install.log" 2>&1; then
    pcdir=$(dirname "$(find "$PREFIX" -name epode.pc | head -1)")
    if PKG_CONFIG_PATH="$pcdir" cc -Wall -Wextra -Werror -o "$OUT/hello-installed" \
            examples/hello-parser.c $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs epode) \
        && LD_LIBRARY_PATH="$(dirname "$(find "$PREFIX" -name 'libepode.so' | head -1)")" \
            "$OUT/hello-installed" | grep -q "says hi"; then
        result install-and-link ok
    else
        result install-and-link fail
    fi
    # The bindings, as installed, load (and find the installed library).
    pydir=$(dirname "$(find "$PREFIX" -path '*/epode/__init__.py' | head -1)")
    if [ -n "$pydir" ] && (cd / && PYTHONPATH="$(dirname "$pydir")" "$PY" -c \
            'import epode; epode.Stanza.parse("<a/>"); print(epode.__file__)' \
            | grep -q "^$PREFIX"); then
        result python-installed-imports ok
    else
        result python-installed-imports fail
    fi
    luaso=$(find "$PREFIX" -name epode.so -path '*lua*' | head -1)
    if [ -z "$luaso" ] || ! command -v lua5.4 >/dev/null; then
        :  # no Lua module built (liblua5.4-dev missing): nothing to check
    elif LUA_CPATH="$(dirname "$luaso")/?.so" lua5.4 -e 'local e = require "epode"; assert(e.client)'; then
        result lua-installed-loads ok
    else
        result lua-installed-loads fail
    fi
    # Exported symbols are exactly the functions the headers declare.
    so=$(find "$PREFIX" -name 'libepode.so' | head -1)
    nm -D --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' | grep -v '^EPODE_0$' \
        | sort -u > "$OUT/exported.txt"
    grep -h -A3 'EPODE_API' include/epode/*.h | grep -o '\bepode_[a-z0-9_]*(' | tr -d '(' \
        | sort -u > "$OUT/declared.txt"
    if diff -u "$OUT/declared.txt" "$OUT/exported.txt" > "$OUT/symbols.diff"; then
        result exported-symbols-match-headers ok
    else
        cat "$OUT/symbols.diff"
        result exported-symbols-match-headers fail
    fi
else
    cat "$OUT/install.log" 2>/dev/null | tail -20
    result install-and-link fail
fi

echo "== README's install section in a scratch prefix; pip and luarocks"
# One "ok|fail install/NAME" line per check (tests/install/test-install.sh).
bash tests/install/test-install.sh "$OUT/install-readme" >> "$RESULTS" 2>"$OUT/install-readme.err" \
    || { tail -40 "$OUT/install-readme.err"; grep -q '^fail install/' "$RESULTS" || result install-readme fail; }

echo "== fuzz smoke (${FUZZ_SECONDS}s per target)"
if CC=clang build "$OUT/fuzz" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dexamples=false -Dbench=false -Dtests=true; then
    # Every target tests/fuzz/meson.build builds, seeded from
    # tests/fuzz/corpus/NAME when it exists (with the regression inputs
    # of crashes found earlier).
    for exe in "$OUT"/fuzz/tests/fuzz/fuzz_*; do
        [ -f "$exe" ] && [ -x "$exe" ] || continue
        t=$(basename "$exe"); t=${t#fuzz_}
        corpus="$OUT/fuzz-corpus-$t"
        rm -rf "$corpus"; mkdir -p "$corpus"
        [ -d "tests/fuzz/corpus/$t" ] && cp -r "tests/fuzz/corpus/$t/." "$corpus/"
        if (cd "$OUT" && "$OUT/fuzz/tests/fuzz/fuzz_$t" -max_total_time="$FUZZ_SECONDS" \
                -max_len=4096 -print_final_stats=1 "$corpus" >"$OUT/fuzz-$t.log" 2>&1); then
            result "fuzz_$t" ok
        else
            tail -30 "$OUT/fuzz-$t.log"
            result "fuzz_$t" fail
        fi
    done
else
    result build-fuzz fail
fi

if [ -d tests/servers ] && [ -f tests/servers/test_xmppservers.py ]; then
    echo "== real-server harness (Prosody, ejabberd)"
    "$PY" -m pytest -q -p no:cacheprovider --junitxml="$OUT/servers.xml" tests/servers \
        >"$OUT/servers.log" 2>&1
    rc=$?
    "$PY" "$ROOT/tests/tools/count_junit.py" "$OUT/servers.xml" servers >> "$RESULTS" \
        || result servers fail
    [ $rc -eq 0 ] || tail -40 "$OUT/servers.log"
fi

# The same suite against both builds: the ASan one catches memory errors
# and leaks on real network paths (TLS, SASL, c-ares) too.
for flavour in gcc asan; do
    [ -x "$OUT/$flavour/tests/integration/login_probe" ] || continue
    echo "== integration, $flavour build (epode against Prosody, ejabberd, slixmpp)"
    EPODE_BUILD="$OUT/$flavour" "$PY" -m pytest -q -p no:cacheprovider \
        --junitxml="$OUT/integration-$flavour.xml" tests/integration \
        >"$OUT/integration-$flavour.log" 2>&1
    rc=$?
    "$PY" "$ROOT/tests/tools/count_junit.py" "$OUT/integration-$flavour.xml" \
        "integration-$flavour" >> "$RESULTS" || result "integration-$flavour" fail
    [ $rc -eq 0 ] || tail -40 "$OUT/integration-$flavour.log"
done

if [ -x tests/lua/run.sh ] && [ -f "$OUT/gcc/bindings/lua/epode.so" ]; then
    echo "== Lua binding (busted, against a real Prosody)"
    bash tests/lua/run.sh "$OUT/gcc" >"$OUT/lua.log" 2>&1
    rc=$?
    "$PY" - "$OUT/lua.log" >> "$RESULTS" <<'PYEOF'
import re, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.match(r"^(not ok|ok) \d+ (.*)$", line.rstrip())
    if m:
        n += 1
        print(("ok" if m.group(1) == "ok" else "fail") + " lua/" + m.group(2)[:120])
if n == 0:
    print("fail lua/no-tests-ran")
PYEOF
    [ $rc -eq 0 ] || { tail -30 "$OUT/lua.log"; result lua-run fail; }
fi

if ls "$OUT"/gcc/bindings/python/epode/_epode*.so >/dev/null 2>&1; then
    echo "== Python binding (pytest: unit, examples, against a real Prosody)"
    PYTHONPATH="$OUT/gcc/bindings/python" PYTHONDONTWRITEBYTECODE=1 "$PY" -m pytest -q \
        -p no:cacheprovider --junitxml="$OUT/python.xml" tests/python >"$OUT/python.log" 2>&1
    rc=$?
    "$PY" "$ROOT/tests/tools/count_junit.py" "$OUT/python.xml" python >> "$RESULTS" \
        || result python fail
    [ $rc -eq 0 ] || tail -40 "$OUT/python.log"
fi

# The same suite with the ASan+UBSan build of the extension, loaded into
# the stock interpreter through clang's runtime (LD_PRELOAD). CPython
# itself leaves memory behind at exit, so leaks are logged rather than
# fatal, and any leak whose stack goes through epode fails the run.
ASAN_RT=$(clang -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null)
if ls "$OUT"/asan/bindings/python/epode/_epode*.so >/dev/null 2>&1 && [ -f "$ASAN_RT" ]; then
    echo "== Python binding, ASan+UBSan build"
    rm -rf "$OUT/python-asan" && mkdir -p "$OUT/python-asan"
    LD_PRELOAD="$ASAN_RT" \
        ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$OUT/python-asan/asan" \
        LSAN_OPTIONS=exitcode=0 PYTHONPATH="$OUT/asan/bindings/python" PYTHONDONTWRITEBYTECODE=1 \
        "$PY" -m pytest -q -p no:cacheprovider --junitxml="$OUT/python-asan.xml" tests/python \
        >"$OUT/python-asan.log" 2>&1
    rc=$?
    "$PY" "$ROOT/tests/tools/count_junit.py" "$OUT/python-asan.xml" python-asan >> "$RESULTS" \
        || result python-asan fail
    [ $rc -eq 0 ] || tail -40 "$OUT/python-asan.log"
    if grep -l -E 'ERROR: AddressSanitizer|runtime error:' "$OUT"/python-asan/asan.* 2>/dev/null \
            || grep -q 'runtime error:' "$OUT/python-asan.log"; then
        result python-asan-memory-errors fail
    else
        result python-asan-memory-errors ok
    fi
    if grep -l -E 'epode' "$OUT"/python-asan/asan.* 2>/dev/null; then
        grep -h -B3 -A20 'leak of' "$OUT"/python-asan/asan.* | grep -B8 -A8 epode | head -60
        result python-asan-no-leaks-through-epode fail
    else
        result python-asan-no-leaks-through-epode ok
    fi
fi

"$PY" "$ROOT/tests/tools/summary.py" "$RESULTS"
