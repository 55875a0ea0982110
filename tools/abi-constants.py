#!/usr/bin/env python3
"""tools/abi-constants.py — the values of the public headers' integer
constants (enumerators and #defines), one "NAME VALUE" line each, sorted.

The ABI dump (abidw) only sees types reachable from exported functions'
signatures: error codes, flags and anonymous enums passed as plain ints
are invisible to it, yet a program compiled against one value breaks when
it changes. tools/abi-check.sh compares this list with
tests/abi/constants.txt: a changed or removed value fails, an added one
passes.

usage: tools/abi-constants.py INCLUDE_DIR CC [CFLAGS...]
"""
import os
import re
import subprocess
import sys
import tempfile


def names(include):
    found = set()
    strings = set()
    headers = []
    for root, _, files in os.walk(include):
        for f in sorted(files):
            if f.endswith('.h'):
                headers.append(os.path.join(root, f))
    for h in headers:
        text = open(h, encoding='utf-8').read()
        text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
        for m in re.finditer(r'^#define\s+(EPODE_[A-Z0-9_]+)\s+(\S.*)$', text, re.M):
            name, value = m.group(1), m.group(2).strip()
            if value.startswith('"') or name.startswith('EPODE_VERSION') or '(' in name:
                strings.add(name)
                continue
            if re.match(r'^[-(0-9A-Z_ux|<>+ )]+$', value):
                found.add(name)
        for body in re.findall(r'\benum\b[^{;]*\{([^}]*)\}', text, re.S):
            for m in re.finditer(r'\b(EPODE_[A-Z0-9][A-Z0-9_]*)\b\s*(=|,|$)', body):
                found.add(m.group(1))
        # the error codes come from the X-macro list EPODE_ERRORS
        for m in re.finditer(r'^\s*X\(([A-Z0-9_]+),\s*-?[0-9]+,', text, re.M):
            found.add('EPODE_E' + m.group(1))
    return sorted(found - strings), headers


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 64
    include, cc, cflags = sys.argv[1], sys.argv[2], sys.argv[3:]
    consts, headers = names(include)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'consts.c')
        with open(src, 'w') as out:
            out.write('#include <stdio.h>\n')
            for h in headers:
                out.write('#include "%s"\n' % os.path.relpath(h, include))
            out.write('int main(void)\n{\n')
            for c in consts:
                out.write('    printf("%%s %%lld\\n", "%s", (long long)(%s));\n' % (c, c))
            out.write('    return 0;\n}\n')
        exe = os.path.join(tmp, 'consts')
        subprocess.run([cc, '-I', include, *cflags, '-o', exe, src], check=True)
        sys.stdout.write(subprocess.run([exe], check=True, capture_output=True, text=True).stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main())
