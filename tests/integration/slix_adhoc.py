#!/usr/bin/python3
"""A third-party requester of ad-hoc commands (slixmpp's xep_0050) for the
integration tests: logs in over STARTTLS to HOST:PORT only (no DNS),
verifying the server certificate against --ca-file, lists --to's commands
("list NODE NAME"), runs "uptime" ("result uptime STATUS NOTE"), runs
"echo-form" through next (with --text) and complete ("result echo-form
STATUS ECHO"), and names a session that does not exist ("error COND
SPECIFIC"). Exit 0 when every step got an answer, 1 otherwise (2: login
failed).

    slix_adhoc.py --host H --port N --ca-file F --jid J --password P --to JID
                  [--text T] [--timeout S]
"""

import argparse
import asyncio
import sys

import slixmpp
from slixmpp.exceptions import IqError

NS = 'http://jabber.org/protocol/commands'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', required=True)
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--ca-file', required=True)
    ap.add_argument('--jid', required=True)
    ap.add_argument('--password', required=True)
    ap.add_argument('--to', required=True)
    ap.add_argument('--text', default='from slixmpp')
    ap.add_argument('--timeout', type=float, default=30)
    a = ap.parse_args()

    class Peer(slixmpp.ClientXMPP):
        async def get_dns_records(self, domain, port=None):
            return [(domain, a.host, a.port)]   # loopback only

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    c = Peer(a.jid, a.password)
    c.register_plugin('xep_0030')
    c.register_plugin('xep_0004')
    c.register_plugin('xep_0050')
    c.ca_certs = a.ca_file
    c.default_domain = slixmpp.JID(a.jid).domain
    done = loop.create_future()

    def finish(status):
        if not done.done():
            done.set_result(status)

    def note_text(iq):
        notes = iq['command']['notes']
        return notes[0][1] if notes else '-'

    async def script():
        adhoc = c['xep_0050']
        items = await adhoc.get_commands(a.to)
        for item in items['disco_items']['items']:
            print('list %s %s' % (item[1], item[2]), flush=True)
        r = await adhoc.send_command(a.to, 'uptime')
        print('result uptime %s %s' % (r['command']['status'], note_text(r)), flush=True)
        r = await adhoc.send_command(a.to, 'echo-form')
        sid = r['command']['sessionid']
        actions = r['command']['actions']
        print('result echo-form %s actions=%s' % (r['command']['status'], ','.join(actions)),
              flush=True)
        form = c['xep_0004'].make_form(ftype='submit')
        form.add_field(var='text', value=a.text)
        r = await adhoc.send_command(a.to, 'echo-form', action='next', payload=form,
                                     sessionid=sid)
        print('result echo-form %s note=%s' % (r['command']['status'], note_text(r)), flush=True)
        r = await adhoc.send_command(a.to, 'echo-form', action='complete', sessionid=sid)
        echo = r['command']['form'].get_values().get('echo')
        print('result echo-form %s echo=%s' % (r['command']['status'], echo), flush=True)
        try:
            await adhoc.send_command(a.to, 'echo-form', action='next', sessionid='bogus')
            print('error none', flush=True)
        except IqError as e:
            err = e.iq['error']
            specific = [x.tag.split('}')[1] for x in err.xml if x.tag.startswith('{%s}' % NS)]
            print('error %s %s' % (err['condition'], specific[0] if specific else '-'),
                  flush=True)
        finish('done')

    def on_start(_ev):
        print('ready %s' % c.boundjid.full, flush=True)
        c.send_presence()
        task = loop.create_task(script())
        task.add_done_callback(lambda t: finish('failed: %r' % t.exception())
                               if t.exception() else None)

    c.add_event_handler('session_start', on_start)
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
    if status == 'failed_auth' or status.startswith('connection_failed'):
        return 2
    return 0 if status == 'done' else 1


if __name__ == '__main__':
    sys.exit(main())
