#!/usr/bin/env python3
"""command_bot.py — a bot that offers ad-hoc commands (XEP-0050).

    python3 command_bot.py --jid bot@example.org/bot --password-file pw.txt \\
        [--allow JID]... [--server HOST] [--port N] [--ca-file FILE] [--direct-tls] [--verbose]

From the build tree: meson devenv -C build python3 bindings/python/examples/command_bot.py ...

Commands (any XMPP client with ad-hoc commands lists them: Gajim, Psi,
Conversations, or slixmpp's xep_0050):
  uptime     how long the bot has been running (one step)
  echo-form  asks for a text and how many times, shows what it will say,
             and says it on 'complete' ('prev' goes back to the first form)

Only our own account may run them, unless --allow names a JID (a bare JID
allows all its resources). Runs until SIGINT/SIGTERM; exits 0 then, 1 with
a one-line reason if the connection ended any other way.
"""

import argparse
import asyncio
import signal
import sys
import time
from typing import Optional

import _common
import epode

STARTED = time.monotonic()


def make_bot(args: argparse.Namespace) -> epode.Client:
    client = _common.client(args)
    allow = args.allow or None  # None: our own account only

    @client.command("uptime", "Uptime", allow=allow)
    def uptime(session: epode.CommandSession) -> epode.CommandReply:
        seconds = int(time.monotonic() - STARTED)
        result = epode.Form("result", title="Uptime")
        result.add("seconds", value=seconds, label="Seconds")
        return session.complete(result, notes=["up for %d s" % seconds])

    @client.command("echo-form", "Echo a text", allow=allow)
    def echo_form(session: epode.CommandSession) -> epode.CommandReply:
        # Called once per step; session.data survives from one step to the next.
        if session.stage == 0 or session.action == "prev":
            form = epode.Form("form", title="Echo",
                              instructions="What should I say, and how many times?")
            form.add("text", label="Text", required=True, value=session.data.get("text"))
            form.add("times", "list-single", label="Times", value=session.data.get("times", "1"),
                     options=["1", "2", "3"])
            return session.ask(form, actions=("next",))
        if session.action == "next":
            submitted: Optional[epode.Form] = session.form
            text = submitted.get("text") if submitted else None
            if not text:
                raise epode.CommandError("bad-request", "bad-payload", "a text is required")
            session.data["text"] = text
            session.data["times"] = (submitted.get("times") if submitted else None) or "1"
            confirm = epode.Form("form", title="Confirm")
            confirm.add(None, "fixed", value="I will say %r %s time(s)."
                        % (text, session.data["times"]))
            return session.ask(confirm, actions=("prev", "complete"), default="complete")
        said = " ".join([session.data["text"]] * int(session.data["times"]))
        result = epode.Form("result", title="Echo")
        result.add("echo", value=said, label="Echo")
        return session.complete(result, notes=[said])

    @client.on_event
    def event(name: str) -> None:
        if name == "ready":
            client.send_presence(status="Ad-hoc commands: uptime, echo-form")
            print("ready as %s" % client.bound_jid, flush=True)

    return client


async def serve(client: epode.Client) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, client.stop)
    await client.connect()
    await client.wait_disconnected()


def main() -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--allow", action="append", metavar="JID",
                   help="a JID that may run the commands (repeatable)")
    args = p.parse_args()
    client = make_bot(args)
    try:
        asyncio.run(serve(client))
    except epode.Error as exc:
        print("command_bot: %s" % exc, file=sys.stderr)
        return 1
    err = client.last_error
    if err is not None and client.connection.reason != "closed":
        print("command_bot: %s" % err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
