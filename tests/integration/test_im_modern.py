"""The modern IM layer through real Prosody and ejabberd: message features
(XEP-0308/0424/0444/0461/0333/0334) between two epode clients, blocking
(XEP-0191), client state indication (XEP-0352), the archive (XEP-0313 with
RSM paging and catch-up) through the probe and through examples/
epode-history, and a third-party client (slixmpp) whose correction,
reaction, retraction and reply epode parses.

This module's servers run with mam, blocklist and csi enabled (the
fixtures below override conftest's for this module only)."""

import os
import subprocess
import sys
import uuid

import pytest

import integ_util as iu
from integ_util import PYTHON, USERS, jid

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = ('mam', 'blocklist', 'csi')


def _server_fixture(kind):
    @pytest.fixture(scope='module')
    def fixture(pki):
        srv = iu.start_server(kind, pki, modules=MODULES)
        try:
            yield srv
        finally:
            srv.stop()
    return fixture


prosody = _server_fixture('prosody')
ejabberd = _server_fixture('ejabberd')


def probe_exe():
    return iu._binary('tests', 'integration', 'im_modern_probe')


def fresh_accounts(srv, *prefixes):
    out = []
    for p in prefixes:
        name = '%s-%s' % (p, uuid.uuid4().hex[:8])
        pw = 'pw-%s' % uuid.uuid4().hex[:12]
        srv.register(name, pw)
        USERS[name] = pw
        out.append(name)
    return out


def run_probe(srv, mode, u1, u2=None, count=None, timeout=45, extra=()):
    argv = [probe_exe(), '--server', srv.host, '--port', str(srv.c2s_port), '--ca-file', srv.ca_file,
            '--jid1', jid(srv, u1), '--password1', USERS[u1], '--mode', mode]
    if u2:
        argv += ['--jid2', jid(srv, u2), '--password2', USERS[u2]]
    if count:
        argv += ['--count', str(count)]
    argv += list(extra)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    return r, 'exit %s\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])


def msg_lines(out):
    return [l for l in out.splitlines() if l.startswith('msg ')]


def test_message_features_between_two_clients(server):
    a, c = fresh_accounts(server, 'fa', 'fc')
    r, info = run_probe(server, 'features', a, c)
    assert r.returncode == 0, info
    lines = msg_lines(r.stdout)
    assert len(lines) == 6, info
    cj = '%s/C' % jid(server, c)
    assert lines[0].startswith('msg %s body=Hello wrld markable=1 replace=-' % cj), info
    assert 'replace=orig-1 retract=- same=1' in lines[1] and 'body=Hello world' in lines[1], info
    assert 'reactions=orig-1:\U0001F44D,\u2764' in lines[2] and 'same=1' in lines[2], info
    assert 'hints=8' in lines[2], info              # <store/>
    assert 'reply=orig-1:%s' % cj in lines[3] and 'stripped=Indeed' in lines[3], info
    assert 'retract=orig-1 same=1' in lines[4] and 'hints=8' in lines[4], info
    assert 'marker=displayed:orig-1' in lines[5], info
    assert r.stdout.splitlines()[-1] == 'OK', info


def test_correction_and_retraction_from_another_sender_are_refused(server):
    a, c, m = fresh_accounts(server, 'ha', 'hc', 'hm')
    r, info = run_probe(server, 'hostile', a, c, extra=['--jid3', jid(server, m),
                                                        '--password3', USERS[m]])
    assert r.returncode == 0, info
    lines = msg_lines(r.stdout)
    cj, mj = '%s/C' % jid(server, c), '%s/M' % jid(server, m)
    assert len(lines) == 4, info
    assert lines[0].startswith('msg %s body=the original' % cj), info
    forged = [l for l in lines if l.startswith('msg %s ' % mj)]
    assert len(forged) == 2, info
    assert any('replace=orig-1' in l and 'same=0' in l for l in forged), info
    assert any('retract=orig-1' in l and 'same=0' in l for l in forged), info
    own = [l for l in lines[1:] if l.startswith('msg %s ' % cj)]
    assert len(own) == 1 and 'replace=orig-1' in own[0] and 'same=1' in own[0], info


def test_blocking_block_unblock_and_pushes(server):
    a, c = fresh_accounts(server, 'ba', 'bc')
    r, info = run_probe(server, 'blocking', a, c)
    assert r.returncode == 0, info
    out = r.stdout.splitlines()
    cb = jid(server, c)
    assert 'blocking event loaded' in out, info
    assert 'blocking result block status=0 cond=-' in out, info
    assert 'blocking list after block: %s' % cb in out, info
    assert 'blocking is_blocked 1' in out, info
    assert 'blocking list after unblock:' in out, info
    assert ('blocking list after block2: spam.example.invalid spammer@example.invalid' in out), info
    assert 'blocking list after unblock-all:' in out, info
    assert 'blocking list after fetch:' in out, info
    # the server's pushes reach the requesting session too (it fetched the list)
    assert 'blocking event blocked %s' % cb in out, info
    assert out[-1] == 'OK', info


