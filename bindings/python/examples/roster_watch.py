#!/usr/bin/env python3
"""roster_watch.py — prints the roster, then every roster and presence
change, one line each, until stopped.

    python3 roster_watch.py --jid me@example.org --password-file pw.txt \\
        [--server HOST] [--port N] [--ca-file FILE] [--accept-subscriptions]

Lines:  ready as FULL-JID                        (once logged in)
        roster JID SUBSCRIPTION NAME GROUPS     (the list after login)
        roster-added|updated|removed JID SUBSCRIPTION
        presence JID SHOW STATUS                 (SHOW: available, away, ...;
                                                  unavailable when it goes)
        subscription-request JID accepted|refused
With --accept-subscriptions, requests are approved (and answered with a
request of our own); otherwise refused. SIGINT/SIGTERM close cleanly.
"""

import argparse
import asyncio
import signal
import sys
from typing import Optional

import _common
import epode


def say(*words: object) -> None:
    print(" ".join("-" if w is None or w == "" else str(w) for w in words), flush=True)


async def run(args: argparse.Namespace) -> int:
    client = _common.client(args)
    roster, presence = client.roster, client.presence

    @client.on_event
    def event(name: str) -> None:
        if name == "ready":
            say("ready as", client.bound_jid)

    @roster.on_change
    def roster_changed(event: str, item: Optional[epode.RosterItem]) -> None:
        if event == "received":
            for it in sorted(roster, key=lambda i: i.jid):
                say("roster", it.jid, it.subscription, it.name, ",".join(it.groups))
        elif item is not None:
            say("roster-" + event, item.jid, item.subscription)

    @presence.on_change
    def presence_changed(change: str, info: epode.PresenceInfo) -> None:
        show = "unavailable" if change == "unavailable" else (info.show or "available")
        say("presence", info.jid, show, info.status)

    @presence.on_subscription
    def subscription(jid: str, kind: str, status: Optional[str]) -> Optional[bool]:
        if kind != "request":
            say("subscription-" + kind, jid)
            return None
        say("subscription-request", jid, "accepted" if args.accept_subscriptions else "refused")
        if args.accept_subscriptions:
            presence.subscribe(jid)  # and ask back, for a mutual subscription
        return bool(args.accept_subscriptions)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, client.stop)
    await client.connect()
    client.send_presence(status="watching")
    await client.wait_disconnected()
    return 0 if client.connection.reason == "closed" else 1


def main() -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--accept-subscriptions", action="store_true")
    args = p.parse_args()
    try:
        return asyncio.run(run(args))
    except epode.Error as exc:
        print("roster_watch: %s" % exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
