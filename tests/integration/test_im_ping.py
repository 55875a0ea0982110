"""XMPP Ping (XEP-0199) and Software Version (XEP-0092) through real
Prosody and ejabberd: the server answers epode's pings, one epode client
answers another's ping and version query, liveness pings keep a healthy
connection up."""

import re

from integ_util import jid
from test_im_carbons import fresh_accounts, run_probe


def test_ping_server_and_peer(server):
    a, c = fresh_accounts(server, 'pa', 'pc')
    r, info = run_probe(server, 'ping', a, c)
    assert r.returncode == 0, info
    lines = r.stdout.splitlines()
    assert any(re.fullmatch(r'ping server status=OK cond=- rtt=\d+', l) for l in lines), info
    assert any(re.fullmatch(r'ping peer status=OK cond=- rtt=\d+', l) for l in lines), info
    assert 'keepalive timeouts=0 ready=1' in lines, info
    assert lines[-1] == 'OK', info


def test_version_between_two_epode_clients(server):
    a, c = fresh_accounts(server, 'va', 'vc')
    r, info = run_probe(server, 'version', a, c)
    assert r.returncode == 0, info
    lines = r.stdout.splitlines()
    assert 'version peer status=OK cond=- epode-probe 1.2.3 TestOS' in lines, info
    # both servers load their version module: a name and a version, whatever they are
    srv = [l for l in lines if l.startswith('version server ')]
    assert srv and re.match(r'version server status=OK cond=- \S+ \S+', srv[0]), info
    assert lines[-1] == 'OK', info
