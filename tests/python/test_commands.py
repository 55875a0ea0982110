"""Ad-hoc commands (XEP-0050) and data forms in the Python binding
(epode/_commands.py over bindings/python/src/commands.c): epode.Form,
the @client.command decorator, client.commands. Unit tests first (no
server), then an epode bot and epode clients on a real Prosody with
mod_adhoc and mod_uptime (its own, started once for this module)."""

import asyncio

import pytest

import epode

from _util import until


# ---- without a server ----------------------------------------------------------

def test_form_fields_values_and_submission():
    f = epode.Form("form", title="Echo", instructions="say something")
    f.add("text", label="Text", required=True)
    f.add("mood", "list-single", options=["happy", ("Sad", "sad")], value="happy")
    f.add("loud", "boolean", value=False)
    f.add(None, "fixed", value="a note")
    assert f["mood"] == "happy" and f["loud"] == "false" and f["text"] is None
    assert f.get("nope", "x") == "x" and "text" in f and "nope" not in f
    with pytest.raises(KeyError):
        f["nope"]
    assert f.field("mood").options == [(None, "happy"), ("Sad", "sad")]
    s = f.submit(text="hi", loud=True, extra=["a", "b"])
    assert s.type == "submit"
    assert [x.var for x in s.fields] == ["text", "mood", "loud", "extra"]  # no fixed field
    assert s["text"] == "hi" and s["loud"] == "true" and s.field("extra").values == ["a", "b"]
    assert s.field("mood").options == []  # a submission carries values only
    with pytest.raises(ValueError):
        epode.Form("sideways")


def test_commands_before_connect_and_argument_checks():
    c = epode.Client("bot@example.invalid/r", "x")

    @c.command("uptime", "Uptime")
    def uptime(session):
        return session.complete(notes=["up"])

    assert c.commands.session_count == 0
    assert "commands" in repr(c.commands).lower()
    with pytest.raises(ValueError):
        c.commands.add("uptime", "Again", uptime)
    c.commands.remove("uptime")
    with pytest.raises(KeyError):
        c.commands.remove("uptime")

    async def main():
        with pytest.raises(epode.Error) as ei:
            await c.commands.execute("peer@example.invalid/x", "n")
        assert ei.value.code == epode.ESTATE  # not connected
    asyncio.run(main())


def test_allow_takes_a_jid_a_list_or_a_function():
    from epode._commands import _allow_fn
    one = _allow_fn("Friend@example.org")
    assert one("friend@example.org/phone") and not one("other@example.org/x")
    some = _allow_fn(["a@example.org/desk", "b@example.org"])
    assert some("a@example.org/desk") and not some("a@example.org/phone")
    assert some("b@example.org/any")
    assert _allow_fn(None) is None
    assert _allow_fn(lambda jid: jid.startswith("x"))("xy@z")


def test_command_error_is_a_stanza_error():
    e = epode.CommandError("bad-request", "bad-sessionid", "gone")
    assert isinstance(e, epode.StanzaError)
    assert e.condition == "bad-request" and e.specific == "bad-sessionid" and e.text == "gone"


# ---- against Prosody (adhoc, uptime) -----------------------------------------------

@pytest.fixture(scope="module")
def adhoc(tmp_path_factory):
    import xmppservers as xs
    from conftest import Server
    pki = xs.make_pki(str(tmp_path_factory.mktemp("pki-adhoc")))
    srv = xs.SERVERS["prosody"](pki=pki, graceful_stop=False, modules=("adhoc", "uptime"))
    srv.start()
    try:
        yield Server(srv)
    finally:
        srv.stop()


async def connected(server, jid, pw):
    c = epode.Client(jid, pw, **server.kwargs())
    await c.connect(timeout=20)
    return c


