"""Multi-user chat (XEP-0045) through real Prosody and ejabberd: an epode
occupant (im_muc_probe) and a slixmpp occupant in one room see each
other's presence and messages, and epode lists slixmpp with its role,
affiliation and real JID; the muc-bot example answers !ping and !time
from slixmpp."""

import os
import re
import signal
import subprocess
import uuid

import pytest

from integ_util import PYTHON, USERS, conn_args, jid, read_line_starting, write_password_file

HERE = os.path.dirname(os.path.abspath(__file__))

SLIX_OCCUPANT = r'''
import argparse, asyncio, re, sys
import slixmpp

ap = argparse.ArgumentParser()
for o in ('--host', '--ca-file', '--jid', '--password', '--room', '--nick', '--peer'):
    ap.add_argument(o, required=True)
ap.add_argument('--port', type=int, required=True)
ap.add_argument('--say', action='append', default=[])
ap.add_argument('--expect', action='append', default=[])
ap.add_argument('--wait-offline', action='store_true')
ap.add_argument('--timeout', type=float, default=25)
a = ap.parse_args()

class Peer(slixmpp.ClientXMPP):
    async def get_dns_records(self, domain, port=None):
        return [(domain, a.host, a.port)]

loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
c = Peer(a.jid, a.password)
c.ca_certs = a.ca_file
c.default_domain = slixmpp.JID(a.jid).domain
c.register_plugin('xep_0045')
done = loop.create_future()
expect = list(a.expect)
state = {'said': False, 'offline': False}

def out(*x):
    print(*x, flush=True)

def check_done():
    if not expect and (state['offline'] or not a.wait_offline) and not done.done():
        done.set_result('done')

def on_start(_):
    out('ready', c.boundjid.full)
    c.send_presence()
    c.plugin['xep_0045'].join_muc(a.room, a.nick)

def on_online(pres):
    nick = pres['muc']['nick']
    out('online', nick, pres['muc']['role'], pres['muc']['affiliation'])
    if nick == a.peer and not state['said']:
        state['said'] = True
        for s in a.say:
            c.send_message(mto=a.room, mbody=s, mtype='groupchat')
            out('sent', s)

def on_offline(pres):
    nick = pres['muc']['nick']
    out('offline', nick)
    if nick == a.peer:
        state['offline'] = True
        check_done()

def on_groupchat(msg):
    nick = msg['mucnick']
    out('message', nick, msg['body'].replace('\n', '\\n'))
    if nick == a.peer and expect and re.fullmatch(expect[0], msg['body']):
        expect.pop(0)
        check_done()

c.add_event_handler('session_start', on_start)
c.add_event_handler('muc::%s::got_online' % a.room, on_online)
c.add_event_handler('muc::%s::got_offline' % a.room, on_offline)
c.add_event_handler('groupchat_message', on_groupchat)
c.add_event_handler('failed_auth', lambda *_: done.done() or done.set_result('failed_auth'))
c.connect(address=(a.host, a.port))
try:
    status = loop.run_until_complete(asyncio.wait_for(done, a.timeout))
except asyncio.TimeoutError:
    status = 'timeout'
try:
    c.plugin['xep_0045'].leave_muc(a.room, a.nick)
except Exception:
    pass
c.disconnect()
try:
    loop.run_until_complete(asyncio.wait_for(c.disconnected, 5))
except Exception:
    pass
out('status', status)
sys.exit(0 if status == 'done' else 1)
'''


def fresh_room(srv):
    return 'room-%s@%s' % (uuid.uuid4().hex[:10], srv.muc_domain)


def slix_occupant(spawn, tmp_path, srv, user, room, nick, peer, say=(), expect=(), wait_offline=False):
    script = tmp_path / 'slix_occupant.py'
    script.write_text(SLIX_OCCUPANT)
    argv = [PYTHON, str(script), '--host', srv.host, '--port', str(srv.c2s_port),
            '--ca-file', srv.ca_file, '--jid', jid(srv, user), '--password', USERS[user],
            '--room', room, '--nick', nick, '--peer', peer]
    for s in say:
        argv += ['--say', s]
    for e in expect:
        argv += ['--expect', e]
    if wait_offline:
        argv.append('--wait-offline')
    return spawn.popen(argv, stdout=subprocess.PIPE)


