#!/usr/bin/python3
"""A third-party XMPP client (slixmpp) for the integration tests: logs in
over STARTTLS to HOST:PORT only (no DNS), verifying the server certificate
against --ca-file for the JID's domain, sends initial presence, sends each
--body as a chat message to --to, and waits until every body has come back
from --to (any resource). Prints "ready JID", then "sent BODY" and
"received FROM BODY" lines (newlines escaped); exit 0 if every body came
back exactly as sent, 1 otherwise (2: login failed).

    slix_peer.py --host H --port N --ca-file F --jid J --password P
                 --to JID --body TEXT [--body TEXT ...] [--timeout S]
"""

import argparse
import asyncio
import sys

import slixmpp


def esc(s):
    return s.replace('\\', '\\\\').replace('\n', '\\n')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', required=True)
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--ca-file', required=True)
    ap.add_argument('--jid', required=True)
    ap.add_argument('--password', required=True)
    ap.add_argument('--to', required=True)
    ap.add_argument('--body', action='append', required=True)
    ap.add_argument('--timeout', type=float, default=20)
    a = ap.parse_args()

    class Peer(slixmpp.ClientXMPP):
        async def get_dns_records(self, domain, port=None):
            return [(domain, a.host, a.port)]   # loopback only

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    c = Peer(a.jid, a.password)
    c.ca_certs = a.ca_file
    c.default_domain = slixmpp.JID(a.jid).domain
    want = list(a.body)
    got = []
    done = loop.create_future()
    to_bare = slixmpp.JID(a.to).bare

    def finish(status):
        if not done.done():
            done.set_result(status)

    def on_start(_ev):
        print('ready %s' % c.boundjid.full, flush=True)
        c.send_presence()
        for b in want:
            c.send_message(mto=a.to, mbody=b, mtype='chat')
            print('sent %s' % esc(b), flush=True)

    def on_message(msg):
        if msg['type'] not in ('chat', 'normal') or not msg['body']:
            return
        print('received %s %s' % (msg['from'].full, esc(msg['body'])), flush=True)
        if msg['from'].bare == to_bare:
            got.append(msg['body'])
            if len(got) >= len(want):
                finish('done')

    c.add_event_handler('session_start', on_start)
    c.add_event_handler('message', on_message)
    c.add_event_handler('failed_auth', lambda *_: finish('failed_auth'))
    c.add_event_handler('connection_failed', lambda e: finish('connection_failed: %s' % e))
    c.connect(address=(a.host, a.port))
    try:
        status = loop.run_until_complete(asyncio.wait_for(done, a.timeout))
    except asyncio.TimeoutError:
        status = 'timeout'
    c.disconnect()
    try:
        loop.run_until_complete(asyncio.wait_for(c.disconnected, 5))
    except Exception:   # noqa: BLE001 - best effort
        pass
    for task in asyncio.all_tasks(loop):
        task.cancel()
    try:
        loop.run_until_complete(asyncio.sleep(0))
    except Exception:   # noqa: BLE001
        pass
    loop.close()
    print('status %s' % status, flush=True)
    if status in ('failed_auth',) or status.startswith('connection_failed'):
        return 2
    return 0 if status == 'done' and got == want else 1


if __name__ == '__main__':
    sys.exit(main())
