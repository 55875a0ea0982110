"""Reads meson's testlog.json and prints one "ok|fail|skip NAME" line per
test case: each TAP line of a TAP test, or the test itself otherwise."""
import json
import re
import sys

path, label = sys.argv[1], sys.argv[2]
tap_line = re.compile(r"^(not ok|ok)\s+\d+\s*-?\s*(.*?)(\s+#\s*(SKIP|skip).*)?$")
with open(path, encoding="utf-8", errors="replace") as f:
    for line in f:
        t = json.loads(line)
        name = t.get("name", "?")
        res = t.get("result", "")
        cases = 0
        if t.get("protocol") == "tap" or "1.." in (t.get("stdout") or ""):
            for out in (t.get("stdout") or "").splitlines():
                m = tap_line.match(out.strip())
                if not m:
                    continue
                cases += 1
                kind = "skip" if m.group(4) else ("ok" if m.group(1) == "ok" else "fail")
                print(f"{kind} {label}/{name}/{m.group(2)}")
        if cases == 0 or res not in ("OK", "SKIP", "EXPECTEDFAIL"):
            # A crash, a timeout or a non-TAP test counts as the test itself.
            kind = "ok" if res in ("OK", "EXPECTEDFAIL") else ("skip" if res == "SKIP" else "fail")
            print(f"{kind} {label}/{name}")
