"""What every example bot accepts on its command line:

    --jid JID --password-file FILE [--server HOST] [--port N]
    [--ca-file FILE] [--direct-tls] [--verbose]

(the same options as the C examples), and how it turns them into an
epode.Client.
"""

import argparse
import logging
import sys
from typing import Any

import epode


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--jid", required=True, help="the bot's account (bare or full JID)")
    p.add_argument("--password-file", required=True,
                   help="a file whose first line is the password")
    p.add_argument("--server", help="host to connect to (default: the domain's SRV records)")
    p.add_argument("--port", type=int, help="port on --server")
    p.add_argument("--ca-file", help="PEM file of CAs to trust instead of the system's")
    p.add_argument("--direct-tls", action="store_true", help="TLS from the first byte")
    p.add_argument("--verbose", action="store_true", help="log what happens on stderr")
    return p


def client(args: argparse.Namespace, **kw: Any) -> epode.Client:
    try:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.readline().rstrip("\r\n")
    except OSError as exc:
        sys.exit("%s: cannot read the password: %s" % (sys.argv[0], exc))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    return epode.Client(args.jid, password, server=args.server, port=args.port,
                        ca_file=args.ca_file, direct_tls=args.direct_tls, **kw)
