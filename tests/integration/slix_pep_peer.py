#!/usr/bin/python3
"""A third-party PEP publisher (slixmpp) for the integration tests: logs in
to HOST:PORT only (no DNS, the CA in --ca-file), approves any subscription
request and asks back (slixmpp's defaults), and once the subscription with
--to is mutual publishes its nick (XEP-0172) and an avatar (XEP-0084: data,
then metadata) made of --avatar-size bytes. Prints "ready JID", "published
nick NICK", "published avatar ID" and waits for a "done" message from --to
(exit 0), or --timeout seconds (exit 1; 2: login failed).

    slix_pep_peer.py --host H --port N --ca-file F --jid J --password P
                     --to JID --nick NICK [--avatar-size N] [--timeout S]
"""

import argparse
import asyncio
import hashlib
import sys

import slixmpp


def avatar_bytes(n):
    """The bytes the epode side checks: a PNG signature, then i*7+3."""
    sig = b'\x89PNG\r\n\x1a\n'
    return sig + bytes(((i * 7 + 3) & 0xff) for i in range(len(sig), n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', required=True)
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--ca-file', required=True)
    ap.add_argument('--jid', required=True)
    ap.add_argument('--password', required=True)
    ap.add_argument('--to', required=True)
    ap.add_argument('--nick', required=True)
    ap.add_argument('--avatar-size', type=int, default=300)
    ap.add_argument('--timeout', type=float, default=30)
    a = ap.parse_args()

    class Peer(slixmpp.ClientXMPP):
        async def get_dns_records(self, domain, port=None):
            return [(domain, a.host, a.port)]   # loopback only

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    c = Peer(a.jid, a.password)
    c.ca_certs = a.ca_file
    c.default_domain = slixmpp.JID(a.jid).domain
    for p in ('xep_0030', 'xep_0060', 'xep_0115', 'xep_0163', 'xep_0084', 'xep_0172'):
        c.register_plugin(p)
    done = loop.create_future()
    to_bare = slixmpp.JID(a.to).bare
    state = {'published': False}

    def finish(status):
        if not done.done():
            done.set_result(status)

    async def publish():
        if state['published']:
            return
        state['published'] = True
        await asyncio.sleep(1.0)   # let the server learn the subscriber's caps
        await c['xep_0172'].publish_nick(a.nick)
        print('published nick %s' % a.nick, flush=True)
        data = avatar_bytes(a.avatar_size)
        aid = hashlib.sha1(data).hexdigest()
        await c['xep_0084'].publish_avatar(data)
        await c['xep_0084'].publish_avatar_metadata({'id': aid, 'type': 'image/png',
                                                     'bytes': len(data)})
        print('published avatar %s' % aid, flush=True)

    def mutual():
        item = c.client_roster[to_bare]
        return item['subscription'] == 'both'

    def on_roster(_ev=None):
        if mutual():
            asyncio.ensure_future(publish())

    def on_start(_ev):
        print('ready %s' % c.boundjid.full, flush=True)
        c.send_presence()
        asyncio.ensure_future(c.get_roster())

    def on_message(msg):
        if msg['from'].bare == to_bare and msg['body'] == 'done':
            finish(0)

    c.add_event_handler('session_start', on_start)
    c.add_event_handler('roster_update', on_roster)
    c.add_event_handler('roster_subscription_authorized', on_roster)
    c.add_event_handler('changed_subscription', on_roster)
    c.add_event_handler('message', on_message)
    c.add_event_handler('failed_auth', lambda _e: finish(2))

    async def run():
        c.connect()
        try:
            return await asyncio.wait_for(done, a.timeout)
        except asyncio.TimeoutError:
            print('timed out', flush=True)
            return 1

    status = loop.run_until_complete(run())
    c.disconnect()
    loop.run_until_complete(asyncio.sleep(0.3))
    sys.exit(status)


if __name__ == '__main__':
    main()