def test_csi_inactive_then_active(server):
    (a,) = fresh_accounts(server, 'ia')
    r, info = run_probe(server, 'csi', a)
    assert r.returncode == 0, info
    assert 'csi supported=1' in r.stdout.splitlines(), info
    assert 'csi ping inactive status=0' in r.stdout, info
    assert 'csi ping active status=0' in r.stdout, info


def test_mam_paging_catch_up_and_future(server):
    a, c = fresh_accounts(server, 'ma', 'mc')
    r, info = run_probe(server, 'mam', a, c, count=5)
    assert r.returncode == 0, info
    out = r.stdout.splitlines()
    cfull = '%s/C' % jid(server, c)
    fwd = [l.split(' ', 4) for l in out if l.startswith('mam ') and not l.startswith('mam page')
           and l.split(' ')[1] not in ('last', 'catchup', 'future')]
    assert [f[4] for f in fwd] == ['archived %d' % i for i in range(1, 6)], info
    assert all(f[3] == cfull for f in fwd), info
    assert all(f[2].endswith('Z') for f in fwd), info          # the archive's timestamp
    assert len(set(f[1] for f in fwd)) == 5, info               # distinct archive ids
    pages = [l for l in out if l.startswith('mam page')]
    assert len(pages) >= 3 and 'complete=1' in pages[-1] or 'results=0' in pages[-1], info
    last = [l.split(' ', 5)[5] for l in out if l.startswith('mam last ') and 'page' not in l]
    assert last == ['archived 4', 'archived 5'], info
    catch = [l.split(' ', 5)[5] for l in out if l.startswith('mam catchup ') and 'page' not in l]
    assert catch == ['archived 3', 'archived 4', 'archived 5'], info
    assert any(l.startswith('mam future page status=0') and 'results=0' in l for l in out), info
    assert out[-1] == 'OK', info


def test_mam_catch_up_after_a_session_that_could_not_resume(server):
    a, c = fresh_accounts(server, 'ka', 'kc')
    r, info = run_probe(server, 'catchup', a, c)
    assert r.returncode == 0, info
    out = r.stdout.splitlines()
    assert any(l.startswith('live stanza-id ') and l != 'live stanza-id -' for l in out), info
    assert any(l.startswith('ready again ') for l in out), info
    caught = [l[len('catchup '):] for l in out if l.startswith('catchup ') and
              not l.startswith('catchup done')]
    assert caught == ['while away 1', 'while away 2', 'while away 3'], info
    assert any(l.startswith('catchup done status=0 cond=- results=3') for l in out), info


def test_mam_room_archive(server):
    (a,) = fresh_accounts(server, 'ra')
    room = 'arch-%s@%s' % (uuid.uuid4().hex[:8], server.muc_domain)
    argv = [probe_exe(), '--server', server.host, '--port', str(server.c2s_port), '--ca-file',
            server.ca_file, '--jid1', jid(server, a), '--password1', USERS[a], '--mode',
            'mam-room', '--room', room]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=45)
    info = 'exit %s\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])
    assert r.returncode == 0, info
    rows = [l.split(' ', 4) for l in r.stdout.splitlines()
            if l.startswith('room ') and l.split(' ')[1] not in ('joined', 'page', 'same=1')]
    bodies = [row[4] for row in rows]
    assert bodies[-3:] == ['room archived 1', 'room archived 2', 'room archived 3'], info
    assert all(row[3] == '%s/alice' % room for row in rows[-3:]), info   # the occupant JID
    assert all(row[2].endswith('Z') for row in rows[-3:]), info
    assert 'room same=1' in r.stdout.splitlines(), info


