"""The Python example bots (bindings/python/examples), run as a user
would run them, against a real Prosody."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

import epode

pytestmark = pytest.mark.server

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "bindings", "python", "examples")


def command(script, prosody, jid, password, tmp_path, *extra):
    """The command line that runs `script` as `jid` against prosody."""
    pwfile = tmp_path / (jid.split("@")[0] + ".pw")
    pwfile.write_text(password + "\n")
    return [sys.executable, os.path.join(EXAMPLES, script), "--jid", jid,
            "--password-file", str(pwfile), "--server", prosody.host, "--port",
            str(prosody.port), "--ca-file", prosody.ca_file, *extra]


def start(script, prosody, tmp_path, *extra, prefix="bot", first="ready as"):
    jid, pw = prosody.account(prefix)
    argv = command(script, prosody, jid + "/bot", pw, tmp_path, *extra)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith(first):
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("%s did not start: %r %s %s" % (script, line, out, err))
    return proc, jid + "/bot", line


def stop(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("the bot did not stop on its signal: " + err)
    return proc.returncode, out, err


async def ask(prosody, to, bodies):
    jid, pw = prosody.account("asker")
    answers = asyncio.Queue()
    async with epode.Client(jid, pw, **prosody.kwargs()) as c:
        c.on_message(lambda m: answers.put_nowait(m.body) if m.body else None)
        for body in bodies:
            c.send_message(to, body)
        return [await asyncio.wait_for(answers.get(), 15) for _ in bodies]


@pytest.mark.parametrize("mode", [[], ["--blocking"]], ids=["asyncio", "blocking"])
def test_echo_bot(prosody, tmp_path, mode):
    proc, bot, _ = start("echo_bot.py", prosody, tmp_path, *mode)
    try:
        bodies = ["hello", "caf\u00e9 & <tea>", "x" * 5000]
        assert asyncio.run(ask(prosody, bot, bodies)) == bodies
    finally:
        rc, out, err = stop(proc, signal.SIGINT if mode else signal.SIGTERM)
    assert rc == 0, err
    assert out.count("echoed") == 3


def test_echo_bot_reports_a_bad_password(prosody, tmp_path):
    jid, _ = prosody.account("bad")
    r = subprocess.run(command("echo_bot.py", prosody, jid, "not the password", tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "authentication failed" in r.stderr and "Traceback" not in r.stderr


def test_web_bot_serves_http_and_xmpp_together(prosody, tmp_path):
    proc, bot, line = start("web_bot.py", prosody, tmp_path, "--http-port", "0")
    url = line.split()[-1]
    try:
        jid, pw = prosody.account("peer")

        async def main():
            got = asyncio.Queue()
            async with epode.Client(jid, pw, **prosody.kwargs()) as c:
                c.on_message(lambda m: got.put_nowait(m.body) if m.body else None)
                c.send_message(bot, "for the web page")
                # the HTTP side sees it ...
                for _ in range(100):
                    status = await asyncio.to_thread(
                        lambda: json.load(urllib.request.urlopen(url, timeout=5)))
                    if status["received"]:
                        break
                    await asyncio.sleep(0.05)
                assert status["last"][-1]["body"] == "for the web page"
                assert status["jid"] == bot
                # ... and can send through the bot
                req = urllib.request.Request(url + "send", method="POST",
                                             data=("to=%s&body=from+http" % c.bound_jid).encode())
                reply = await asyncio.to_thread(
                    lambda: json.load(urllib.request.urlopen(req, timeout=5)))
                assert reply["id"]
                assert await asyncio.wait_for(got.get(), 15) == "from http"
                bad = urllib.request.Request(url + "send", method="POST", data=b"to=a@@b&body=x")
                with pytest.raises(urllib.error.HTTPError) as ei:
                    await asyncio.to_thread(lambda: urllib.request.urlopen(bad, timeout=5))
                assert ei.value.code == 422

        asyncio.run(main())
    finally:
        rc, out, err = stop(proc)
    assert rc == 0, err


def test_muc_bot_answers_commands_and_ignores_history(prosody, tmp_path):
    room = "pyroom%d@%s" % (os.getpid(), prosody.muc_domain)
    jid, pw = prosody.account("member")

    async def seed():
        async with epode.Client(jid, pw, **prosody.kwargs()) as c:
            await c.muc.join(room, "seeder")
            c.muc.send(room, "!ping")  # stays in the room's history
            await asyncio.sleep(0.2)

    asyncio.run(seed())
    proc, bot, line = start("muc_bot.py", prosody, tmp_path, room, "pybot", first="joined")
    assert "as pybot" in line
    try:
        async def talk():
            said = asyncio.Queue()
            async with epode.Client(jid, pw, **prosody.kwargs()) as c:
                c.muc.on_message(lambda ev: said.put_nowait(ev.body)
                                 if ev.nick == "pybot" and not ev.history else None)
                await c.muc.join(room, "member")
                for cmd in ("!ping", "!echo hi there", "!who", "no command"):
                    c.muc.send(room, cmd)
                got = [await asyncio.wait_for(said.get(), 15) for _ in range(3)]
                await asyncio.sleep(0.3)
                assert said.empty(), "the bot answered history or a non-command"
                return got

        assert asyncio.run(talk()) == ["pong", "hi there", "member, pybot"]
    finally:
        rc, out, err = stop(proc)
    assert rc == 0, err


def test_muc_bot_reports_a_failed_join(prosody, tmp_path):
    jid, pw = prosody.account("nojoin")
    r = subprocess.run(command("muc_bot.py", prosody, jid, pw, tmp_path,
                               "room@no-such-service." + prosody.domain, "bot"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "cannot join" in r.stderr and "Traceback" not in r.stderr


def test_roster_watch_sees_subscriptions_roster_and_presence(prosody, tmp_path):
    proc, watcher, _ = start("roster_watch.py", prosody, tmp_path, "--accept-subscriptions",
                             prefix="watch")
    watcher_bare = watcher.split("/")[0]
    pj, ppw = prosody.account("friend")
    try:
        async def befriend():
            async with epode.Client(pj, ppw, **prosody.kwargs()) as c:
                c.presence.auto_accept = True  # the watcher asks back
                c.presence.subscribe(watcher_bare)
                c.send_presence(show="away", status="lunch")
                await asyncio.sleep(1.5)

        asyncio.run(befriend())
        time.sleep(0.5)
    finally:
        rc, out, err = stop(proc)
    assert rc == 0, err
    lines = out.splitlines()
    assert "subscription-request %s accepted" % pj in lines, out
    assert any(l.startswith("roster-added %s" % pj) for l in lines), out
    assert any(l.startswith("presence %s/" % pj) and " away lunch" in l for l in lines), out
