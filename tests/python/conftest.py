"""Fixtures for the Python binding's tests.

Unit tests need only the built package on PYTHONPATH (build/bindings/python;
`meson test python-unit` and tests/python/run.sh set it). Tests marked
`server` get a real Prosody on 127.0.0.1, started once per session by the
harness in tests/servers/xmppservers.py with its own state, ports and CA,
and stopped at the end; each test makes its own accounts with
`prosody.account()`, so no state leaks from one test to the next.
"""

from __future__ import annotations

import itertools
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "servers"))


def pytest_configure(config):
    config.addinivalue_line("markers", "server: needs a real Prosody (started by the fixture)")


class Server:
    """A running Prosody: where it is, and fresh accounts on it."""

    def __init__(self, srv):
        self.srv = srv
        self.host = srv.host
        self.port = srv.c2s_port
        self.direct_tls_port = srv.direct_tls_port
        self.domain = srv.domain
        self.muc_domain = getattr(srv, "muc_domain", "conference." + srv.domain)
        self.ca_file = srv.ca_file
        self._n = itertools.count()

    def kwargs(self) -> dict:
        """Client(...) keyword arguments that reach this server."""
        return dict(server=self.host, port=self.port, ca_file=self.ca_file)

    def account(self, prefix: str = "u") -> tuple[str, str]:
        """A new account: (bare JID, password)."""
        name = "%s%d" % (prefix, next(self._n))
        password = "pw-%s-\u00e4" % name
        self.srv.register(name, password)
        return "%s@%s" % (name, self.domain), password


@pytest.fixture(scope="session")
def prosody(tmp_path_factory):
    import xmppservers as xs
    pki = xs.make_pki(str(tmp_path_factory.mktemp("pki")))
    srv = xs.SERVERS["prosody"](pki=pki, graceful_stop=False, users={"alice": "pw1"})
    srv.start()
    try:
        yield Server(srv)
    finally:
        srv.stop()
