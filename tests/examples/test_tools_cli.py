"""The installed tools' command lines: --help exits 0 and names every
option the program's parser really accepts (read from its source), and
its man page does too; --version prints epode's version; bad usage exits
64 with a short message on stderr and nothing on stdout. Prints TAP.

    test_tools_cli.py VERSION CLI_SRC MANDIR STANZA_DUMP_EXE STANZA_DUMP_SRC \
        TOOL_EXE TOOL_SRC [TOOL_EXE TOOL_SRC...]

TOOL_* are the tools built on examples/common/cli.c (epode-send,
epode-register, epode-history). After "--standalone", more EXE SRC pairs
name tools with their own parser (component-echo): the same checks,
without the shared options.
"""
import os
import re
import subprocess
import sys

args = sys.argv[1:]
standalone_args = args[args.index("--standalone") + 1:] if "--standalone" in args else []
args = args[:len(args) - len(standalone_args) - (1 if standalone_args else 0)]
version, cli_src, mandir, dump_exe, dump_src = args[0:5]
tools = list(zip(args[5::2], args[6::2]))
standalone = list(zip(standalone_args[0::2], standalone_args[1::2]))
results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok), detail))


def run(*argv, stdin=b""):
    p = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def parsed_options(*sources):
    """Every "--name" the sources compare an argument with."""
    names = set()
    for src in sources:
        text = open(src, encoding="utf-8").read()
        names |= set(re.findall(r'strcmp\(\s*(?:a|argv\[[^\]]+\])\s*,\s*"(--[a-z-]+)"\)', text))
    return names - {"--"}


def man_text(page):
    """The man page as a reader sees it (roff escapes for '-' removed)."""
    return open(os.path.join(mandir, page), encoding="utf-8").read().replace("\\-", "-")


# ---- the tools on the shared options (examples/common/cli.c) ----------------
BAD_USAGE = [("unknown_option", ["--frobnicate", "x"]),
             ("missing_jid", ["--password-file", "/dev/null", "a@b", "hi"]),
             ("bad_port", ["--port", "0", "--jid", "a@b", "--password-file", "/dev/null"]),
             ("bad_tls_max", ["--tls-max", "1.1", "--jid", "a@b"]),
             ("bad_timeout", ["--timeout", "5x", "--jid", "a@b"]),
             ("bad_proxy", ["--proxy", "ftp://h:1", "--jid", "a@b"]),
             ("bad_websocket", ["--websocket", "https://h/", "--jid", "a@b"]),
             ("bad_bosh", ["--bosh", "wss://h/", "--jid", "a@b"]),
             ("websocket_and_bosh", ["--websocket", "ws://127.0.0.1/", "--bosh",
                                     "http://127.0.0.1/", "--jid", "a@b",
                                     "--password-file", "/dev/null"])]
EXTRA_BAD_USAGE = {
    "epode-send": [("bad_count", ["--count", "0", "a@b", "hi"]),
                   ("no_message", ["--jid", "a@b", "--password-file", "/dev/null", "c@d"])],
    "epode-register": [("change_and_remove", ["--jid", "a@b", "--password-file", "/dev/null",
                                              "--remove", "--change-password", "/dev/null"])],
    "epode-history": [("bad_max", ["--max", "0", "--jid", "a@b", "--password-file", "/dev/null"]),
                      ("bad_since", ["--since", "yesterday", "--jid", "a@b",
                                     "--password-file", "/dev/null"])],
}

for exe, src in tools:
    tool = os.path.basename(exe)
    t = tool.replace("-", "_")
    opts = parsed_options(src, cli_src)
    check(f"{t}_parser_found", {"--jid", "--sasl", "--help", "--version"} <= opts, sorted(opts))
    rc, out, err = run(exe, "--help")
    check(f"{t}_help_exits_0", rc == 0 and err == "", (rc, err))
    check(f"{t}_help_starts_with_usage", out.startswith(f"usage: {tool}"), out[:80])
    missing = sorted(o for o in opts if not re.search(re.escape(o) + r"(?![a-z-])", out))
    check(f"{t}_help_lists_every_option", not missing, missing)
    man = man_text(tool + ".1")
    missing = sorted(o for o in opts if not re.search(re.escape(o) + r"(?![a-z-])", man))
    check(f"{t}_man_page_lists_every_option", not missing, missing)
    check(f"{t}_man_page_names_this_version", f'"epode {version}"' in man.splitlines()[1],
          man.splitlines()[1])
    rc, out, err = run(exe, "--version")
    check(f"{t}_version", rc == 0 and out == f"{tool} (epode {version})\n", (rc, out))
    for name, argv in BAD_USAGE + EXTRA_BAD_USAGE.get(tool, []):
        rc, out, err = run(exe, *argv)
        short = 0 < len(err.splitlines()) <= 4 and err.startswith(f"{tool}: ")
        check(f"{t}_{name}_exits_64", rc == 64 and out == "" and short, (rc, out, err))

