"""The echo bot behaves like a well-mannered client, seen from a
third-party client (slixmpp): it accepts a subscription request and asks
back, answers disco#info with ping/version/caps features, answers a ping
and a version query, and advertises entity capabilities whose hash
matches what it answers."""
import os
import subprocess
import sys
import time
import uuid

import pytest

import integ_util as iu
from integ_util import USERS, conn_args, jid, write_password_file

HERE = os.path.dirname(os.path.abspath(__file__))

PEER = r'''
import asyncio, sys
import slixmpp
host, port, ca, me, pw, bot = sys.argv[1:7]

class Peer(slixmpp.ClientXMPP):
    async def get_dns_records(self, domain, port_=None):
        return [(domain, host, int(port))]

loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
c = Peer(me, pw)
c.ca_certs = ca
c.default_domain = slixmpp.JID(me).domain
for p in ('xep_0030', 'xep_0092', 'xep_0199', 'xep_0115'):
    c.register_plugin(p)
done = loop.create_future()
bot_bare = slixmpp.JID(bot).bare

def out(*a):
    print(*a, flush=True)

def on_presence_subscribed(p):
    if p['from'].bare == bot_bare:
        out('subscribed-by-bot')

def on_presence_subscribe(p):
    if p['from'].bare == bot_bare:
        out('bot-asks-back')
        c.send_presence(pto=bot_bare, ptype='subscribed')

def on_presence(p):
    if p['from'] == slixmpp.JID(bot) and p['type'] in ('available', ''):
        caps = p.xml.find('{http://jabber.org/protocol/caps}c')
        if caps is not None:
            out('caps', caps.get('hash'), caps.get('node'), caps.get('ver'))

async def start(_):
    c.send_presence()
    await c.get_roster()
    c.send_presence(pto=bot_bare, ptype='subscribe')
    await asyncio.sleep(1.5)
    info = await c['xep_0030'].get_info(jid=bot, timeout=10)
    feats = info['disco_info']['features']
    for f in sorted(feats):
        out('feature', f)
    # the caps hash of what the bot answers, recomputed by slixmpp
    ver = c['xep_0115'].generate_verstring(info['disco_info'], 'sha-1')
    out('computed-ver', ver)
    rtt = await c['xep_0199'].ping(jid=bot, timeout=10)
    out('ping-ok')
    v = await c['xep_0092'].get_version(bot, timeout=10)
    out('version', v['software_version']['name'])
    done.set_result(0)

c.add_event_handler('session_start', lambda e: loop.create_task(start(e)))
c.add_event_handler('presence_subscribed', on_presence_subscribed)
c.add_event_handler('presence_subscribe', on_presence_subscribe)
c.add_event_handler('presence', on_presence)
c.add_event_handler('failed_auth', lambda e: done.done() or done.set_result(2))
c.connect((host, int(port)))
try:
    rc = loop.run_until_complete(asyncio.wait_for(done, 40))
except Exception as e:
    out('error', repr(e))
    rc = 1
c.disconnect()
loop.run_until_complete(asyncio.sleep(0.3))
sys.exit(rc)
'''


def test_echo_bot_is_a_good_citizen(bins, server, spawn, tmp_path):
    name = 'peer-%s' % uuid.uuid4().hex[:8]
    pw = 'pw-%s' % uuid.uuid4().hex[:8]
    server.register(name, pw)
    bot_jid = jid(server, 'bob') + '/echo'
    botpw = write_password_file(tmp_path, 'bob')
    bot = spawn.popen([bins['echo_bot']] + conn_args(server) +
                      ['--jid', bot_jid, '--password-file', botpw])
    time.sleep(0.8)
    peer = subprocess.run([iu.PYTHON, '-c', PEER, server.host, str(server.c2s_port),
                           server.ca_file, jid(server, name) + '/slix', pw, bot_jid],
                          capture_output=True, text=True, timeout=60)
    lines = peer.stdout.splitlines()
    assert peer.returncode == 0, (peer.stdout, peer.stderr[-2000:])
    assert 'subscribed-by-bot' in lines, lines      # auto-accepted
    assert 'bot-asks-back' in lines, lines          # and mutual
    feats = {l.split(' ', 1)[1] for l in lines if l.startswith('feature ')}
    for f in ('urn:xmpp:ping', 'jabber:iq:version', 'http://jabber.org/protocol/caps',
              'http://jabber.org/protocol/disco#info'):
        assert f in feats, lines
    assert 'ping-ok' in lines, lines
    assert 'version epode echo-bot' in lines, lines
    caps = [l.split() for l in lines if l.startswith('caps ')]
    computed = [l.split()[1] for l in lines if l.startswith('computed-ver ')]
    assert caps and computed, lines
    _, algo, node, ver = caps[-1]
    assert algo == 'sha-1' and node == 'https://epode.example/echo-bot', caps
    assert ver == computed[0], (caps, computed)     # the advertised hash is honest
    bot.send_signal(15)
    assert bot.wait(5) == 0
