#!/usr/bin/env python3
"""docs/check_guide.py — checks that docs/guide.md quotes its example
programs exactly.

Usage: check_guide.py GUIDE.md EXAMPLE.c...

Every ```c block in the guide whose first line is `/* docs/examples/NAME.c */`
must be byte-identical to that file (the first line included: each example
starts with it). Every example given on the command line must be quoted
at least once. Output is TAP: one test per quoted block, then one per
example that is never quoted.
"""
import os
import re
import sys

MARKER = re.compile(r"/\* (docs/examples/[A-Za-z0-9_.-]+\.c) \*/\n")


def blocks(text):
    """Yields (line number, content) for each ```c fenced block."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].rstrip() == "```c":
            start = i + 1
            j = start
            while j < len(lines) and lines[j].rstrip() != "```":
                j += 1
            yield start + 1, "\n".join(lines[start:j]) + "\n"
            i = j + 1
        else:
            i += 1


def main(argv):
    if len(argv) < 2:
        print("usage: check_guide.py GUIDE.md EXAMPLE.c...", file=sys.stderr)
        return 2
    guide = argv[1]
    examples = {}
    for path in argv[2:]:
        name = "docs/examples/" + os.path.basename(path)
        examples[name] = path
    with open(guide, "rb") as f:
        text = f.read().decode("utf-8")

    results = []  # (ok, description, diagnostics)
    quoted = set()
    for line, body in blocks(text):
        m = MARKER.match(body)
        if not m:
            continue  # a fragment, not a whole example
        name = m.group(1)
        desc = "%s quoted at guide.md:%d" % (name, line)
        path = examples.get(name)
        if path is None:
            path = os.path.join(os.path.dirname(os.path.abspath(guide)), "examples",
                                os.path.basename(name))
        if not os.path.exists(path):
            results.append((False, desc, ["no such file: " + path]))
            continue
        quoted.add(name)
        with open(path, "rb") as f:
            want = f.read()
        got = body.encode("utf-8")
        if got == want:
            results.append((True, desc, []))
            continue
        diag = ["the block differs from " + path]
        gl, wl = got.split(b"\n"), want.split(b"\n")
        for k in range(max(len(gl), len(wl))):
            a = gl[k] if k < len(gl) else b"<end>"
            b = wl[k] if k < len(wl) else b"<end>"
            if a != b:
                diag.append("first difference at line %d of the file:" % (k + 1))
                diag.append("  guide: %r" % a)
                diag.append("  file:  %r" % b)
                break
        results.append((False, desc, diag))
    for name in sorted(examples):
        if name not in quoted:
            results.append((False, name + " quoted in the guide",
                            ["no ```c block in guide.md starts with /* %s" % name]))

    print("1..%d" % len(results))
    for n, (ok, desc, diag) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", n, desc))
        for d in diag:
            print("# " + d)
    return 0 if all(ok for ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
