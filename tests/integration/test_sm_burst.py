"""The bursty stream-management fault test (issue 11): one epode client
queues 2,000 chat messages at once (no window, no rate: as fast as epode
takes them) to another, both with stream management, automatic
reconnection and the resend policy, through a fault proxy that cuts the
links again and again, scheduled by bytes: RST or FIN after every few
kilobytes in one direction, or a 2 s stall that trips the liveness
check. Against real Prosody and ejabberd.

Pass: the sender sees every message acknowledged or handed back
(lost=0), the receiver gets every acknowledged message exactly once
(duplicates=0), and the links were cut at least 20 times.

Budgets: upwards 4-12 kB. Downwards the servers write 16 kB TLS records,
and a record cut in half is lost whole, so a link that dies within every
record can deliver nothing at all: 24-48 kB. (epode itself starts each
session with small records for the same reason, see lib/transport/tls.c.)

Prosody keeps at most 500 unacknowledged stanzas per session
(smacks_max_queue_size) and silently drops the oldest beyond that, so a
receiver cut while 2,000 messages arrive would lose some on the server:
this module's Prosody keeps 5,000 (ejabberd's max_ack_queue is 5,000).
Downwards the budgets are larger, so those runs cut 10-15 times.

SM_BURST_MODES=up-rst,down-rst,up-fin,down-fin,up-stall chooses the
modes (default: all; up-rst and up-stall in the ASan build),
SM_BURST_SEED the proxy's seed."""
import os
import re
import subprocess
import uuid

import pytest

import integ_util as iu
from faultproxy import FaultProxy

COUNT = int(os.environ.get('SM_BURST_COUNT', '2000'))
SEED = int(os.environ.get('SM_BURST_SEED', '2026'))
BUDGET = {'up': (4000, 12000), 'down': (24000, 48000)}
ALL_MODES = ('up-rst', 'down-rst', 'up-fin', 'down-fin', 'up-stall')
# the ASan build is slower: two modes there (each mode's code paths are
# the same in both builds; ASan is for memory errors on them)
_DEFAULT = ('up-rst', 'up-stall') if 'asan' in os.path.basename(iu.BUILD) else ALL_MODES
MODES = tuple(m for m in os.environ.get('SM_BURST_MODES', ','.join(_DEFAULT)).split(',') if m)
MIN_CUTS = {'up': 20, 'down': 10}


@pytest.fixture(scope='module')
def prosody(pki):
    srv = iu.start_server('prosody', pki, config={'smacks_max_queue_size': 5000})
    try:
        yield srv
    finally:
        srv.stop()
assert all(m in ALL_MODES for m in MODES), MODES


@pytest.mark.parametrize('mode', MODES)
def test_sm_burst(bins, server, mode, capsys):
    direction, fault = mode.split('-')
    tx, rx = ('sbt-%s' % uuid.uuid4().hex[:8], 'sbr-%s' % uuid.uuid4().hex[:8])
    for u in (tx, rx):
        server.register(u, 'pw-' + u)
    exe = iu._binary('tests', 'integration', 'sm_fault')
    lo, hi = BUDGET[direction]
    with FaultProxy(server.host, server.c2s_port, seed=SEED) as proxy:
        proxy.cut_every(lo, hi, direction, fault, stall_s=2.0)
        r = subprocess.run([exe, '--server', server.host, '--port', str(proxy.port),
                            '--ca-file', server.ca_file,
                            '--sender', '%s@%s' % (tx, server.domain), '--sender-password', 'pw-' + tx,
                            '--receiver', '%s@%s' % (rx, server.domain),
                            '--receiver-password', 'pw-' + rx,
                            '--count', str(COUNT), '--window', '0', '--resend', '1',
                            '--ack-wait-ms', '300', '--dead-ms', '1000', '--format', 'burst',
                            '--label', '%s %s' % (server.kind, mode), '--timeout', '150'],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=200)
        proxy.cut_every(None)
        cuts = proxy.cuts
        errors = list(proxy.errors)
    line = [l for l in r.stdout.splitlines() if l.startswith('sm-burst ')]
    assert line, (r.stdout, r.stderr[-3000:])
    with capsys.disabled():
        print('\n' + line[0] + ' (proxy faults %d)' % cuts)
    m = dict(re.findall(r'(\w+)=(\d+)', line[0]))
    late = [l for l in r.stdout.splitlines() if l.startswith('sm-late ')]
    assert not late, late
    assert not errors, errors
    assert int(m['sent']) == COUNT, line
    assert int(m['lost']) == 0, line
    assert int(m['duplicates']) == 0, line
    assert int(m['acked']) + int(m['handed_back']) == COUNT, line
    assert int(m['acked']) <= int(m['delivered']), line
    assert cuts >= MIN_CUTS[direction], 'the proxy faulted the links only %d times: %s' % (cuts, line)
    assert r.returncode == 0, (line, r.stderr[-2000:])


def test_epode_send_count_survives_cuts(bins, server, tmp_path):
    """epode-send --count 2000 through RST cuts (4-12 kB up): exit 0."""
    tx, rx = ('ses-%s' % uuid.uuid4().hex[:8], 'ser-%s' % uuid.uuid4().hex[:8])
    for u in (tx, rx):
        server.register(u, 'pw-' + u)
    pw = tmp_path / 'pw'
    pw.write_text('pw-%s\n' % tx)
    with FaultProxy(server.host, server.c2s_port, seed=SEED) as proxy:
        proxy.cut_every(4000, 12000, 'up', 'rst')
        r = subprocess.run([bins['epode_send'], '--server', server.host, '--port', str(proxy.port),
                            '--ca-file', server.ca_file, '--jid', '%s@%s' % (tx, server.domain),
                            '--password-file', str(pw), '--count', '2000',
                            '--give-up-after', '100', '%s@%s' % (rx, server.domain), 'burst'],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=150)
        proxy.cut_every(None)
        cuts = proxy.cuts
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == '' and r.stderr == '', (r.stdout, r.stderr)
    assert cuts >= 10, cuts


def test_epode_send_gives_up_with_one_line(bins, prosody, tmp_path):
    """A link that is always cut makes --give-up-after end it: non-zero,
    one line naming what is missing."""
    pw = tmp_path / 'pw'
    pw.write_text(iu.USERS['alice'] + '\n')
    with FaultProxy(prosody.host, prosody.c2s_port, seed=SEED) as proxy:
        proxy.cut_every(300, 300, 'up', 'rst')
        r = subprocess.run([bins['epode_send'], '--server', prosody.host, '--port', str(proxy.port),
                            '--ca-file', prosody.ca_file, '--jid', iu.jid(prosody, 'alice'),
                            '--password-file', str(pw), '--count', '5', '--give-up-after', '3',
                            iu.jid(prosody, 'bob'), 'never'],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('epode-send: gave up after 3 s: 5 of 5'), r.stderr
