"""Fixtures for epode's integration tests against real Prosody and ejabberd
(helpers in integ_util.py).

Each test module that uses the `prosody` / `ejabberd` fixtures (or `server`,
which is both in turn) gets its own server of each kind, started once with
the accounts in integ_util.USERS and stopped when the module ends; the
harness checks that none of its processes survives.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import integ_util as iu  # noqa: E402


@pytest.fixture(scope='session')
def bins():
    return {
        'probe': iu._binary('tests', 'integration', 'login_probe'),
        'exchange': iu._binary('tests', 'integration', 'exchange'),
        'echo_bot': iu._binary('examples', 'echo-bot'),
        'epode_send': iu._binary('examples', 'epode-send'),
    }


@pytest.fixture(scope='session')
def pki(tmp_path_factory):
    return iu.xs.make_pki(str(tmp_path_factory.mktemp('pki')))


def _server_fixture(kind, **kw):
    @pytest.fixture(scope='module')
    def fixture(pki):
        srv = iu.start_server(kind, pki, **kw)
        try:
            yield srv
        finally:
            srv.stop()
    return fixture


prosody = _server_fixture('prosody')
ejabberd = _server_fixture('ejabberd')


@pytest.fixture(params=iu.KINDS)
def server(request):
    """The module's Prosody, then its ejabberd."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def record_id(request):
    """A name for this test in the end-of-run list of negotiated security."""
    return request.node.nodeid.split('::', 1)[-1]


@pytest.fixture
def spawn():
    """Starts subprocesses; kills and reaps whatever is still running after
    the test."""
    s = iu.Spawned()
    yield s
    s.cleanup()


@pytest.fixture
def fake_server():
    made = []

    def make(reply, **kw):
        f = iu.FakeServer(reply, **kw)
        made.append(f)
        return f
    yield make
    for f in made:
        f.close()


def pytest_terminal_summary(terminalreporter):
    if iu.NEGOTIATED:
        tr = terminalreporter
        tr.write_sep('-', 'negotiated (security line of each successful login)')
        for test, kind, sec in iu.NEGOTIATED:
            tr.write_line('%-9s %-62s %s' % (kind, test[:62], sec))
