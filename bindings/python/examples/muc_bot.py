#!/usr/bin/env python3
"""muc_bot.py — joins a group chat room and answers commands there.

    python3 muc_bot.py --jid bot@example.org --password-file pw.txt \\
        [--server HOST] [--port N] [--ca-file FILE] ROOM@SERVICE NICK

In the room: "!ping" -> "pong", "!echo TEXT" -> "TEXT", "!who" -> the
occupants' nicks. Its own messages and the room's history are ignored.
A private message "!quit" from its own account makes it leave and exit
0; SIGINT/SIGTERM leave the room and close cleanly too. Exits 1 with a
one-line reason if the join fails (nick taken, room closed, ...).
"""

import argparse
import asyncio
import signal
import sys

import _common
import epode


async def run(args: argparse.Namespace) -> int:
    client = _common.client(args)
    muc = client.muc
    muc.set_nick_retry(3)  # a taken nick becomes NICK_, NICK__, ...

    @muc.on_message
    def command(ev: epode.MucEvent) -> None:
        if ev.is_self or ev.history or not ev.body or not ev.body.startswith("!"):
            return
        cmd, _, rest = ev.body.partition(" ")
        if cmd == "!ping":
            muc.send(ev.room, "pong")
        elif cmd == "!echo" and rest:
            muc.send(ev.room, rest)
        elif cmd == "!who":
            room = muc.room(ev.room)
            if room is not None:
                muc.send(ev.room, ", ".join(sorted(o.nick for o in room.occupants)))

    @client.on_message(type="chat")
    def quit_command(msg: epode.Message) -> None:
        own = (client.bound_jid or "").split("/")[0]
        if msg.body == "!quit" and msg.from_bare == own:
            muc.leave(args.room, "bye")
            client.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: client.stop("shutting down"))
    await client.connect()
    client.send_presence()
    try:
        room = await muc.join(args.room, args.nick)
    except epode.Error as exc:
        print("muc_bot: cannot join %s: %s" % (args.room, exc), file=sys.stderr)
        await client.disconnect()
        return 1
    print("joined %s as %s (%d occupants)" % (room.jid, room.nick, len(room.occupants)),
          flush=True)
    await client.wait_disconnected()
    return 0 if client.connection.reason == "closed" else 1


def main() -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("room", help="the room's bare JID, room@service")
    p.add_argument("nick", help="the bot's nickname in the room")
    args = p.parse_args()
    try:
        return asyncio.run(run(args))
    except epode.Error as exc:
        print("muc_bot: %s" % exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
