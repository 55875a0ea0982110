#!/usr/bin/env bash
# examples/demo.sh — the README's first command. Installs what is missing
# (Debian packages; needs root), builds epode, starts a throwaway Prosody
# on 127.0.0.1 with two accounts and its own certificate authority, runs
# the echo bot as bob, sends it messages as alice with epode-send, shows
# the exchange as the bot saw it, then stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh build demo   # not the test list (clang, ejabberd, doxygen, ...)
BUILD=${EPODE_BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD" >/dev/null

WORK=$(mktemp -d /tmp/epode-demo.XXXXXX)
SERVER_PID=""
BOT_PID=""
cleanup() {
    [ -n "$BOT_PID" ] && kill -TERM "$BOT_PID" 2>/dev/null && wait "$BOT_PID" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== starting Prosody on 127.0.0.1 (accounts alice and bob)"
/usr/bin/python3 tests/servers/xmppservers.py run prosody --user alice:alice-pw --user bob:bob-pw \
    --no-stdin --info-file "$WORK/server.json" >"$WORK/server.out" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$WORK/server.json" ] && break; sleep 0.1; done
[ -s "$WORK/server.json" ] || { cat "$WORK/server.out"; exit 1; }
field() { /usr/bin/python3 -c "import json,sys; print(json.load(open('$WORK/server.json'))['$1'])"; }
PORT=$(field c2s_port); CA=$(field ca_file)
echo alice-pw > "$WORK/alice.pw"; echo bob-pw > "$WORK/bob.pw"
COMMON=(--server 127.0.0.1 --port "$PORT" --ca-file "$CA")
echo "   port $PORT, CA $CA"

echo "== echo-bot logs in as bob@localhost (STARTTLS, certificate checked, SCRAM)"
"$BUILD/examples/echo-bot" "${COMMON[@]}" --jid bob@localhost --password-file "$WORK/bob.pw" \
    --verbose 2>"$WORK/bot.log" &
BOT_PID=$!
for _ in $(seq 100); do grep -q "ready as" "$WORK/bot.log" 2>/dev/null && break; sleep 0.1; done
grep "ready as" "$WORK/bot.log" | sed 's/^/   /'

echo "== alice sends three messages with epode-send"
for text in "Hello, bot" "Wherefore art thou? caf\u00e9 & <tea>" "Goodbye"; do
    msg=$(printf '%b' "$text")
    "$BUILD/examples/epode-send" "${COMMON[@]}" --jid alice@localhost \
        --password-file "$WORK/alice.pw" bob@localhost "$msg"
    echo "   sent: $msg"
done
sleep 0.5

echo "== what the bot received and answered"
grep -E "^(RECV|SEND) <message" "$WORK/bot.log" | sed 's/^/   /'

echo "== stopping the bot (SIGTERM: it closes the stream cleanly) and the server"
kill -TERM "$BOT_PID"; wait "$BOT_PID"; echo "   echo-bot exit status: $?"
BOT_PID=""