def muc_probe(spawn, srv, user, room, nick, *args):
    exe = os.path.join(os.environ.get('EPODE_BUILD', 'build'), 'tests', 'integration', 'im_muc_probe')
    if not os.path.isabs(exe):
        exe = os.path.join(os.path.dirname(os.path.dirname(HERE)), exe)
    argv = [exe, '--server', srv.host, '--port', str(srv.c2s_port), '--ca-file', srv.ca_file,
            '--jid', jid(srv, user), '--password', USERS[user], '--room', room, '--nick', nick]
    return spawn.popen(argv + list(args), stdout=subprocess.PIPE)


def test_muc_epode_and_slixmpp_occupants(server, spawn, tmp_path):
    room = fresh_room(server)
    ep = muc_probe(spawn, server, 'alice', room, 'ep', '--wait-occupant', 'slix',
                   '--say', 'hello from epode', '--expect-from', 'slix',
                   '--expect-body', 'hello from slix', '--timeout', '25')
    lines = read_line_starting(ep, 'joined ', timeout=20)
    assert any(l == 'joined %s ep created=1' % room for l in lines), lines
    sx = slix_occupant(spawn, tmp_path, server, 'bob', room, 'slix', 'ep',
                       say=['hello from slix'], expect=['hello from epode'], wait_offline=True)
    s_out, s_err = sx.communicate(timeout=40)
    e_out, e_err = ep.communicate(timeout=40)
    e_out = ep.consumed.decode() + e_out
    info = 'epode:\n%s\n%s\nslixmpp:\n%s\n%s' % (e_out, e_err[-2000:], s_out, s_err[-3000:])
    assert ep.returncode == 0, info
    assert sx.returncode == 0, info
    e_lines = e_out.splitlines()
    # epode saw slixmpp: presence, message, and the list with role, affiliation, real JID
    assert 'message slix hello from slix' in e_lines, info
    listed = [l for l in e_lines if l.startswith('list slix ')]
    assert listed, info
    assert re.match(r'list slix role=participant affiliation=none jid=%s/\S+$'
                    % re.escape(jid(server, 'bob')), listed[0]), info
    assert any(l.startswith('list ep role=moderator affiliation=owner jid=%s/' % jid(server, 'alice'))
               for l in e_lines), info
    assert e_lines[-1] == 'left', info
    # slixmpp saw epode: presence, message, and its leaving
    s_lines = s_out.splitlines()
    assert 'online ep moderator owner' in s_lines, info
    assert 'message ep hello from epode' in s_lines, info
    assert 'offline ep' in s_lines, info
    assert s_lines[-1] == 'status done', info


def test_muc_nick_conflict_reported(server, spawn, tmp_path):
    """A second epode occupant asking for a taken nick gets conflict."""
    room = fresh_room(server)
    first = muc_probe(spawn, server, 'alice', room, 'same', '--wait-occupant', 'nobody', '--timeout', '15')
    read_line_starting(first, 'joined ', timeout=20)
    second = muc_probe(spawn, server, 'bob', room, 'same', '--timeout', '15')
    out, err = second.communicate(timeout=30)
    assert second.returncode == 1, (out, err)
    assert 'error conflict fatal=1' in out.splitlines(), (out, err)
    first.kill()


def test_muc_bot_answers_slixmpp(server, spawn, tmp_path):
    exe = os.path.join(os.environ.get('EPODE_BUILD', 'build'), 'examples', 'muc-bot')
    if not os.path.isabs(exe):
        exe = os.path.join(os.path.dirname(os.path.dirname(HERE)), exe)
    room = fresh_room(server)
    pw = write_password_file(tmp_path, 'alice')
    bot = spawn.popen([exe] + conn_args(server) + ['--jid', jid(server, 'alice'),
                                                   '--password-file', pw, room, 'bot'],
                      stdout=subprocess.PIPE)
    lines = read_line_starting(bot, 'joined ', timeout=20)
    assert lines[-1] == 'joined %s/bot' % room, lines
    sx = slix_occupant(spawn, tmp_path, server, 'bob', room, 'slix', 'bot',
                       say=['!ping', 'just chatting', '!time'],
                       expect=[r'pong', r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC'])
    s_out, s_err = sx.communicate(timeout=40)
    assert sx.returncode == 0, (s_out, s_err[-3000:])
    bot_msgs = [l for l in s_out.splitlines() if l.startswith('message bot ')]
    assert len(bot_msgs) == 2, s_out     # nothing for "just chatting", nothing to itself
    assert bot.poll() is None, bot.stderr.read()
    bot.send_signal(signal.SIGTERM)
    rc = bot.wait(10)
    assert rc == 0, bot.stderr.read()
    assert bot.stderr.read() == ''
