"""Prints the failed cases and the closing line "N passed, N failed[, N
skipped]" from the results file; exits 1 if anything failed or nothing
ran."""
import sys

counts = {"ok": 0, "fail": 0, "skip": 0}
failed = []
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        kind, _, name = line.strip().partition(" ")
        if kind in counts:
            counts[kind] += 1
            if kind == "fail":
                failed.append(name)
for name in failed:
    print(f"FAILED: {name}")
line = f"{counts['ok']} passed, {counts['fail']} failed"
if counts["skip"]:
    line += f", {counts['skip']} skipped"
print(line)
sys.exit(1 if counts["fail"] or counts["ok"] == 0 else 0)
