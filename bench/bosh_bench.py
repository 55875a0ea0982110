#!/usr/bin/python3
"""bench/bosh_bench.py — messages per second over BOSH beside TCP, end to
end against Prosody 0.12 on loopback (mod_bosh at /http-bind over http://,
`consider_bosh_secure` so SASL is offered there; TCP with STARTTLS, TLS
verified). bench/bosh_bench (C, public API) logs a sender and a receiver
in and pushes MESSAGES chat messages from one to the other, WINDOW in
flight. Three set-ups, alternated ROUNDS times (best round counts):

    tcp        sender and receiver over TCP
    bosh-send  the sender over BOSH, the receiver over TCP
    bosh-recv  the sender over TCP, the receiver over BOSH

Prints one RESULT line per run, then the table with each BOSH figure's
ratio to TCP's.

    bench/bosh_bench.py [BUILD_DIR]       default: build
Environment: MESSAGES (5000), WINDOW (100), ROUNDS (3).
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'build'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'servers'))
import xmppservers as xs  # noqa: E402

EXE = os.path.join(BUILD, 'bench', 'bosh_bench')
N = int(os.environ.get('MESSAGES', '5000'))
WINDOW = int(os.environ.get('WINDOW', '100'))
ROUNDS = int(os.environ.get('ROUNDS', '3'))


def main():
    if not os.access(EXE, os.X_OK):
        sys.exit('bosh_bench.py: %s is missing (ninja -C %s bench/bosh_bench)' % (EXE, BUILD))
    pki = xs.make_pki(os.path.join(BUILD, 'bench', 'bosh-bench-pki'))
    srv = xs.SERVERS['prosody'](pki=pki, graceful_stop=False, modules=['bosh'],
                                config={'consider_bosh_secure': True},
                                users={'bencha': 'pw-a', 'benchb': 'pw-b'})
    srv.start()
    url = 'http://127.0.0.1:%d/http-bind' % srv.http_port
    setups = [('tcp', []), ('bosh-send', ['--sender-bosh', url]),
              ('bosh-recv', ['--receiver-bosh', url])]
    best = {}
    try:
        for r in range(ROUNDS):
            for label, extra in setups:
                argv = [EXE, srv.host, str(srv.c2s_port), srv.ca_file,
                        'bencha@%s/bench' % srv.domain, 'pw-a',
                        'benchb@%s/bench' % srv.domain, 'pw-b',
                        '--count', str(N), '--window', str(WINDOW), '--label', label] + extra
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, timeout=600)
                line = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
                if p.returncode != 0 or not line:
                    print('round %d %s failed (exit %d): %s' % (r + 1, label, p.returncode,
                                                               p.stderr.strip()[-500:]))
                    continue
                print(line[0], flush=True)
                rate = float(re.search(r'rate=(\d+)', line[0]).group(1))
                best[label] = max(best.get(label, 0.0), rate)
    finally:
        srv.stop()
    print('\nmessages/s, best of %d rounds, %d messages, window %d, Prosody on loopback:'
          % (ROUNDS, N, WINDOW))
    tcp = best.get('tcp')
    for label, _ in setups:
        if label not in best:
            print('  %-10s failed' % label)
            continue
        ratio = ' (%.2f x TCP)' % (best[label] / tcp) if tcp and label != 'tcp' else ''
        print('  %-10s %8.0f%s' % (label, best[label], ratio))
    return 0 if len(best) == len(setups) else 1


if __name__ == '__main__':
    sys.exit(main())
