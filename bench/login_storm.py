#!/usr/bin/python3
"""bench/login_storm.py — a reconnection storm: N bots (1,000), each with
its own account, log in to Prosody 0.12 on loopback at once (STARTTLS, TLS 1.3,
SASL2 + Bind2), first with the password (SCRAM-SHA-256: PBKDF2 with
Prosody's 10,000 iterations on both sides), then — all disconnected —
again at once with the FAST tokens the first round gave them
(HT-SHA-256-EXPR). Printed per round: wall time until every session is
READY, and CPU seconds of the clients (this process: the epode Python
binding on the built-in loop) and of the server (its /proc/PID/stat).

Each bot has its own account, user-agent id and in-memory token store.
The server is the harness's (tests/servers/xmppservers.py sasl2=True);
the accounts are written into its data directory (plaintext storage, as
the harness registers them). One account for all the sessions would
measure Prosody's file storage instead: mod_sasl2_fast keeps an account's
tokens in one file, read and rewritten at every login.

    bench/login_storm.py [BUILD_DIR]      default: build
Environment: SESSIONS (1000).
"""

import asyncio
import os
import resource
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'build')
sys.path.insert(0, os.path.join(BUILD, 'bindings', 'python'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'servers'))
import epode  # noqa: E402
import xmppservers as xs  # noqa: E402


class MemoryStore:
    """One device's token, in memory."""

    def __init__(self):
        self.token = None

    def load(self, jid):
        return self.token

    def store(self, jid, token):
        self.token = dict(token) if token is not None else None


def server_cpu(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def client_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def storm(srv, n, stores, ids):
    clients = [epode.Client('bot%d@%s' % (i, srv.domain), 'secret', server=srv.host,
                            port=srv.c2s_port,
                            ca_file=srv.ca_file, user_agent=ids[i], fast_token_store=stores[i],
                            connect_timeout=120, login_timeout=120)
               for i in range(n)]
    c0, s0, t0 = client_cpu(), server_cpu(srv.pid), time.perf_counter()
    res = await asyncio.gather(*(c.connect() for c in clients), return_exceptions=True)
    t1, c1, s1 = time.perf_counter(), client_cpu(), server_cpu(srv.pid)
    ok = [c for c, r in zip(clients, res) if r is None]
    errors = {}
    for r in res:
        if r is not None:
            errors[repr(r)[:120]] = errors.get(repr(r)[:120], 0) + 1
    for e, k in errors.items():
        print('  %d x %s' % (k, e), file=sys.stderr)
    mechs = {c.connection.security.rsplit(' ', 1)[-1] for c in ok}
    await asyncio.gather(*(c.disconnect() for c in ok), return_exceptions=True)
    return t1 - t0, c1 - c0, s1 - s0, '%d ok: %s' % (len(ok), ' '.join(sorted(mechs)))


def main():
    n = int(os.environ.get('SESSIONS', '1000'))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * n + 100)), hard))
    stores = [MemoryStore() for _ in range(n)]
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with xs.Prosody(users={'alice': 'secret'}, sasl2=True, graceful_stop=False) as srv:
        accounts = os.path.join(srv.state_dir, 'data', srv.domain, 'accounts')
        for i in range(n):
            with open(os.path.join(accounts, 'bot%d.dat' % i), 'w') as f:
                f.write('return {\n\t["password"] = "secret";\n};\n')
        rows = [('password (SCRAM-SHA-256)',) + asyncio.run(storm(srv, n, stores, ids))]
        have = sum(1 for s in stores if s.token)
        rows.append(('FAST tokens',) + asyncio.run(storm(srv, n, stores, ids)))
    print('%d bots (one account each) logging in at once, Prosody 0.12 on loopback, '
          'STARTTLS, SASL2 + Bind2 (%d tokens kept after the first round)' % (n, have))
    print('%-26s %10s %14s %14s  %s' % ('', 'wall s', 'client CPU s', 'server CPU s',
                                        'mechanisms'))
    for name, wall, ccpu, scpu, mechs in rows:
        print('%-26s %10.2f %14.2f %14.2f  %s' % (name, wall, ccpu, scpu, mechs))


if __name__ == '__main__':
    main()
