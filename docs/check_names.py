#!/usr/bin/env python3
"""docs/check_names.py — checks that the epode names docs/guide.md uses
exist in the public headers, so a rename cannot leave the guide (its
porting table above all) naming functions that are gone.

Usage: check_names.py GUIDE.md INCLUDE_DIR

Every `epode_name(` in the guide must be declared in a header; every
EPODE_CONSTANT in the "Porting from libstrophe" section must appear in
one. Output is TAP, one test per name.
"""
import os
import re
import sys

guide, include = sys.argv[1], sys.argv[2]
text = open(guide, encoding="utf-8").read()
headers = ""
for root, _, names in os.walk(include):
    for n in sorted(names):
        if n.endswith(".h"):
            headers += open(os.path.join(root, n), encoding="utf-8").read()

functions = sorted(set(re.findall(r"\b(epode_[a-z0-9_]+)\(", text)))
porting = text.split("## Porting from libstrophe", 1)[1] if "## Porting from libstrophe" in text else ""
constants = sorted(set(re.findall(r"\b(EPODE_[A-Z0-9_]+)\b", porting)))

checks = [(f, re.search(r"\b%s\s*\(" % re.escape(f), headers)) for f in functions]
checks += [(c, re.search(r"\b%s\b" % re.escape(c), headers)) for c in constants]
print(f"1..{len(checks)}")
for i, (name, found) in enumerate(checks, 1):
    print(f"{'ok' if found else 'not ok'} {i} - {name}{'' if found else ' is not in include/'}")
sys.exit(0 if all(found for _, found in checks) else 1)
