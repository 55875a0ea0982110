#!/usr/bin/env python3
"""web_bot.py — an XMPP bot and a small HTTP service in one asyncio program.

    python3 web_bot.py --jid bot@example.org --password-file pw.txt \\
        [--server HOST] [--port N] [--ca-file FILE] [--http-port 8080]

The bot keeps the last messages it received; the HTTP side, on
127.0.0.1, serves them and can send:
    GET  /          -> JSON: {"jid": ..., "received": N, "last": [{"from", "body"}...]}
    POST /send      form fields to=JID&body=TEXT -> 202 and the message id
Both run on the same event loop: epode adds its sockets to it and never
blocks it. SIGINT/SIGTERM stop both cleanly.
"""

import argparse
import asyncio
import collections
import json
import signal
import sys
import urllib.parse
from typing import Any, Optional

import _common
import epode


class WebBot:
    def __init__(self, client: epode.Client):
        self.client = client
        self.received = 0
        self.last: collections.deque[dict[str, Optional[str]]] = collections.deque(maxlen=20)
        client.on_message(self.on_message)

    def on_message(self, msg: epode.Message) -> None:
        if msg.body is not None and msg.type in ("chat", "normal"):
            self.received += 1
            self.last.append({"from": msg.from_, "body": msg.body})

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip()
                       for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
            length = int(headers.get("content-length", "0") or 0)
            body = await reader.readexactly(length) if 0 < length <= 65536 else b""
            status, payload = self.route(method, path, body)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                ValueError):
            status, payload = 400, {"error": "bad request"}
        data = json.dumps(payload).encode()
        writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                     % (status, {200: b"OK", 202: b"Accepted"}.get(status, b"Error"), len(data))
                     + data)
        try:
            await writer.drain()
        finally:
            writer.close()

    def route(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == "/":
            return 200, {"jid": self.client.bound_jid, "received": self.received,
                         "last": list(self.last)}
        if method == "POST" and path == "/send":
            form = urllib.parse.parse_qs(body.decode("utf-8"))
            try:
                mid = self.client.send_message(form["to"][0], form["body"][0])
            except (KeyError, IndexError):
                return 400, {"error": "to and body are required"}
            except epode.Error as exc:
                return 422, {"error": str(exc), "code": exc.name}
            return 202, {"id": mid}
        return 404, {"error": "not found"}


async def main_async(args: argparse.Namespace) -> int:
    client = _common.client(args)
    bot = WebBot(client)
    await client.connect()
    client.send_presence(status="also on the web")
    server = await asyncio.start_server(bot.handle, "127.0.0.1", args.http_port)
    port = server.sockets[0].getsockname()[1]
    print("ready as %s, http://127.0.0.1:%d/" % (client.bound_jid, port), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ended = asyncio.ensure_future(client.wait_disconnected())
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait([ended, waiter], return_when=asyncio.FIRST_COMPLETED)
    server.close()
    await server.wait_closed()
    if not ended.done():
        await client.disconnect()
    waiter.cancel()
    return 0 if client.connection.reason == "closed" else 1


def main() -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--http-port", type=int, default=8080, help="0 picks a free port")
    args = p.parse_args()
    try:
        return asyncio.run(main_async(args))
    except epode.Error as exc:
        print("web_bot: %s" % exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
