#!/usr/bin/python3
"""bench/login_sasl2.py — login time and round trips against Prosody 0.12 on
loopback with STARTTLS (TLS 1.2, then 1.3): legacy SASL (SCRAM, stream restart,
resource bind) vs SASL2 + Bind2 (SCRAM in one <authenticate/>, bound
inline) vs FAST re-authentication (HT-SHA-256-UNIQ/-EXPR, a stored token: no
PBKDF2 on either side).

Each login is one examples/epode-send --verbose run (a chat message and a
ping after it); the time measured is from its "[net] connecting" line to
its "[conn] ready" line, read as they are written, so process start-up and
the message after login are not counted. Round trips are counted from the
same trace: each time the client, having sent something, reads the
server's next bytes before READY. The three kinds alternate, LOGINS (20)
rounds; the median and the spread (min-max) are printed.

Legacy SASL is measured on a Prosody without the SASL2 modules (SASL2 is
epode's default where offered), SASL2 and FAST on one with them
(tests/servers/xmppservers.py sasl2=True). Same Prosody, same TLS, same
account; with the harness's plaintext password storage Prosody derives
the SCRAM keys (10,000 iterations) at every SCRAM login, as the client
does: FAST skips both.

    bench/login_sasl2.py [BUILD_DIR]        default: build
Environment: LOGINS (20).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'servers'))
import xmppservers as xs  # noqa: E402


def one_login(exe, srv, pwfile, extra):
    argv = [exe, '--server', srv.host, '--port', str(srv.c2s_port), '--ca-file', srv.ca_file,
            '--jid', 'alice@' + srv.domain, '--password-file', pwfile, '--verbose'] + extra + \
           ['alice@' + srv.domain, 'bench']
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         bufsize=1)
    t0 = t1 = None
    trips, last = 0, None
    mech = None
    for line in p.stderr:
        now = time.perf_counter()
        if line.startswith('[net] connecting') and t0 is None:
            t0 = now
        elif line.startswith('SEND ') and t1 is None:
            last = 'send'
        elif line.startswith('RECV ') and t1 is None:
            if last == 'send':
                trips += 1
            last = 'recv'
        elif line.startswith('[conn] ready') and t1 is None:
            t1 = now
            mech = line.rsplit(', ', 1)[-1].rstrip(')\n')
    rc = p.wait()
    if rc != 0 or t0 is None or t1 is None:
        raise SystemExit('login failed (%s): %s' % (rc, ' '.join(argv)))
    return (t1 - t0) * 1000.0, trips, mech


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'build')
    exe = os.path.join(build, 'examples', 'epode-send')
    logins = int(os.environ.get('LOGINS', '20'))
    tmp = tempfile.mkdtemp(prefix='login-sasl2-')
    pw = os.path.join(tmp, 'pw')
    with open(pw, 'w') as f:
        f.write('secret\n')
    pki = xs.make_pki(os.path.join(tmp, 'pki'))
    for tls in ('1.2', '1.3'):
        run(exe, tmp, pw, pki, tls, logins)


def run(exe, tmp, pw, pki, tls, logins):
    tok = os.path.join(tmp, 'token-' + tls)
    users = {'alice': 'secret'}
    results = {'legacy SASL (SCRAM)': [], 'SASL2 + Bind2 (SCRAM)': [], 'FAST re-auth': []}
    trips, mechs = {}, {}
    # 1.2: Prosody's TLS 1.2 only; 1.3: its default (TLS 1.3 negotiated)
    kw = {'tls_max_version': '1.2'} if tls == '1.2' else {}
    with xs.Prosody(pki=pki, users=users, graceful_stop=False, **kw) as legacy, \
            xs.Prosody(pki=pki, users=users, sasl2=True, graceful_stop=False, **kw) as modern:
        one_login(exe, modern, pw, ['--fast-token-file', tok])  # the first token
        for _ in range(logins):
            for name, srv, extra in (('legacy SASL (SCRAM)', legacy, []),
                                     ('SASL2 + Bind2 (SCRAM)', modern, []),
                                     ('FAST re-auth', modern, ['--fast-token-file', tok])):
                ms, n, mech = one_login(exe, srv, pw, extra)
                results[name].append(ms)
                trips[name] = n
                mechs[name] = mech
    print('login to READY against Prosody 0.12 on loopback, STARTTLS (TLS %s), %d logins each'
          % (tls, logins))
    print('%-24s %10s %16s %12s  %s' % ('', 'median ms', 'min-max ms', 'round trips',
                                        'mechanism'))
    for name, v in results.items():
        print('%-24s %10.2f %16s %12d  %s' % (name, statistics.median(v),
                                              '%.2f-%.2f' % (min(v), max(v)), trips[name],
                                              mechs[name]))
    print()

if __name__ == '__main__':
    main()
