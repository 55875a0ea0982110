"""Entity capabilities (XEP-0115) between epode and a third-party client
(slixmpp) through real Prosody and ejabberd: epode fetches and verifies
slixmpp's advertised hash and answers "does it support X"; slixmpp fetches
epode's disco#info for node#ver and recomputes epode's hash itself.

Run as a script, this file is the slixmpp side (see slix_main)."""

import argparse
import asyncio
import os
import subprocess
import sys

SLIX_FEATURE = 'urn:example:slix-caps-feature'
EPODE_FEATURE = 'urn:example:epode-caps-feature'


def slix_main():
    """slixmpp peer: logs in, sends directed presence (with its caps) to
    --to, waits for --to's presence with caps, lets slixmpp's xep_0115
    plugin fetch and validate them, and prints 'advertised VER',
    'verified VER' and 'has FEATURE' lines, then 'status done'."""
    import slixmpp
    ap = argparse.ArgumentParser()
    for o in ('--host', '--ca-file', '--jid', '--password', '--to'):
        ap.add_argument(o, required=True)
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--timeout', type=float, default=25)
    a = ap.parse_args()

    class Peer(slixmpp.ClientXMPP):
        async def get_dns_records(self, domain, port=None):
            return [(domain, a.host, a.port)]

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    c = Peer(a.jid, a.password)
    c.ca_certs = a.ca_file
    c.register_plugin('xep_0030')
    c.register_plugin('xep_0115')
    done = loop.create_future()
    seen = {}

    def finish(status):
        if not done.done():
            done.set_result(status)

    async def on_start(_ev):
        c['xep_0030'].add_feature(SLIX_FEATURE)
        await c['xep_0115'].update_caps()
        print('ready %s' % c.boundjid.full, flush=True)
        print('own-ver %s' % (await c['xep_0115'].get_verstring(c.boundjid)), flush=True)
        c.send_presence(pto=a.to)

    def on_presence(pres):
        if pres['from'].bare != slixmpp.JID(a.to).bare or pres['type'] in ('unavailable', 'error'):
            return
        ver = pres['caps']['ver']
        if ver and 'ver' not in seen:
            seen['ver'] = ver
            seen['jid'] = pres['from'].full
            print('advertised %s %s %s' % (pres['caps']['hash'], pres['caps']['node'], ver),
                  flush=True)
            loop.create_task(check())

    async def check():
        for _ in range(100):
            got = await c['xep_0115'].get_verstring(seen['jid'])
            if got == seen['ver']:
                print('verified %s' % got, flush=True)
                info = await c['xep_0115'].get_caps(jid=seen['jid'])
                for f in info['features']:
                    print('has %s' % f, flush=True)
                finish('done')
                return
            await asyncio.sleep(0.1)
        finish('not-verified')

    c.add_event_handler('session_start', on_start)
    c.add_event_handler('presence', on_presence)
    c.add_event_handler('failed_auth', lambda *_: finish('failed_auth'))
    c.connect(address=(a.host, a.port))
    try:
        status = loop.run_until_complete(asyncio.wait_for(done, a.timeout))
    except asyncio.TimeoutError:
        status = 'timeout'
    c.disconnect()
    try:
        loop.run_until_complete(asyncio.wait_for(c.disconnected, 5))
    except Exception:  # noqa: BLE001 - best effort
        pass
    for task in asyncio.all_tasks(loop):
        task.cancel()
    try:
        loop.run_until_complete(asyncio.sleep(0))
    except Exception:  # noqa: BLE001
        pass
    loop.close()
    print('status %s' % status, flush=True)
    return 0 if status == 'done' else 1


if __name__ == '__main__':
    sys.exit(slix_main())


from integ_util import BUILD, PYTHON, USERS, jid, read_line_starting  # noqa: E402

PROBE = os.path.join(BUILD, 'tests', 'integration', 'im_disco_probe')


def probe_argv(srv, user, *extra):
    return [PROBE, '--server', srv.host, '--port', str(srv.c2s_port), '--ca-file', srv.ca_file,
            '--jid', jid(srv, user), '--password', USERS[user]] + [str(e) for e in extra]


def test_caps_between_epode_and_slixmpp(server, spawn):
    slix_bare = jid(server, 'charlie')
    ep = spawn.popen(probe_argv(server, 'bob', '--feature', EPODE_FEATURE, '--watch', slix_bare,
                                '--check', SLIX_FEATURE, '--linger', 12, '--timeout', 30))
    lines = read_line_starting(ep, 'ver ')
    ep_jid = [l for l in lines if l.startswith('ready ')][0].split()[1]
    ep_ver = [l for l in lines if l.startswith('ver ')][0].split()[1]
    sl = subprocess.run([PYTHON, os.path.abspath(__file__), '--host', server.host,
                         '--port', str(server.c2s_port), '--ca-file', server.ca_file,
                         '--jid', slix_bare, '--password', USERS['charlie'], '--to', ep_jid],
                        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    out, err = ep.communicate(timeout=40)
    ep_out = ep.consumed.decode() + out
    info = 'epode:\n%s\n%s\nslixmpp (exit %s):\n%s\n%s' % (ep_out, err[-2000:], sl.returncode,
                                                         sl.stdout, sl.stderr[-4000:])
    slix_lines = sl.stdout.splitlines()
    ep_lines = ep_out.splitlines()
    # epode verified slixmpp's hash and knows its features
    slix_full = [l for l in slix_lines if l.startswith('ready ')][0].split()[1]
    assert 'caps %s verified' % slix_full in ep_lines, info
    assert 'supports %s %s 1' % (slix_full, SLIX_FEATURE) in ep_lines, info
    # slixmpp verified epode's: the ver epode advertised is the one it computed
    assert 'advertised sha-1 https://epode.example/im_disco_probe %s' % ep_ver in slix_lines, info
    assert 'verified %s' % ep_ver in slix_lines, info
    assert 'has %s' % EPODE_FEATURE in slix_lines, info
    assert 'has http://jabber.org/protocol/caps' in slix_lines, info
    assert sl.returncode == 0, info
    assert ep.returncode == 0, info
