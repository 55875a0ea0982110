#!/usr/bin/env bash
# tools/install-deps.sh [build] [demo] [test] — installs the Debian packages
# of the lists named (tools/packages-NAME.txt; no argument: all three) that
# are not installed yet (apt-get update once, then one apt-get install).
#   build  what meson setup && ninja need (library, tools, bindings)
#   demo   what examples/demo.sh adds (Prosody, openssl)
#   test   what tests/run-all.sh and CI add (clang, ejabberd, doxygen, ...)
# Needs root; does nothing when all are present.
set -euo pipefail
cd "$(dirname "$0")/.."
lists=("$@")
[ ${#lists[@]} -gt 0 ] || lists=(build demo test)
files=()
for l in "${lists[@]}"; do
    f="tools/packages-$l.txt"
    if [ ! -f "$f" ]; then
        echo "install-deps.sh: no list named '$l' (build, demo, test)" >&2
        exit 64
    fi
    files+=("$f")
done
mapfile -t wanted < <(cat "${files[@]}" | sed 's/#.*//' | grep -v '^\s*$' | sort -u)
missing=()
for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "run as root (or with sudo) to install them" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
