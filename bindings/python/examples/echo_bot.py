#!/usr/bin/env python3
"""echo_bot.py — answers every chat or normal message with the same body.

    python3 echo_bot.py --jid bot@example.org --password-file pw.txt \\
        [--server HOST] [--port N] [--ca-file FILE] [--direct-tls] [--verbose] [--blocking]

From the build tree: meson devenv -C build python3 bindings/python/examples/echo_bot.py ...

"send me a file" is answered with a URL instead: the bot uploads a small
text file to the server's upload service (XEP-0363, over HTTPS) and sends
the URL as the body and as Out-of-Band data (XEP-0066), which clients
show as the file itself (asyncio mode only).

Runs until the connection ends: SIGINT/SIGTERM, or the message "!quit"
from its own account, close it cleanly. Exits 0 then, and 1 with a
one-line reason if it ended any other way. --blocking uses Client.run()
instead of asyncio (the same bot, for programs without an event loop).
"""

import argparse
import asyncio
import signal
import sys
from typing import Awaitable, Optional

import _common
import epode


FILE_TEXT = b"Hello from epode's echo bot: this file went up by XEP-0363.\n" * 20


def make_bot(args: argparse.Namespace) -> epode.Client:
    client = _common.client(args)

    async def send_file(to: str, type: str) -> None:
        try:
            url = await client.upload(FILE_TEXT, "hello.txt", "text/plain")
        except epode.Error as exc:
            client.send_message(to, "upload failed: %s" % exc, type=type)
            return
        client.send_url(to, url, type=type)
        print("uploaded a file for %s: %s" % (to, url), flush=True)

    @client.on_message
    def echo(msg: epode.Message) -> Optional[Awaitable[None]]:
        if msg.body is None or msg.from_ is None or msg.type not in ("chat", "normal"):
            return None  # chat states, receipts, errors, groupchat: not for us
        if msg.from_bare == (client.bound_jid or "").split("/")[0] and msg.body == "!quit":
            client.stop()
            return None
        if msg.body.strip().lower() == "send me a file":
            if not getattr(args, "blocking", False):
                return send_file(msg.from_, msg.type)  # run as a task by the client
            client.send_message(msg.from_, "uploads need the asyncio mode", type=msg.type)
            return None
        client.send_message(msg.from_, msg.body, type=msg.type)
        print("echoed %d characters to %s" % (len(msg.body), msg.from_), flush=True)
        return None

    @client.on_event
    def event(name: str) -> None:
        if name == "ready":
            client.send_presence(status="I repeat what you say")
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
    p.add_argument("--blocking", action="store_true", help="use Client.run(), not asyncio")
    args = p.parse_args()
    client = make_bot(args)
    try:
        if args.blocking:
            signal.signal(signal.SIGTERM, lambda *_: client.stop())
            try:
                client.run()
            except KeyboardInterrupt:
                client.stop()
                client.run(timeout=5)
        else:
            asyncio.run(serve(client))
    except epode.Error as exc:
        print("echo_bot: %s" % exc, file=sys.stderr)
        return 1
    err = client.last_error
    if err is not None and client.connection.reason != "closed":
        print("echo_bot: %s" % err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
