"""The README's C example is examples/hello-parser.c, byte for byte, and
running it prints what a reader would expect. Prints TAP."""
import subprocess
import sys

readme, source, exe = sys.argv[1:4]
text = open(readme, encoding="utf-8").read()
start = text.index("```c\n") + len("```c\n")
block = text[start:text.index("```", start)]
results = []
results.append(("readme_block_is_hello_parser", block == open(source, encoding="utf-8").read()))
out = subprocess.run([exe], capture_output=True, text=True, timeout=30)
results.append(("hello_parser_runs", out.returncode == 0 and out.stderr == ""))
results.append(("hello_parser_prints_message_and_reply",
                out.stdout.splitlines()[:1] == ["juliet@example.com/balcony says hi"]
                and '<message xmlns="jabber:client" type="chat" to="juliet@example.com/balcony">'
                    '<body>got it</body></message>' in out.stdout))
print(f"1..{len(results)}")
for i, (name, ok) in enumerate(results, 1):
    if not ok:
        print(f"# stdout: {out.stdout!r} stderr: {out.stderr!r}")
    print(f"{'ok' if ok else 'not ok'} {i} - {name}")
sys.exit(0 if all(ok for _, ok in results) else 1)
