#!/bin/bash
# tests/lua/run.sh BUILD_DIR — runs the Lua module's busted spec, unit part
# and the part against a real Prosody that this script starts on loopback
# (accounts alice:pw1 and bob:pw2, and its MUC service) and stops again.
# Prints busted's TAP output; exits non-zero if a test failed or the
# server could not start.
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "no build directory: $1" >&2; exit 2; }
MODULE_DIR="$BUILD/bindings/lua"
if [ ! -f "$MODULE_DIR/epode.so" ]; then
    echo "$MODULE_DIR/epode.so is missing (build with -Dlua=true first)" >&2
    exit 2
fi
for prog in lua5.4 busted; do
    command -v "$prog" >/dev/null || { echo "$prog is not installed (apt-get install lua5.4 lua-busted)" >&2; exit 2; }
done

TMP=$(mktemp -d /tmp/epode-lua-test.XXXXXX)
INFO="$TMP/server.json"
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

/usr/bin/python3 "$ROOT/tests/servers/xmppservers.py" run prosody \
    --user alice:pw1 --user bob:pw2 --module mam --module blocklist --module csi --module pep --module bookmarks \
    --component-secret "comp-$$-$RANDOM" \
    --no-stdin --info-file "$INFO" \
    >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!

for _ in $(seq 1 600); do   # up to 60 s
    [ -s "$INFO" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "Prosody failed to start:" >&2
        cat "$TMP/server.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [ ! -s "$INFO" ]; then
    echo "Prosody did not start within 60 s" >&2
    cat "$TMP/server.err" >&2
    exit 1
fi

# host, port, domain, MUC service, CA file, users from the info file, as
# shell variables.
eval "$(/usr/bin/python3 - "$INFO" <<'EOF'
import json, shlex, sys
info = json.load(open(sys.argv[1]))
users = {u['user']: u['password'] for u in info['users']}
for k, v in (('EPODE_TEST_HOST', info['host']), ('EPODE_TEST_PORT', info['c2s_port']),
             ('EPODE_TEST_DOMAIN', info['domain']), ('EPODE_TEST_CA_FILE', info['ca_file']),
             ('EPODE_TEST_MUC_DOMAIN', info.get('muc_domain') or 'conference.' + info['domain']),
             ('EPODE_TEST_ALICE', 'alice:' + users['alice']),
             ('EPODE_TEST_BOB', 'bob:' + users['bob'])):
    print('export %s=%s' % (k, shlex.quote(str(v))))
comp = info.get('component')
if comp:
    print('export EPODE_TEST_COMPONENT=%s' % shlex.quote(
        '%s:%s:%s' % (comp['domain'], comp['port'], comp['secret'])))
EOF
)" || { echo "cannot read $INFO" >&2; exit 1; }

export LUA_CPATH="$MODULE_DIR/?.so;;"
export LUA_CPATH_5_4="$LUA_CPATH"
cd "$ROOT"
# EPODE_LUA_WRAPPER runs the interpreter under a tool, e.g. "valgrind -q".
${EPODE_LUA_WRAPPER:-} lua5.4 "$(command -v busted)" -o TAP tests/lua/epode_spec.lua \
    tests/lua/modern_spec.lua tests/lua/commands_spec.lua tests/lua/pep_spec.lua
status=$?
exit $status
