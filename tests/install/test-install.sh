#!/usr/bin/env bash
# tests/install/test-install.sh — follows README.md's "Install" section in
# a scratch directory, as a user would:
#   - runs its "prefix of your own" block as written (P and the build
#     directory moved into the scratch directory), building the README's
#     C example with pkg-config and running it without LD_LIBRARY_PATH;
#   - imports the installed Python package with /usr/bin/python3 and the
#     Lua module with lua5.4, using only the variables the README sets;
#   - checks the tools, their man pages and the docs are installed;
#   - `pip install --no-build-isolation .` into a venv made with
#     --system-site-packages, then imports epode from another directory;
#   - `luarocks --lua-version 5.4 make --local` against the prefix, then
#     `require "epode"` (HOME in the scratch directory).
# Prints one line per check, "ok install/NAME" or "fail install/NAME"
# (what tests/run-all.sh counts); details go to stderr. Exits 1 if a check
# failed.
#
#   tests/install/test-install.sh [SCRATCH_DIR]   (default: a new mktemp -d)
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SCRATCH=${1:-$(mktemp -d /tmp/epode-install.XXXXXX)}
case "$SCRATCH" in
    /|"$HOME"|"$ROOT"|"$ROOT"/) echo "test-install.sh: will not empty $SCRATCH" >&2; exit 64 ;;
esac
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
SCRATCH=$(cd "$SCRATCH" && pwd)
JOBS=${EPODE_INSTALL_JOBS:-2}
failed=0

ok() { echo "ok install/$1"; }
fail() { echo "fail install/$1"; failed=1; }
# check NAME COMMAND...: runs it, its output into the log
check() {
    local name=$1; shift
    if "$@" >>"$SCRATCH/log" 2>&1; then ok "$name"; else
        echo "--- install/$name failed; the end of $SCRATCH/log:" >&2
        tail -25 "$SCRATCH/log" >&2
        fail "$name"
    fi
}

# ---- the README's blocks ------------------------------------------------------
# block_after TEXT: the fenced block of README.md that contains TEXT
block_with() {
    /usr/bin/python3 - "$ROOT/README.md" "$1" <<'EOF'
import re, sys
text, needle = open(sys.argv[1], encoding="utf-8").read(), sys.argv[2]
for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S):
    if needle in m.group(2):
        sys.stdout.write(m.group(2))
        break
else:
    sys.exit("README.md has no block with " + needle)
EOF
}
block_with 'meson setup build-prefix' > "$SCRATCH/prefix-block.sh" || fail readme-has-prefix-block
block_with '#include <epode.h>' > "$SCRATCH/app.c" || fail readme-has-c-example

# The block as written, but P and the build directory in the scratch
# directory, a lighter build (no tests or benchmarks) and -j$JOBS. Then
# the variables it exported are saved for the steps below.
P="$SCRATCH/prefix"
sed -e "s|^P=\$HOME/epode .*|P=\"$P\"|" \
    -e "s|meson setup build-prefix |meson setup \"$SCRATCH/build\" -Dtests=false -Dbench=false |" \
    -e "s|ninja -C build-prefix|ninja -j$JOBS -C \"$SCRATCH/build\"|" \
    -e "s|meson install -C build-prefix|meson install -C \"$SCRATCH/build\"|" \
    -e "s|cc -o app app.c|cc -o \"$SCRATCH/app\" \"$SCRATCH/app.c\"|" \
    "$SCRATCH/prefix-block.sh" > "$SCRATCH/prefix-run.sh"
cat >> "$SCRATCH/prefix-run.sh" <<EOF
declare -p PKG_CONFIG_PATH PYTHONPATH LUA_CPATH PATH MANPATH > "$SCRATCH/env.sh"
EOF
if ! grep -q "^P=\"$P\"" "$SCRATCH/prefix-run.sh" || ! grep -q "$SCRATCH/build" "$SCRATCH/prefix-run.sh"; then
    echo "the README's prefix block no longer has the lines this test rewrites:" >&2
    cat "$SCRATCH/prefix-block.sh" >&2
    fail readme-prefix-block-runs
else
    check readme-prefix-block-runs env -u LD_LIBRARY_PATH -u PKG_CONFIG_PATH -u PYTHONPATH \
        -u LUA_CPATH -u LUA_CPATH_5_4 bash -euo pipefail "$SCRATCH/prefix-run.sh"
fi

