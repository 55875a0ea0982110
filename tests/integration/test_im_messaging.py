"""The messaging helper through real servers (Prosody and ejabberd):
delivery receipts (XEP-0184) and chat states (XEP-0085) both ways between
epode (im_message_probe) and a third-party client, slixmpp with its
xep_0184 and xep_0085 plugins; message types and origin-ids between two
epode clients; a message to an account that does not exist comes back as
an error with its condition (languages, subjects and threads are covered
by the unit tests)."""

import os
import subprocess
import textwrap

import pytest

import integ_util as iu
from integ_util import PYTHON, USERS, conn_args, jid
from test_im_presence import Probe, fresh

# A slixmpp peer driven on stdin: "send TO BODY" (with a receipt request;
# prints "sent ID"), "state TO STATE", "quit". Prints "ready JID",
# "message FROM ID BODY", "receipt FROM ID", "chatstate FROM STATE".
SLIX = textwrap.dedent(r'''
    import asyncio, sys
    import slixmpp

    host, port, ca, j, pw = sys.argv[1:6]

    class Peer(slixmpp.ClientXMPP):
        async def get_dns_records(self, domain, port_=None):
            return [(domain, host, int(port))]

    def out(*a):
        print(*a, flush=True)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    c = Peer(j, pw)
    c.ca_certs = ca
    c.register_plugin('xep_0030')
    c.register_plugin('xep_0184')   # answers receipt requests (auto_ack)
    c.register_plugin('xep_0085')
    done = loop.create_future()

    def on_start(_):
        c.send_presence()
        out('ready', c.boundjid.full)
        loop.add_reader(sys.stdin.fileno(), on_stdin)

    def on_stdin():
        line = sys.stdin.readline()
        if not line or line.strip() == 'quit':
            loop.remove_reader(sys.stdin.fileno())
            if not done.done():
                done.set_result(0)
            return
        cmd, to, rest = (line.rstrip('\n').split(' ', 2) + ['', ''])[:3]
        if cmd == 'send':
            m = c.make_message(mto=to, mbody=rest, mtype='chat')
            m['request_receipt'] = True
            m['id'] = c.new_id()
            m.send()
            out('sent', m['id'])
        elif cmd == 'state':
            m = c.make_message(mto=to, mtype='chat')
            m['chat_state'] = rest
            m.send()
            out('stated', rest)

    def on_message(msg):
        if msg['body']:
            out('message', msg['from'].full, msg['id'], msg['body'])

    c.add_event_handler('session_start', on_start)
    c.add_event_handler('message', on_message)
    c.add_event_handler('receipt_received',
                        lambda m: out('receipt', m['from'].full, m['receipt']))
    c.add_event_handler('chatstate',
                        lambda m: out('chatstate', m['from'].full, m['chat_state']))
    c.add_event_handler('failed_auth', lambda *_: done.done() or done.set_result(2))
    c.connect(address=(host, int(port)))
    try:
        rc = loop.run_until_complete(asyncio.wait_for(done, 60))
    except asyncio.TimeoutError:
        rc = 1
    c.disconnect()
    try:
        loop.run_until_complete(asyncio.wait_for(c.disconnected, 5))
    except Exception:
        pass
    out('status', rc)
    sys.exit(rc)
''')


class Slix(Probe):
    def __init__(self, spawn, script, srv, user):
        argv = [PYTHON, script, srv.host, str(srv.c2s_port), srv.ca_file, jid(srv, user),
                USERS[user]]
        self.proc = spawn.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=False)
        self.lines = []
        self.buf = b''
        self.full = self.wait('ready ', 30).split(' ', 1)[1]

    def quit(self):
        self.cmd('quit')
        self.wait('status ', 15)
        assert self.proc.wait(10) == 0, '\n'.join(self.lines)


@pytest.fixture(scope='session')
def mbin():
    return iu._binary('tests', 'integration', 'im_message_probe')


@pytest.fixture
def slix_script(tmp_path):
    p = tmp_path / 'slix_im_peer.py'
    p.write_text(SLIX)
    return str(p)


def test_receipts_between_epode_and_slixmpp(server, spawn, mbin, slix_script):
    e, s = fresh(server, 're', 'rs')
    E = Probe(spawn, mbin, server, e)
    S = Slix(spawn, slix_script, server, s)
    assert E.ask('receipts request,answer', 'done receipts') == 'done receipts OK'
    # epode asks, slixmpp answers, epode reports the acked id
    m = E.mark()
    E.cmd('send chat %s hello from epode' % S.full)
    sent_id = E.wait('sent ', start=m).split(' ')[1]
    got = S.wait('message %s ' % E.full)
    assert got == 'message %s %s hello from epode' % (E.full, sent_id)
    assert E.wait('receipt ', start=m) == 'receipt %s %s' % (S.full, sent_id)
    # slixmpp asks, epode answers
    m = E.mark()
    S.cmd('send %s hello from slixmpp' % E.full)
    sid = S.wait('sent ').split(' ')[1]
    line = E.wait('message %s' % S.full, start=m)
    assert ' id=%s ' % sid in line and ' receipt=1 ' in line and line.endswith('body=hello from slixmpp'), line
    assert S.wait('receipt ') == 'receipt %s %s' % (E.full, sid)
    # a receipt is never answered with a receipt: slixmpp got exactly one
    E.quit()
    S.quit()
    assert len([l for l in S.lines if l.startswith('receipt ')]) == 1, S.lines
    assert len([l for l in E.lines if l.startswith('receipt ')]) == 1, E.lines


def test_chatstates_between_epode_and_slixmpp(server, spawn, mbin, slix_script):
    e, s = fresh(server, 'ce', 'cs')
    E = Probe(spawn, mbin, server, e)
    S = Slix(spawn, slix_script, server, s)
    for st in ('composing', 'paused', 'active', 'inactive', 'gone'):
        E.cmd('state %s %s' % (S.full, st))
        assert S.wait('chatstate %s %s' % (E.full, st))
    for st in ('composing', 'paused', 'active'):
        m = E.mark()
        S.cmd('state %s %s' % (E.full, st))
        line = E.wait('message %s' % S.full, start=m)
        assert ' state=%s ' % st in line and line.endswith('body=-'), line
    E.quit()
    S.quit()


def test_types_and_origin_ids_between_epode_clients(server, spawn, mbin):
    a, b = fresh(server, 'la', 'lb')
    A = Probe(spawn, mbin, server, a, extra=['--origin-id', '1'])
    B = Probe(spawn, mbin, server, b)
    m = B.mark()
    A.cmd('send headline %s news item' % B.full)
    sent = A.wait('sent ').split(' ')[1]
    line = B.wait('message %s' % A.full, start=m)
    assert line == 'message %s headline id=%s state=- receipt=0 origin=%s body=news item' % (
        A.full, sent, sent), line
    m = B.mark()
    A.cmd('send normal %s plain' % B.full)
    assert B.wait('message %s' % A.full, start=m).startswith('message %s normal ' % A.full)
    A.quit()
    B.quit()


def test_message_to_nobody_comes_back_as_an_error(server, spawn, mbin):
    (a,) = fresh(server, 'ea')
    A = Probe(spawn, mbin, server, a)
    m = A.mark()
    A.cmd('send chat nobody-here@%s hello?' % server.domain)
    sent = A.wait('sent ', start=m).split(' ')[1]
    line = A.wait('error ', start=m)
    assert line == 'error nobody-here@%s service-unavailable id=%s' % (server.domain, sent), line
    A.quit()
