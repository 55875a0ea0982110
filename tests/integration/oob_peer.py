#!/usr/bin/python3
"""A third-party XMPP client (slixmpp) that waits for one message carrying
Out-of-Band data (XEP-0066), for the upload tests: logs in over STARTTLS
to HOST:PORT only (no DNS), verifying the certificate against --ca-file,
prints "ready JID", then "oob URL body BODY" for the first message with
an OOB URL, and exits 0 (1 after --timeout seconds without one, 2 when
login fails).

    oob_peer.py --host H --port N --ca-file F --jid J --password P [--timeout S]
"""

import argparse
import asyncio
import sys

import slixmpp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', required=True)
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--ca-file', required=True)
    ap.add_argument('--jid', required=True)
    ap.add_argument('--password', required=True)
    ap.add_argument('--timeout', type=float, default=20)
    a = ap.parse_args()

    class Peer(slixmpp.ClientXMPP):
        async def get_dns_records(self, domain, port=None):
            return [(domain, a.host, a.port)]   # loopback only

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    c = Peer(a.jid, a.password)
    c.register_plugin('xep_0066')
    c.ca_certs = a.ca_file
    c.default_domain = slixmpp.JID(a.jid).domain
    done = loop.create_future()

    def finish(status):
        if not done.done():
            done.set_result(status)

    def on_start(_ev):
        c.send_presence()
        print('ready %s' % c.boundjid.full, flush=True)

    def on_message(msg):
        url = msg['oob']['url']
        if url:
            print('oob %s body %s' % (url, msg['body']), flush=True)
            finish(0)

    c.add_event_handler('session_start', on_start)
    c.add_event_handler('message', on_message)
    c.add_event_handler('failed_auth', lambda _e: finish(2))
    c.connect(address=(a.host, a.port))
    try:
        status = loop.run_until_complete(asyncio.wait_for(done, a.timeout))
    except asyncio.TimeoutError:
        status = 1
    c.disconnect()
    try:
        loop.run_until_complete(asyncio.wait_for(c.disconnected, 5))
    except Exception:   # noqa: BLE001 - exiting anyway
        pass
    sys.exit(status)


if __name__ == '__main__':
    main()