# What the README's block set, and nothing else (no LD_LIBRARY_PATH).
run_as_readme() {
    (unset LD_LIBRARY_PATH LUA_CPATH_5_4; cd /; source "$SCRATCH/env.sh" && "$@")
}

check c-example-runs-without-ld-library-path \
    run_as_readme sh -c "'$SCRATCH/app' | grep -q 'juliet@example.com/balcony says hi'"
check pkg-config-finds-epode-in-prefix \
    run_as_readme sh -c "pkg-config --variable=libdir epode | grep -qx '$P/lib/x86_64-linux-gnu'"
check python-imports-installed-module run_as_readme /usr/bin/python3 -c "
import epode, sys
assert epode.__file__.startswith('$P/'), epode.__file__
epode.Stanza.parse('<a/>')
print(epode.__version__)"
if command -v lua5.4 >/dev/null; then
    check lua-requires-installed-module run_as_readme lua5.4 -e "
local e = require 'epode'
assert(package.searchpath('epode', package.cpath):find('$P/', 1, true) == 1)
assert(e.client)"
else
    fail lua-requires-installed-module
fi
check tools-on-path run_as_readme sh -c \
    "command -v epode-send | grep -qx '$P/bin/epode-send' && epode-send --version && epode-register --version && epode-history --version && stanza-dump --version && component-echo --version"
check man-pages-installed run_as_readme sh -c \
    "man -w epode-send | grep -q '^$P/' && man -w epode-register | grep -q '^$P/' && man -w epode-history | grep -q '^$P/' && man -w stanza-dump | grep -q '^$P/' && man -w component-echo | grep -q '^$P/'"
if command -v doxygen >/dev/null; then
    check api-reference-installed test -f "$P/share/doc/epode/html/index.html"
fi
check guide-installed test -f "$P/share/doc/epode/guide.md"

# ---- pip, into a venv that sees Debian's meson-python ----------------------
if /usr/bin/python3 -c 'import mesonpy' 2>/dev/null; then
    check pip-install-into-venv sh -c "
        /usr/bin/python3 -m venv --system-site-packages '$SCRATCH/venv' &&
        cd '$ROOT' && '$SCRATCH/venv/bin/pip' install --no-build-isolation --no-index \
            --config-settings=compile-args=-j$JOBS ."
    check pip-installed-module-imports sh -c "cd / && env -u PYTHONPATH '$SCRATCH/venv/bin/python' -c '
import epode
assert epode.__file__.startswith(\"$SCRATCH/venv/\"), epode.__file__
epode.Stanza.parse(\"<a/>\")
print(epode.__version__)'"
else
    echo "python3-mesonpy is not installed (tools/packages-build.txt)" >&2
    fail pip-install-into-venv
fi

# ---- LuaRocks, against the prefix --------------------------------------------
# In a copy of what the rockspec builds (luarocks writes its objects next
# to the sources), with HOME in the scratch directory for --local.
# The rockspec is named after the project's version (meson.build).
version=$(sed -n "s/^  version: '\(.*\)',$/\1/p" meson.build)
check rockspec-matches-version test -f "epode-$version-1.rockspec"
if command -v luarocks >/dev/null && command -v lua5.4 >/dev/null; then
    mkdir -p "$SCRATCH/rock/bindings/lua" "$SCRATCH/rock/examples/common" "$SCRATCH/home"
    cp "$ROOT"/epode-*.rockspec "$SCRATCH/rock/"
    cp "$ROOT"/bindings/lua/*.[ch] "$SCRATCH/rock/bindings/lua/"
    cp "$ROOT"/examples/common/fast_file.[ch] "$SCRATCH/rock/examples/common/"
    check luarocks-make-local sh -c "cd '$SCRATCH/rock' && HOME='$SCRATCH/home' \
        luarocks --lua-version 5.4 make --local EPODE_DIR='$P'"
    check luarocks-module-requires sh -c "cd / && env -u LUA_CPATH -u LUA_CPATH_5_4 -u LD_LIBRARY_PATH \
        HOME='$SCRATCH/home' sh -c 'eval \"\$(luarocks --lua-version 5.4 path)\" && lua5.4 -e \"
local e = require [[epode]]
assert(package.searchpath([[epode]], package.cpath):find([[$SCRATCH/home/.luarocks/]], 1, true) == 1)
assert(e.client)\"'"
else
    echo "luarocks or lua5.4 is not installed (tools/packages-test.txt)" >&2
    fail luarocks-make-local
fi

exit $failed
