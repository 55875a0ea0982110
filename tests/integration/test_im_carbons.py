"""Message carbons (XEP-0280) through real Prosody and ejabberd: two epode
resources (A, B) of one account and a third party (C). With carbons
enabled on B, C's message to A arrives on B as a received carbon, and
A's message to C arrives on B as a sent carbon."""

import os
import subprocess
import uuid

from integ_util import USERS, jid

HERE = os.path.dirname(os.path.abspath(__file__))


def probe_exe():
    b = os.environ.get('EPODE_BUILD', 'build')
    if not os.path.isabs(b):
        b = os.path.join(os.path.dirname(os.path.dirname(HERE)), b)
    return os.path.join(b, 'tests', 'integration', 'im_carbons_probe')


def fresh_accounts(srv, *prefixes):
    out = []
    for p in prefixes:
        name = '%s-%s' % (p, uuid.uuid4().hex[:8])
        pw = 'pw-%s' % uuid.uuid4().hex[:12]
        srv.register(name, pw)
        USERS[name] = pw
        out.append(name)
    return out


def run_probe(srv, mode, u1, u2, timeout=40):
    argv = [probe_exe(), '--server', srv.host, '--port', str(srv.c2s_port), '--ca-file', srv.ca_file,
            '--jid1', jid(srv, u1), '--password1', USERS[u1],
            '--jid2', jid(srv, u2), '--password2', USERS[u2], '--mode', mode]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    return r, 'exit %s\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])


def test_carbons_between_two_resources(server):
    a, c = fresh_accounts(server, 'ca', 'cc')
    r, info = run_probe(server, 'carbons', a, c)
    assert r.returncode == 0, info
    lines = r.stdout.splitlines()
    assert 'carbons-enabled 1 status=0 cond=-' in lines, info
    assert 'direct %s/C to A from C' % jid(server, c) in lines, info
    assert 'carbon received %s/C %s/A to A from C' % (jid(server, c), jid(server, a)) in lines, info
    assert 'carbon sent %s/A %s to C from A' % (jid(server, a), jid(server, c)) in lines, info
    assert lines[-1] == 'OK', info