def make_bot(jid, pw, server):
    bot = epode.Client(jid + "/bot", pw, **server.kwargs())
    seen = {"cancel_data": None}

    @bot.command("uptime", "Uptime")
    def uptime(session):
        return session.complete(notes=["up and running"])

    @bot.command("echo", "Echo a text")
    def echo(session):
        if session.stage == 0 or session.action == "prev":
            form = epode.Form("form", title="Echo")
            form.add("text", label="Text", required=True,
                     value=session.data.get("text"))
            return session.ask(form, actions=("next",))
        if session.action == "next":
            session.data["text"] = session.form["text"]
            confirm = epode.Form("form", title="Confirm")
            confirm.add(None, "fixed", value="Echo %r?" % session.data["text"])
            return session.ask(confirm, actions=("prev", "complete"), default="complete",
                               notes=[("warn", "last chance")])
        result = epode.Form("result")
        result.add("text", value=session.data["text"])
        return session.complete(result, notes=["echoed"])

    @bot.command("open", "Open to anyone", allow=lambda jid: True)
    async def open_(session):
        await asyncio.sleep(0.01)
        return "hello " + session.requester.split("@")[0]

    @bot.command("refuse", "Refuses", allow=lambda jid: True)
    def refuse(session):
        raise epode.CommandError("not-allowed", text="nope")

    return bot, seen


@pytest.mark.server
def test_bot_commands_listed_and_run_through_every_action(adhoc):
    async def main():
        jid, pw = adhoc.account("cb")
        bot, _ = make_bot(jid, pw, adhoc)
        await bot.connect(timeout=20)
        me = await connected(adhoc, jid + "/desk", pw)  # our own account: allowed
        bj = bot.bound_jid
        items = await me.commands.list(bj)
        assert [(i.node, i.name) for i in items] == [
            ("uptime", "Uptime"), ("echo", "Echo a text"), ("open", "Open to anyone"),
            ("refuse", "Refuses")]
        assert all(i.jid == bj for i in items)

        r = await me.commands.execute(bj, "uptime")
        assert r.status == "completed" and r.completed
        assert r.notes == [epode.Note("info", "up and running")]

        r = await me.commands.execute(bj, "echo")
        assert r.status == "executing" and r.actions == ("next",) and r.default_action == "next"
        assert r.form is not None and r.form.title == "Echo" and r.form.field("text").required
        sid = r.session_id
        r = await r.next(r.form.submit(text="hi there"))
        assert r.status == "executing" and r.session_id == sid
        assert set(r.actions) == {"prev", "complete"} and r.default_action == "complete"
        assert r.notes == [epode.Note("warn", "last chance")]
        r = await r.prev()
        assert r.form["text"] == "hi there"  # the bot kept it in session.data
        r = await r.next(r.form.submit(text="again"))
        r = await r.proceed()  # execute = the default action: complete
        assert r.status == "completed" and r.form.type == "result"
        assert r.form["text"] == "again" and r.notes[0].text == "echoed"
        assert bot.commands.session_count == 0

        # cancel
        r = await me.commands.execute(bj, "echo")
        assert bot.commands.session_count == 1
        r = await r.cancel()
        assert r.status == "canceled" and bot.commands.session_count == 0

        # errors with their conditions
        with pytest.raises(epode.CommandError) as ei:
            await me.commands.proceed(bj, "echo", "no-such-session", "next")
        assert ei.value.condition == "bad-request" and ei.value.specific == "bad-sessionid"
        r = await me.commands.execute(bj, "echo")
        with pytest.raises(epode.CommandError) as ei:
            await r.complete()
        assert ei.value.specific == "bad-action"
        with pytest.raises(epode.CommandError) as ei:
            await me.commands.execute(bj, "refuse")
        assert ei.value.condition == "not-allowed" and ei.value.text == "nope"
        with pytest.raises(epode.CommandError) as ei:
            await me.commands.execute(bj, "nope")
        assert ei.value.condition == "item-not-found"
        await me.disconnect()
        await bot.disconnect()
    asyncio.run(main())


@pytest.mark.server
def test_other_accounts_see_and_run_only_what_they_are_allowed(adhoc):
    async def main():
        jid, pw = adhoc.account("cb")
        bot, _ = make_bot(jid, pw, adhoc)
        await bot.connect(timeout=20)
        ojid, opw = adhoc.account("co")
        other = await connected(adhoc, ojid + "/x", opw)
        bj = bot.bound_jid
        items = await other.commands.list(bj)
        assert [i.node for i in items] == ["open", "refuse"]
        r = await other.commands.execute(bj, "open")  # an async command
        assert r.status == "completed" and r.notes == [epode.Note("info", "hello " + ojid.split("@")[0])]
        with pytest.raises(epode.CommandError) as ei:
            await other.commands.execute(bj, "uptime")
        # a command it may not run does not exist for it (as an unknown one)
        assert ei.value.condition == "item-not-found"
        await other.disconnect()
        await bot.disconnect()
    asyncio.run(main())


