#!/usr/bin/env bash
# examples/demo.sh — the README's first command: installs what is missing
# (Debian packages, needs root), builds epode, and shows its parser at work
# on a captured XMPP stream: each stanza on its own line, then what happens
# to a stream that breaks XMPP's XML rules.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
BUILD=${EPODE_BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD" >/dev/null
DUMP="$BUILD/examples/stanza-dump"

echo "== stanza-dump < examples/sample-stream.xml"
"$DUMP" < examples/sample-stream.xml
echo
echo "== the same stream fed one byte at a time (same result)"
python3 -c '
import sys, time
data = open("examples/sample-stream.xml", "rb").read()
for b in data:
    sys.stdout.buffer.write(bytes([b])); sys.stdout.buffer.flush()
' | "$DUMP" | sha256sum
"$DUMP" < examples/sample-stream.xml | sha256sum
echo
echo "== a stream carrying an entity declaration (RFC 6120 forbids it)"
set +e
printf '%s' "<!DOCTYPE s [<!ENTITY x 'boom'>]><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><message><body>&x;</body></message>" | "$DUMP" 2>&1
echo "exit status: $?"
