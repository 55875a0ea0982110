#!/usr/bin/env bash
# tools/abi-check.sh — compares the ABI of a built libepode with the
# baseline in tests/abi/libepode.abi (libabigail, Debian abigail-tools).
#
#   tools/abi-check.sh check  BUILD_DIR   exit 0 unless a change breaks
#                                         programs built against the baseline
#                                         (a function removed or its
#                                         signature changed, a public type's
#                                         layout changed); additions are fine
#   tools/abi-check.sh update BUILD_DIR   writes the baseline from this build
#
# Two baselines: tests/abi/libepode.abi (abidw: functions and the types
# their signatures reach) and tests/abi/constants.txt (every integer
# constant of the headers: error codes, flags and enumerators, which
# abidw cannot see when they travel as plain ints).
#
# Before 1.0 the API may still change on purpose: then update the baseline
# in the same commit and say so in its message. BUILD_DIR must be a build
# with debug information (meson's default buildtype, or debugoptimized).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}; build=${2:-}
if [ -z "$mode" ] || [ -z "$build" ]; then
    echo "usage: tools/abi-check.sh check|update BUILD_DIR" >&2
    exit 64
fi
so=$(ls "$build"/lib/libepode.so.*.*.* 2>/dev/null | head -1)
[ -n "$so" ] || { echo "abi-check: no libepode.so.X.Y.Z under $build/lib" >&2; exit 2; }
baseline=tests/abi/libepode.abi
constants=tests/abi/constants.txt
# Read the section list whole before matching: `readelf | grep -q` under
# pipefail fails when grep exits at its match while readelf still writes
# (SIGPIPE, exit 141) -- about one run in eight here, which CI once took
# for "no debug information".
sections=$(readelf -S "$so")
if ! grep -q '\.debug_info' <<< "$sections"; then
    # without DWARF abidw sees no types and every comparison "passes"
    echo "abi-check: $so has no debug information (use a debug or debugoptimized build)" >&2
    exit 2
fi
consts() { /usr/bin/python3 tools/abi-constants.py include "${CC:-cc}"; }
dump() {
    abidw --headers-dir include/epode --drop-private-types --no-show-locs \
        --no-corpus-path --drop-undefined-syms "$1"
}
case $mode in
update)
    dump "$so" > "$baseline"
    consts > "$constants"
    echo "abi-check: wrote $baseline from $so ($(grep -c '<elf-symbol ' "$baseline") functions)"
    echo "abi-check: wrote $constants ($(wc -l < "$constants") constants)"
    ;;
check)
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    consts > "$tmp/constants.txt"
    # every baseline constant still there with its value (new ones are fine)
    if ! awk 'NR == FNR { now[$1] = $2; next }
              !($1 in now) { print "  removed: " $1 " (was " $2 ")"; bad = 1; next }
              now[$1] != $2 { print "  changed: " $1 " " $2 " -> " now[$1]; bad = 1 }
              END { exit bad }' "$tmp/constants.txt" "$constants"; then
        echo "abi-check: constants differ from $constants (on purpose? tools/abi-check.sh update)" >&2
        exit 1
    fi
    dump "$so" > "$tmp/current.abi"
    if ! grep -q '<function-decl' "$tmp/current.abi"; then
        echo "abi-check: abidw found no functions in $so" >&2
        exit 2
    fi
    set +e
    abidiff --no-added-syms "$baseline" "$tmp/current.abi" > "$tmp/diff.txt"
    rc=$?
    set -e
    # abidiff's exit code is a bit field: 1 error, 2 usage, 4 some change,
    # 8 an incompatible change.
    if [ $((rc & 3)) -ne 0 ]; then
        cat "$tmp/diff.txt"; echo "abi-check: abidiff failed (exit $rc)" >&2; exit 2
    fi
    # Added functions are not reported (--no-added-syms): any change left
    # touches what existing programs use — a removed function (8), or a
    # changed signature or public type layout (4; abidiff does not call
    # every such change incompatible, but a moved struct field is).
    if [ $((rc & 12)) -ne 0 ]; then
        cat "$tmp/diff.txt"
        echo "abi-check: changed against $baseline (on purpose? tools/abi-check.sh update)" >&2
        exit 1
    fi
    echo "abi-check: compatible with $baseline"
    ;;
*)
    echo "usage: tools/abi-check.sh check|update BUILD_DIR" >&2; exit 64 ;;
esac
