#!/usr/bin/python3
"""A third-party provider of ad-hoc commands (slixmpp's xep_0050) for the
integration tests: logs in over STARTTLS to HOST:PORT only (no DNS),
verifying the server certificate against --ca-file, offers the command
"greet" (a form asking for a name, then a note "hello NAME") and prints
"ready JID", then "greeted NAME" for each completed run. Ends after
--timeout seconds or --count completed runs (exit 0; 2: login failed).

    slix_adhoc_bot.py --host H --port N --ca-file F --jid J --password P
                      [--count N] [--timeout S]
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
    ap.add_argument('--count', type=int, default=1)
    ap.add_argument('--timeout', type=float, default=40)
    a = ap.parse_args()

    class Bot(slixmpp.ClientXMPP):
        async def get_dns_records(self, domain, port=None):
            return [(domain, a.host, a.port)]   # loopback only

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    c = Bot(a.jid, a.password)
    for plugin in ('xep_0030', 'xep_0004', 'xep_0050'):
        c.register_plugin(plugin)
    c.ca_certs = a.ca_file
    c.default_domain = slixmpp.JID(a.jid).domain
    done = loop.create_future()
    greeted = []

    def finish(status):
        if not done.done():
            done.set_result(status)

    def greet_complete(payload, session):
        name = payload.get_values().get('name') if payload else None
        session['payload'] = None
        session['next'] = None
        session['notes'] = [('info', 'hello %s' % name)]
        print('greeted %s' % name, flush=True)
        greeted.append(name)
        if len(greeted) >= a.count:
            loop.call_later(0.5, finish, 'done')
        return session

    def greet_start(iq, session):
        form = c['xep_0004'].make_form(ftype='form', title='Greeting')
        form.add_field(var='name', ftype='text-single', label='Your name', required=True)
        session['payload'] = form
        session['next'] = greet_complete
        session['has_next'] = False
        return session

    def on_start(_ev):
        c.send_presence()
        c['xep_0050'].add_command(node='greet', name='Greet', handler=greet_start)
        print('ready %s' % c.boundjid.full, flush=True)

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