def test_epode_history_reads_a_room_archive(server, tmp_path):
    a, h = fresh_accounts(server, 'ra', 'rh')
    room = 'hist-%s@%s' % (uuid.uuid4().hex[:8], server.muc_domain)
    argv = [probe_exe(), '--server', server.host, '--port', str(server.c2s_port), '--ca-file',
            server.ca_file, '--jid1', jid(server, a), '--password1', USERS[a], '--mode',
            'mam-room', '--room', room, '--hold', '15']
    holder = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        for line in holder.stdout:
            seen.append(line.rstrip('\n'))
            if line.startswith('room holding') or line.startswith('FAILED'):
                break
        assert seen and seen[-1] == 'room holding', '\n'.join(seen)
        pw = tmp_path / 'pw'
        pw.write_text(USERS[h] + '\n')
        exe = iu._binary('examples', 'epode-history')
        r = subprocess.run([exe, '--server', server.host, '--port', str(server.c2s_port),
                            '--ca-file', server.ca_file, '--jid', jid(server, h),
                            '--password-file', str(pw), '--room', room],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert [l.split(' ', 2)[2] for l in lines] == ['room archived %d' % i for i in (1, 2, 3)], \
            r.stdout
        assert all(l.split(' ')[1] == '%s/alice' % room for l in lines), r.stdout
    finally:
        holder.kill()
        holder.communicate()


def test_epode_history_prints_the_archive(server, tmp_path):
    a, c = fresh_accounts(server, 'ha', 'hc')
    r, info = run_probe(server, 'mam', a, c, count=3)
    assert r.returncode == 0, info
    pw = tmp_path / 'pw'
    pw.write_text(USERS[a] + '\n')
    exe = iu._binary('examples', 'epode-history')
    base = [exe, '--server', server.host, '--port', str(server.c2s_port), '--ca-file',
            server.ca_file, '--jid', jid(server, a), '--password-file', str(pw)]
    h = subprocess.run(base + ['--with', jid(server, c)], capture_output=True, text=True, timeout=30)
    assert h.returncode == 0, h.stderr
    lines = h.stdout.splitlines()
    assert [l.split(' ', 2)[2] for l in lines] == ['archived 1', 'archived 2', 'archived 3'], h.stdout
    assert all(l.split(' ')[1] == '%s/C' % jid(server, c) for l in lines), h.stdout
    # the most recent two
    h = subprocess.run(base + ['--max', '2'], capture_output=True, text=True, timeout=30)
    assert h.returncode == 0, h.stderr
    assert [l.split(' ', 2)[2] for l in h.stdout.splitlines()] == ['archived 2', 'archived 3']
    # since a time: all three (they are from the last minutes), oldest first
    h = subprocess.run(base + ['--since', '10m', '--max', '2'], capture_output=True, text=True,
                       timeout=30)
    assert h.returncode == 0, h.stderr
    assert [l.split(' ', 2)[2] for l in h.stdout.splitlines()] == ['archived 1', 'archived 2']
    # bad usage
    h = subprocess.run(base + ['--since', 'soon'], capture_output=True, text=True, timeout=30)
    assert h.returncode == 64


SLIX_SENDER = r'''
import asyncio, sys, slixmpp
host, port, ca, jid_, pw, to = sys.argv[1:7]
class P(slixmpp.ClientXMPP):
    async def get_dns_records(self, domain, port_=None):
        return [(domain, host, int(port))]
loop = asyncio.new_event_loop(); asyncio.set_event_loop(loop)
c = P(jid_, pw)
for p in ('xep_0308', 'xep_0444', 'xep_0424', 'xep_0461', 'xep_0333', 'xep_0334'):
    c.register_plugin(p)
c.ca_certs = ca
c.default_domain = slixmpp.JID(jid_).domain
done = loop.create_future()
def start(_):
    c.send_presence()
    m = c.make_message(mto=to, mbody='Hello wrld', mtype='chat'); m['id'] = 'slix-1'; m.send()
    m = c.make_message(mto=to, mbody='Hello world', mtype='chat'); m['replace']['id'] = 'slix-1'; m.send()
    c['xep_0444'].send_reactions(slixmpp.JID(to), 'slix-1', ['\U0001F44D'])
    c['xep_0461'].send_reply('%s' % c.boundjid.full, 'slix-1', mto=to, mbody='Indeed', mtype='chat')
    c['xep_0424'].send_retraction(slixmpp.JID(to), 'slix-1')
    c['xep_0333'].send_marker(slixmpp.JID(to), 'slix-1', 'displayed')
    loop.call_later(3, lambda: done.done() or done.set_result(0))
c.add_event_handler('session_start', start)
c.add_event_handler('failed_auth', lambda _: done.done() or done.set_result(2))
c.connect()
loop.run_until_complete(asyncio.wait_for(done, 30))
c.disconnect(); loop.run_until_complete(asyncio.sleep(0.5))
print('sent', flush=True)
'''


def test_slixmpp_features_parsed_by_epode(server, tmp_path):
    a, s = fresh_accounts(server, 'sa', 'ss')
    argv = [probe_exe(), '--server', server.host, '--port', str(server.c2s_port), '--ca-file',
            server.ca_file, '--jid1', jid(server, a), '--password1', USERS[a], '--mode', 'recv',
            '--count', '6']
    recv = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = recv.stdout.readline()
        assert line.startswith('ready A'), line
        script = tmp_path / 'slix_sender.py'
        script.write_text(SLIX_SENDER)
        snd = subprocess.run([PYTHON, str(script), server.host, str(server.c2s_port),
                              server.ca_file, jid(server, s), USERS[s], '%s/A' % jid(server, a)],
                             capture_output=True, text=True, timeout=60)
        assert snd.returncode == 0, snd.stdout + snd.stderr[-3000:]
        out, err = recv.communicate(timeout=40)
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()
    info = 'exit %s\n%s\n%s' % (recv.returncode, out, err[-2000:])
    assert recv.returncode == 0, info
    lines = msg_lines(out)
    assert len(lines) == 6, info
    assert 'body=Hello wrld' in lines[0], info
    assert 'replace=slix-1' in lines[1] and 'same=1' in lines[1], info
    assert 'reactions=slix-1:\U0001F44D' in lines[2], info
    assert 'reply=slix-1:' in lines[3], info
    assert 'retract=slix-1 same=1' in lines[4], info      # the :0 form inside <apply-to/>
    assert 'marker=displayed:slix-1' in lines[5], info
