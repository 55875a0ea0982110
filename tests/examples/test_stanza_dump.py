"""Black-box tests of examples/stanza-dump: what a user sees on stdout,
stderr and in the exit status, for good streams, bad ones, and input that
arrives in small pieces. Prints TAP."""
import os
import subprocess
import sys
import time

EXE = sys.argv[1]
HDR = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
       b"xmlns:stream='http://etherx.jabber.org/streams' from='example.com' "
       b"id='s1' version='1.0'>")

cases = []


def case(fn):
    cases.append(fn)
    return fn


def run(data, chunk=None, delay=0.0):
    p = subprocess.Popen([EXE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    if chunk is None:
        out, err = p.communicate(data, timeout=60)
    else:
        for i in range(0, len(data), chunk):
            p.stdin.write(data[i:i + chunk])
            p.stdin.flush()
            if delay:
                time.sleep(delay)
        p.stdin.close()
        out = p.stdout.read()
        err = p.stderr.read()
        p.wait(timeout=60)
    return p.returncode, out.decode(), err.decode()


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


STREAM = (HDR +
          b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>\n"
          b"<message to='romeo@example.net' id='m1' type='chat'><body>caf\xc3\xa9 &amp; &lt;3\n"
          b"second line</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>"
          b" <presence from='a@b/c'><status>x</status></presence>"
          b"</stream:stream>")
WANT = [
    "<stream:features><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"/></stream:features>",
    "<message to=\"romeo@example.net\" id=\"m1\" type=\"chat\"><body>caf\u00e9 &amp; &lt;3&#10;"
    "second line</body><active xmlns=\"http://jabber.org/protocol/chatstates\"/></message>",
    "<presence from=\"a@b/c\"><status>x</status></presence>",
]


@case
def prints_each_stanza_on_its_own_line():
    rc, out, err = run(STREAM)
    expect(rc == 0, f"exit {rc}, stderr {err!r}")
    expect(out.splitlines() == WANT, f"got {out!r}")
    expect(err == "", f"stderr {err!r}")


@case
def same_output_one_byte_at_a_time():
    rc, out, _ = run(STREAM, chunk=1)
    expect(rc == 0 and out.splitlines() == WANT, f"exit {rc}, got {out!r}")


@case
def same_output_in_slow_small_chunks():
    rc, out, _ = run(STREAM, chunk=7, delay=0.001)
    expect(rc == 0 and out.splitlines() == WANT, f"exit {rc}, got {out!r}")


@case
def empty_input_is_not_an_error():
    rc, out, err = run(b"")
    expect(rc == 0 and out == "" and err == "", f"exit {rc} {out!r} {err!r}")


def bad(data, condition, printed_before=0):
    rc, out, err = run(data)
    expect(rc == 2, f"exit {rc}, stderr {err!r}")
    expect(err.strip() == f"error: {condition}", f"stderr {err!r}")
    expect(len(out.splitlines()) == printed_before, f"stdout {out!r}")


@case
def doctype_is_restricted_xml():
    bad(b"<!DOCTYPE x [<!ENTITY a 'aaaa'>]>" + HDR, "restricted-xml")


@case
def comment_is_restricted_xml_after_earlier_stanzas_printed():
    bad(HDR + b"<presence/><!-- hi --><presence/>", "restricted-xml", printed_before=1)


@case
def processing_instruction_is_restricted_xml():
    bad(HDR + b"<?php echo 1; ?>", "restricted-xml")


@case
def unknown_entity_is_restricted_xml():
    bad(HDR + b"<message><body>&xxe;</body></message>", "restricted-xml")


@case
def mismatched_tag_is_not_well_formed():
    bad(HDR + b"<message></presence>", "not-well-formed")


@case
def invalid_utf8_is_not_well_formed():
    bad(HDR + b"<message><body>\xc0\xaf</body></message>", "not-well-formed")


@case
def truncated_stanza_is_not_well_formed():
    bad(HDR + b"<message><body>hel", "not-well-formed")


@case
def wrong_root_is_invalid_namespace():
    bad(b"<html><body/></html>", "invalid-namespace")


@case
def huge_stanza_is_policy_violation():
    # a start tag past what can be skipped in bounded memory (2 MiB)
    bad(HDR + b"<message id='" + b"a" * (3 << 20) + b"'/>", "policy-violation")


@case
def over_limit_stanza_is_skipped_and_the_next_printed():
    # DESIGN "Bad input and limits": skipped by depth, the stream goes on
    rc, out, _ = run(HDR + b"<message>" + b"<a>" * 300 + b"</a>" * 300 + b"</message>"
                     + b"<message id='n'/>")
    expect(rc == 0 and out.splitlines() == ['<message id="n"/>'], f"exit {rc}: {out!r}")


@case
def deep_nesting_is_policy_violation():
    # deeper than the parser will skip (131072 levels)
    bad(HDR + b"<a>" * 140000, "policy-violation")


@case
def many_stanzas():
    n = 20000
    body = b"".join(b"<message id='%d'><body>n%d</body></message>" % (i, i) for i in range(n))
    rc, out, _ = run(HDR + body)
    lines = out.splitlines()
    expect(rc == 0 and len(lines) == n, f"exit {rc}, {len(lines)} lines")
    expect(lines[-1] == f'<message id="{n-1}"><body>n{n-1}</body></message>', lines[-1])


@case
def usage_on_arguments():
    p = subprocess.run([EXE, "--bogus"], capture_output=True)
    expect(p.returncode == 64 and b"usage" in p.stderr, repr(p))


print(f"1..{len(cases)}")
failed = 0
for i, fn in enumerate(cases, 1):
    try:
        fn()
        print(f"ok {i} - {fn.__name__}")
    except Exception as e:  # report and go on
        failed += 1
        print(f"# {e}")
        print(f"not ok {i} - {fn.__name__}")
sys.exit(1 if failed else 0)