# ---- stanza-dump ------------------------------------------------------------
dump_opts = parsed_options(dump_src)
check("stanza_dump_parser_found", {"--help", "--version"} <= dump_opts, sorted(dump_opts))
rc, out, err = run(dump_exe, "--help")
check("stanza_dump_help_exits_0", rc == 0 and err == "" and out.startswith("usage: stanza-dump"),
      (rc, out[:80], err))
missing = sorted(o for o in dump_opts if not re.search(re.escape(o) + r"(?![a-z-])", out))
check("stanza_dump_help_lists_every_option", not missing, missing)
man = man_text("stanza-dump.1")
missing = sorted(o for o in dump_opts if not re.search(re.escape(o) + r"(?![a-z-])", man))
check("stanza_dump_man_page_lists_every_option", not missing, missing)
check("stanza_dump_man_page_names_this_version", f'"epode {version}"' in man.splitlines()[1],
      man.splitlines()[1])
rc, out, err = run(dump_exe, "--version")
check("stanza_dump_version", rc == 0 and out == f"stanza-dump (epode {version})\n", (rc, out))
rc, out, err = run(dump_exe, "extra")
check("stanza_dump_argument_exits_64",
      rc == 64 and out == "" and err.startswith("stanza-dump: ") and len(err.splitlines()) <= 3,
      (rc, out, err))

# ---- tools with their own parser ---------------------------------------------
STANDALONE_BAD_USAGE = {
    "component-echo": [("no_arguments", []),
                       ("unknown_option", ["--frobnicate", "x"]),
                       ("bad_port", ["--server", "h", "--port", "0", "--domain", "d",
                                     "--secret-file", "/dev/null"]),
                       ("missing_domain", ["--server", "h", "--port", "5347",
                                           "--secret-file", "/dev/null"]),
                       ("bad_domain", ["--server", "h", "--port", "5347", "--domain", "a@b",
                                       "--secret-file", "/etc/hostname"]),
                       ("bad_proxy", ["--server", "h", "--port", "5347", "--domain", "d",
                                      "--secret-file", "/dev/null", "--proxy", "ftp://h:1"])],
}
for exe, src in standalone:
    tool = os.path.basename(exe)
    t = tool.replace("-", "_")
    opts = parsed_options(src)
    check(f"{t}_parser_found", {"--help", "--version"} <= opts, sorted(opts))
    rc, out, err = run(exe, "--help")
    check(f"{t}_help_exits_0", rc == 0 and err == "" and out.startswith(f"usage: {tool}"),
          (rc, out[:80], err))
    missing = sorted(o for o in opts if not re.search(re.escape(o) + r"(?![a-z-])", out))
    check(f"{t}_help_lists_every_option", not missing, missing)
    man = man_text(tool + ".1")
    missing = sorted(o for o in opts if not re.search(re.escape(o) + r"(?![a-z-])", man))
    check(f"{t}_man_page_lists_every_option", not missing, missing)
    check(f"{t}_man_page_names_this_version", f'"epode {version}"' in man.splitlines()[1],
          man.splitlines()[1])
    rc, out, err = run(exe, "--version")
    check(f"{t}_version", rc == 0 and out == f"{tool} (epode {version})\n", (rc, out))
    for name, argv in STANDALONE_BAD_USAGE.get(tool, []):
        rc, out, err = run(exe, *argv)
        short = 0 < len(err.splitlines()) <= 4 and err.startswith(f"{tool}: ")
        check(f"{t}_{name}_exits_64", rc == 64 and out == "" and short, (rc, out, err))

print(f"1..{len(results)}")
for i, (name, ok, detail) in enumerate(results, 1):
    if not ok:
        print(f"# {detail!r}")
    print(f"{'ok' if ok else 'not ok'} {i} - {name}")
sys.exit(0 if all(ok for _, ok, _ in results) else 1)
