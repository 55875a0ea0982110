"""The PEP family through real Prosody and ejabberd: between two epode
accounts, A publishes its nick (XEP-0172), an avatar (XEP-0084) and a
bookmark (XEP-0402); the other account learns nick and avatar through
+notify in its caps and fetches the avatar (bytes checked against their
SHA-1); A's presence then carries the XEP-0153 hash; A's second resource
hears the bookmark being added and removed. And a third-party client
(slixmpp) publishes a nick and an avatar that epode reads.

This module's servers run with PEP (Prosody: pep and bookmarks; ejabberd:
mod_pubsub with the pep plugin and mod_caps)."""

import os
import subprocess
import uuid

import pytest

import integ_util as iu
from integ_util import PYTHON, USERS, jid

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = {'prosody': ('pep', 'bookmarks'), 'ejabberd': ('pep', 'caps')}
PNG_SIZE = 300


def _server_fixture(kind):
    @pytest.fixture(scope='module')
    def fixture(pki):
        srv = iu.start_server(kind, pki, modules=MODULES[kind])
        try:
            yield srv
        finally:
            srv.stop()
    return fixture


prosody = _server_fixture('prosody')
ejabberd = _server_fixture('ejabberd')


def fresh_accounts(srv, *prefixes):
    out = []
    for p in prefixes:
        name = '%s-%s' % (p, uuid.uuid4().hex[:8])
        pw = 'pw-%s' % uuid.uuid4().hex[:12]
        srv.register(name, pw)
        USERS[name] = pw
        out.append(name)
    return out


def run_probe(srv, mode, u1, u2=None, peer=None, timeout=60, extra=()):
    argv = [iu._binary('tests', 'integration', 'im_pep_probe'), '--server', srv.host,
            '--port', str(srv.c2s_port), '--ca-file', srv.ca_file,
            '--jid1', jid(srv, u1), '--password1', USERS[u1], '--mode', mode]
    if u2:
        argv += ['--jid2', jid(srv, u2), '--password2', USERS[u2]]
    if peer:
        argv += ['--peer', peer]
    argv += list(extra)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if os.environ.get('EPODE_PROBE_LOG'):  # the probe then logs its XML traffic
        with open(os.path.join(os.environ.get('TMPDIR', '/tmp'),
                               'im_pep_probe-%s-%s.log' % (srv.kind, mode)), 'w') as f:
            f.write(r.stderr)
    return r, 'exit %s\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])


def sha1_of_probe_png():
    import hashlib
    sig = b'\x89PNG\r\n\x1a\n'
    data = sig + bytes(((i * 7 + 3) & 0xff) for i in range(len(sig), PNG_SIZE))
    return hashlib.sha1(data).hexdigest()


def test_nick_avatar_and_bookmarks_between_two_accounts(server):
    a, c = fresh_accounts(server, 'pa', 'pc')
    r, info = run_probe(server, 'pep', a, c)
    assert r.returncode == 0, info
    out = r.stdout.splitlines()
    abare = jid(server, a)
    aid = sha1_of_probe_png()
    # C learnt A's nick and avatar through +notify
    assert 'nick C %s Alice Pep pep' % abare in out, info
    assert 'avatar C %s %s pep' % (abare, aid) in out, info
    fetched = [l for l in out if l.startswith('avatar-fetch ')]
    assert fetched and fetched[0] == ('avatar-fetch status=0 cond=- len=%d match=1 id=%s '
                                      'type=image/png' % (PNG_SIZE, aid)), info
    # A's next presence carried the XEP-0153 hash
    assert 'avatar C %s/A %s vcard' % (abare, aid) in out, info
    # A's other resource saw the bookmark come and go; a fresh fetch has none
    assert ('bookmark B added pep-room@conference.localhost autojoin=1 nick=alice '
            'name=The PEP Room') in out, info
    removed = ('bookmark B removed pep-room@conference.localhost autojoin=1 nick=alice '
               'name=The PEP Room')
    if server.kind == 'prosody':
        assert removed in out, info
    else:
        # ejabberd 23.01 sends no retract notification on this node, even
        # with notify_retract configured (the helper does so after its
        # publish needed fewer options); B's fresh fetch shows the removal
        assert removed in out or 'bookmark B no-removal-notification' in out, info
    assert 'bookmarks B loaded count=0' in out, info
    assert 'bookmark-request status=0 cond=- perr=none count=1' in out, info
    # B's MUC helper joined the autojoin room, with the bookmark's nick
    assert 'muc B joined pep-room@conference.localhost as alice' in out, info
    assert out[-1] == 'OK', info


def test_service_node_subscribe_notify_fetch_delete(ejabberd):
    """A pubsub service proper (ejabberd's mod_pubsub at pubsub.DOMAIN; the
    harness's Prosody has none): subscribe, a notification from the
    service, fetch, unsubscribe, delete."""
    a, c = fresh_accounts(ejabberd, 'sa', 'sc')
    service = 'pubsub.' + ejabberd.domain
    argv_extra = ['--service', service]
    r, info = run_probe(ejabberd, 'service', a, c, extra=argv_extra)
    assert r.returncode == 0, info
    out = r.stdout.splitlines()
    assert 'subscribe subscribed' in out, info
    assert 'event C published %s epode-news second two' % service in out, info
    assert 'items 2' in out, info
    assert 'deleted' in out, info
    assert out[-1] == 'OK', info


def test_slixmpp_nick_and_avatar_read_by_epode(server):
    a, s = fresh_accounts(server, 'pe', 'ps')
    peer = subprocess.Popen(
        [PYTHON, os.path.join(HERE, 'slix_pep_peer.py'), '--host', server.host,
         '--port', str(server.c2s_port), '--ca-file', server.ca_file,
         '--jid', jid(server, s), '--password', USERS[s], '--to', jid(server, a),
         '--nick', 'Slix Nick', '--avatar-size', str(PNG_SIZE), '--timeout', '45'],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        r, info = run_probe(server, 'slix', a, peer=jid(server, s))
    finally:
        try:
            pout, perr = peer.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            peer.kill()
            pout, perr = peer.communicate()
    info += '\n--- slixmpp peer (exit %s)\n%s\n%s' % (peer.returncode, pout, perr[-3000:])
    assert r.returncode == 0, info
    out = r.stdout.splitlines()
    sbare = jid(server, s)
    assert 'nick A %s Slix Nick pep' % sbare in out, info
    aid = sha1_of_probe_png()
    assert 'avatar A %s %s pep' % (sbare, aid) in out, info
    assert any(l.startswith('avatar-fetch status=0 cond=- len=%d match=1 id=%s' % (PNG_SIZE, aid))
               for l in out), info
    assert 'nick-fetch ok=1 Slix Nick' in out, info
    assert peer.returncode == 0, info
