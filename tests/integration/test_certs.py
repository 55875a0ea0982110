"""Certificate checks against real servers presenting a bad certificate:
'wrongname' (signed by the trusted test CA, but for wrong.invalid only)
and 'untrusted' (right names, signed by an unrelated CA). epode refuses
both by default, asks the application's certificate callback when one is
set, and logs in only if the callback accepts."""

import pytest

from integ_util import KINDS, assert_logged_in, probe, start_server

CASES = [(k, c) for k in KINDS for c in ('wrongname', 'untrusted')]


@pytest.fixture(scope='module', params=CASES, ids=['%s-%s' % kc for kc in CASES])
def bad_server(request, pki):
    kind, cert = request.param
    srv = start_server(kind, pki, cert=cert, users={'alice': 'alice-secret'})
    try:
        yield srv
    finally:
        srv.stop()


# what epode says about each certificate (verify.c's words); the wrong
# name case names the domain it checked against
WHY = {
    'wrongname': 'issued for another name (not localhost)',
    'untrusted': 'signed by an unknown authority',
}


@pytest.mark.parametrize('direct', [False, True], ids=['starttls', 'direct'])
def test_refused_by_default(bins, bad_server, direct):
    res = probe(bins, bad_server, direct_tls=direct)
    assert res.rc == 1, res
    assert res.events == ['CONNECTING'], res       # no TLS_UP: never accepted
    assert res.ready is None and res.cert_callbacks == [], res
    d = res.disconnected
    assert (d['reason'], d['error']) == ('TLS', 'CERT'), res
    assert WHY[bad_server.cert] in d['text'], res
    if bad_server.cert == 'wrongname':
        assert 'unknown authority' not in d['text'], res   # the CA is trusted


def test_callback_refusing(bins, bad_server):
    """A callback that says no: it is asked once, with the reason, and the
    connection is refused as without a callback."""
    res = probe(bins, bad_server, '--refuse-untrusted')
    assert res.rc == 1, res
    assert len(res.cert_callbacks) == 1, res
    assert WHY[bad_server.cert] in res.cert_callbacks[0], res
    assert 'missing' not in res.cert_callbacks[0], res     # the DER was passed
    assert res.events == ['CONNECTING'], res
    assert (res.disconnected['reason'], res.disconnected['error']) == ('TLS', 'CERT'), res


@pytest.mark.parametrize('direct', [False, True], ids=['starttls', 'direct'])
def test_callback_accepting(bins, bad_server, direct, record_id):
    """The application accepts the certificate: login proceeds, and the
    callback ran exactly once, before TLS_UP."""
    res = probe(bins, bad_server, '--accept-untrusted', direct_tls=direct, record=record_id)
    assert_logged_in(res, bad_server)
    assert len(res.cert_callbacks) == 1, res
    assert WHY[bad_server.cert] in res.cert_callbacks[0], res
    first_cb = next(i for i, l in enumerate(res.lines) if l.startswith('cert-callback'))
    assert res.lines.index('event TLS_UP') > first_cb, res


def test_callback_not_asked_for_good_cert(bins, server):
    """With the right CA the callback is never consulted."""
    res = probe(bins, server, '--refuse-untrusted')
    assert_logged_in(res, server)
    assert res.cert_callbacks == [], res