@pytest.mark.server
def test_a_hung_async_command_times_out_and_is_cancelled(adhoc):
    async def main():
        jid, pw = adhoc.account("ch")
        bot = epode.Client(jid + "/bot", pw, **adhoc.kwargs())
        seen = {"started": 0, "cancelled": 0}

        @bot.command("hang", "Never answers")
        async def hang(session):
            seen["started"] += 1
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                seen["cancelled"] += 1
                raise
            return "never"

        bot.commands.set_limits(timeout=0.5)
        await bot.connect(timeout=20)
        me = await connected(adhoc, jid + "/desk", pw)
        with pytest.raises(epode.CommandError) as ei:
            await asyncio.wait_for(me.commands.execute(bot.bound_jid, "hang"), 10)
        assert ei.value.condition == "not-allowed" and ei.value.specific == "session-expired"
        assert bot.commands.session_count == 0  # the slot is free again
        await until(lambda: seen["cancelled"] == 1, what="the handler's cancellation")
        assert seen["started"] == 1
        await me.disconnect()
        await bot.disconnect()
    asyncio.run(main())


@pytest.mark.server
def test_prosodys_own_uptime_command(adhoc):
    async def main():
        jid, pw = adhoc.account("cu")
        me = await connected(adhoc, jid + "/x", pw)
        items = await me.commands.list(adhoc.domain)
        assert "uptime" in [i.node for i in items]
        r = await me.commands.execute(adhoc.domain, "uptime")
        assert r.status == "completed"
        assert any("uptime" in n.text.lower() or "running" in n.text.lower() for n in r.notes)
        await me.disconnect()
    asyncio.run(main())


@pytest.mark.server
def test_commands_made_after_connect_are_listed(adhoc):
    async def main():
        jid, pw = adhoc.account("cl")
        bot = await connected(adhoc, jid + "/bot", pw)

        @bot.command("late", "Made late")
        def late(session):
            return None

        me = await connected(adhoc, jid + "/desk", pw)
        items = await me.commands.list(bot.bound_jid)
        assert [(i.jid, i.node) for i in items] == [(bot.bound_jid, "late")]
        r = await me.commands.execute(bot.bound_jid, "late")
        assert r.completed
        await until(lambda: bot.commands.session_count == 0, what="the session's end")
        await me.disconnect()
        await bot.disconnect()
    asyncio.run(main())


# ---- the example bot (bindings/python/examples/command_bot.py) ----------------------

@pytest.mark.server
def test_command_bot_example_uptime_and_two_step_echo(prosody, tmp_path):
    from test_examples import command, stop
    import subprocess
    jid, pw = prosody.account("cmdbot")
    ujid, upw = prosody.account("cmduser")
    stranger, spw = prosody.account("cmdstranger")
    argv = command("command_bot.py", prosody, jid + "/bot", pw, tmp_path, "--allow", ujid)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("ready as"), (line, proc.stderr.read() if proc.poll() is not None else "")
    bot = jid + "/bot"

    async def main():
        async with epode.Client(ujid + "/u", upw, **prosody.kwargs()) as u:
            items = await u.commands.list(bot)
            assert [(i.node, i.name) for i in items] == [("uptime", "Uptime"),
                                                         ("echo-form", "Echo a text")]
            r = await u.commands.execute(bot, "uptime")
            assert r.completed and int(r.form["seconds"]) >= 0
            assert r.notes[0].text.startswith("up for")
            r = await u.commands.execute(bot, "echo-form")
            assert r.status == "executing" and r.form.field("times").options
            with pytest.raises(epode.CommandError) as ei:
                await r.next(r.form.submit())  # no text
            assert ei.value.specific == "bad-payload"
            r = await u.commands.execute(bot, "echo-form")
            r = await r.next(r.form.submit(text="hi", times="2"))
            assert r.actions == ("prev", "complete")
            r = await r.prev()
            assert r.form["text"] == "hi" and r.form["times"] == "2"
            r = await r.next(r.form.submit(text="ho", times="3"))
            r = await r.complete()
            assert r.completed and r.form["echo"] == "ho ho ho" and r.notes[0].text == "ho ho ho"
        async with epode.Client(stranger + "/s", spw, **prosody.kwargs()) as s:
            assert await s.commands.list(bot) == []
            with pytest.raises(epode.CommandError) as ei:
                await s.commands.execute(bot, "uptime")
            assert ei.value.condition == "item-not-found"
    try:
        asyncio.run(main())
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
