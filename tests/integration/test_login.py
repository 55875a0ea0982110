"""Logging in to real Prosody 0.12 and ejabberd 23.01 with epode
(login_probe): STARTTLS and direct TLS, every SASL mechanism each server
offers, channel binding, wrong credentials, the trust store, and the
failures that need no real server (closed port, no STARTTLS)."""

import ssl
import time

import pytest

from integ_util import (USERS, assert_logged_in, closed_port, finish_probe, probe,
                        read_line_starting)

# ---------------------------------------------------------------------------
# transport: STARTTLS and direct TLS, default mechanism choice
# ---------------------------------------------------------------------------

# epode's default order is SCRAM-SHA-512/256/1 with -PLUS first. Channel
# binding is tls-unique, defined on TLS 1.2 only, so on TLS 1.3 (the
# default) the strongest plain SCRAM is used, on TLS 1.2 the strongest
# -PLUS. Prosody has no SCRAM-SHA-512.
DEFAULT_MECH = {
    ('prosody', '1.3'): 'SCRAM-SHA-256',
    ('prosody', '1.2'): 'SCRAM-SHA-256-PLUS',
    ('ejabberd', '1.3'): 'SCRAM-SHA-512',
    ('ejabberd', '1.2'): 'SCRAM-SHA-512-PLUS',
}


@pytest.mark.parametrize('tls', ['1.3', '1.2'])
def test_starttls_default_mechanism(bins, server, tls, record_id):
    res = probe(bins, server, '--tls-max', tls, record=record_id)
    assert_logged_in(res, server)
    assert res.security == 'TLS %s (STARTTLS), SASL %s' % (tls, DEFAULT_MECH[server.kind, tls]), res


@pytest.mark.parametrize('tls', ['1.3', '1.2'])
def test_direct_tls_default_mechanism(bins, server, tls, record_id):
    res = probe(bins, server, '--tls-max', tls, direct_tls=True, record=record_id)
    assert_logged_in(res, server)
    assert res.security == 'TLS %s (direct), SASL %s' % (tls, DEFAULT_MECH[server.kind, tls]), res


def test_direct_tls_to_starttls_port_fails(bins, server):
    """Direct TLS to the STARTTLS port: the server answers the ClientHello
    with XML, so the handshake fails with reason TLS; no login."""
    res = probe(bins, server, direct_tls=True, port=server.c2s_port, timeout=8)
    assert res.rc == 1, res
    assert res.events == ['CONNECTING'], res
    d = res.disconnected
    assert (d['reason'], d['error']) == ('TLS', 'TLS'), res
    assert 'handshake' in d['text'], res


def test_bound_resource_is_unique(bins, server):
    """Two logins of one account get two different server-chosen resources."""
    a = probe(bins, server)
    b = probe(bins, server)
    assert_logged_in(a, server)
    assert_logged_in(b, server)
    assert a.ready != b.ready


# ---------------------------------------------------------------------------
# every SASL mechanism each server offers, forced with --sasl
# ---------------------------------------------------------------------------

# (server, mechanism, TLS max version, direct TLS?)
MECH_CASES = [
    # Prosody with internal_plain storage: SCRAM-SHA-1/256, PLAIN; -PLUS
    # only on TLS 1.2 (it does not offer -PLUS on 1.3).
    ('prosody', 'SCRAM-SHA-1', '1.3', False),
    ('prosody', 'SCRAM-SHA-256', '1.3', False),
    ('prosody', 'PLAIN', '1.3', False),
    # non-PLUS while -PLUS is offered: the GS2 flag must be "n" (Prosody
    # rejects "y" after offering -PLUS: the downgrade check)
    ('prosody', 'SCRAM-SHA-1', '1.2', False),
    ('prosody', 'SCRAM-SHA-256', '1.2', False),
    ('prosody', 'PLAIN', '1.2', False),
    ('prosody', 'SCRAM-SHA-1-PLUS', '1.2', False),
    ('prosody', 'SCRAM-SHA-256-PLUS', '1.2', False),
    ('prosody', 'SCRAM-SHA-256-PLUS', '1.2', True),
    # ejabberd with plain storage: SCRAM-SHA-1/256/512 and their -PLUS
    # (tls-unique; advertised on TLS 1.3 too), PLAIN.
    ('ejabberd', 'SCRAM-SHA-1', '1.3', False),
    ('ejabberd', 'SCRAM-SHA-256', '1.3', False),
    ('ejabberd', 'SCRAM-SHA-512', '1.3', False),
    ('ejabberd', 'PLAIN', '1.3', False),
    ('ejabberd', 'SCRAM-SHA-1', '1.2', False),
    ('ejabberd', 'SCRAM-SHA-256', '1.2', False),
    ('ejabberd', 'SCRAM-SHA-512', '1.2', False),
    ('ejabberd', 'SCRAM-SHA-1-PLUS', '1.2', False),
    ('ejabberd', 'SCRAM-SHA-256-PLUS', '1.2', False),
    ('ejabberd', 'SCRAM-SHA-512-PLUS', '1.2', False),
    ('ejabberd', 'SCRAM-SHA-512-PLUS', '1.2', True),
]


@pytest.mark.parametrize('kind,mech,tls,direct', MECH_CASES,
                         ids=['%s-%s-tls%s%s' % (k, m, t, '-direct' if d else '')
                              for k, m, t, d in MECH_CASES])
def test_forced_mechanism(request, bins, kind, mech, tls, direct, record_id):
    srv = request.getfixturevalue(kind)
    res = probe(bins, srv, '--sasl', mech, '--tls-max', tls, direct_tls=direct, record=record_id)
    assert_logged_in(res, srv)
    assert res.security == 'TLS %s (%s), SASL %s' % (tls, 'direct' if direct else 'STARTTLS', mech), res


@pytest.mark.parametrize('kind,mech', [('prosody', 'SCRAM-SHA-1'), ('prosody', 'SCRAM-SHA-256'),
                                       ('prosody', 'PLAIN'), ('ejabberd', 'SCRAM-SHA-1'),
                                       ('ejabberd', 'SCRAM-SHA-256'), ('ejabberd', 'SCRAM-SHA-512'),
                                       ('ejabberd', 'PLAIN'), ('ejabberd', 'SCRAM-SHA-256-PLUS')])
def test_password_needing_saslprep(request, bins, kind, mech, record_id):
    """charlie's password has a space, ',', '=' and non-ASCII letters."""
    srv = request.getfixturevalue(kind)
    tls = '1.2' if mech.endswith('-PLUS') else '1.3'
    res = probe(bins, srv, '--sasl', mech, '--tls-max', tls, user='charlie', record=record_id)
    assert_logged_in(res, srv, user='charlie')
    assert res.mechanism == mech, res


def test_ejabberd_plus_on_tls13_falls_back(bins, ejabberd, record_id):
    """ejabberd advertises -PLUS on TLS 1.3 too, expecting tls-unique,
    which TLS 1.3 does not define: epode must not pick -PLUS there but fall
    back to the plain SCRAM of the same hash and log in.
    Observed: SCRAM-SHA-256 (and, by default, SCRAM-SHA-512)."""
    res = probe(bins, ejabberd, '--sasl', 'SCRAM-SHA-256-PLUS SCRAM-SHA-256', '--tls-max', '1.3',
                record=record_id)
    assert_logged_in(res, ejabberd)
    assert res.security == 'TLS 1.3 (STARTTLS), SASL SCRAM-SHA-256', res
    res = probe(bins, ejabberd, record=record_id + '[default]')
    assert_logged_in(res, ejabberd)
    assert res.security == 'TLS 1.3 (STARTTLS), SASL SCRAM-SHA-512', res


def test_plus_only_without_binding_is_refused(bins, server):
    """Only -PLUS allowed on TLS 1.3: Prosody does not offer it, ejabberd
    does but there is no tls-unique to bind to. Either way: no acceptable
    mechanism, reason AUTH, and nothing sent in the clear about it."""
    res = probe(bins, server, '--sasl', 'SCRAM-SHA-256-PLUS', '--tls-max', '1.3')
    assert res.rc == 1, res
    assert res.events == ['CONNECTING', 'TLS_UP'], res
    assert res.ready is None
    d = res.disconnected
    assert (d['reason'], d['error']) == ('AUTH', 'NOMECH'), res
    assert 'SCRAM-SHA-256' in d['text'], res   # names what the server offered


def test_unknown_mechanism_only(bins, server):
    res = probe(bins, server, '--sasl', 'X-NO-SUCH-MECH')
    assert res.rc == 1, res
    assert res.disconnected['reason'] == 'AUTH' and res.disconnected['error'] == 'NOMECH', res


# ---------------------------------------------------------------------------
# wrong credentials
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('mech', [None, 'PLAIN', 'SCRAM-SHA-1'])
def test_wrong_password(bins, server, mech):
    args = ['--sasl', mech] if mech else []
    t0 = time.monotonic()
    res = probe(bins, server, *args, password='not-' + USERS['alice'])
    assert res.rc == 1, res
    assert res.events == ['CONNECTING', 'TLS_UP'], res
    assert res.ready is None and res.security is None, res
    d = res.disconnected
    assert (d['reason'], d['error'], d['condition']) == ('AUTH', 'AUTH', 'not-authorized'), res
    assert 'not-authorized' in d['text'] or 'authentication' in d['text'].lower(), res
    assert time.monotonic() - t0 < 10


def test_unknown_user(bins, server):
    res = probe(bins, server, user='nobody-here', password='whatever')
    assert res.rc == 1, res
    d = res.disconnected
    assert (d['reason'], d['condition']) == ('AUTH', 'not-authorized'), res
    assert res.ready is None


def test_empty_password(bins, server):
    res = probe(bins, server, password='')
    assert res.rc == 1, res
    assert res.ready is None, res
    assert res.disconnected['reason'] == 'AUTH', res


# ---------------------------------------------------------------------------
# trust: the system store does not know the test CA
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('direct', [False, True], ids=['starttls', 'direct'])
def test_system_trust_store_refuses_test_ca(bins, server, direct):
    res = probe(bins, server, direct_tls=direct, ca_file=None)
    assert res.rc == 1, res
    assert res.events == ['CONNECTING'], res    # TLS_UP only once accepted
    d = res.disconnected
    assert (d['reason'], d['error']) == ('TLS', 'CERT'), res
    assert 'unknown authority' in d['text'], res


# ---------------------------------------------------------------------------
# failures without a real server
# ---------------------------------------------------------------------------

def test_closed_port_is_network_error(bins, prosody):
    port = closed_port()
    t0 = time.monotonic()
    res = probe(bins, prosody, port=port, timeout=10)
    took = time.monotonic() - t0
    assert res.rc == 1, res
    assert res.events == ['CONNECTING'], res
    d = res.disconnected
    assert (d['reason'], d['error']) == ('NETWORK', 'NET'), res
    assert 'refused' in d['text'].lower() or 'connect' in d['text'].lower(), res
    assert took < 5, 'a refused connect took %.1fs' % took


NO_STARTTLS_FEATURES = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='fake1' "
    "version='1.0' xml:lang='en'>"
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    "<mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms>"
    "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>")


def test_no_starttls_offered_is_refused(bins, prosody, fake_server):
    """TLS is required by default: a server whose features lack <starttls/>
    is refused with reason TLS, and no <auth> (no credentials) is sent."""
    fake = fake_server(NO_STARTTLS_FEATURES, linger=5)
    res = probe(bins, prosody, port=fake.port, timeout=8)
    assert fake.join()
    assert fake.error is None, fake.error
    assert res.rc == 1, res
    assert res.events == ['CONNECTING'], res
    d = res.disconnected
    assert (d['reason'], d['error']) == ('TLS', 'NOTLS'), res
    assert 'STARTTLS' in d['text'], res
    got = fake.received.decode('utf-8', 'replace')
    assert '<stream:stream' in got or ':stream' in got, got      # it did talk to us
    assert 'auth' not in got.replace('xmlns', ''), got           # but no <auth>, no credentials
    assert USERS['alice'] not in got
    assert fake.client_closed, 'epode did not close the connection: %r' % got


FAKE_HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
               "xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='fake2' "
               "version='1.0' xml:lang='en'>")


def test_silent_server_times_out(bins, prosody, fake_server):
    """A server that accepts TCP and never answers: the login timeout
    (--timeout 2) ends it with reason TIMEOUT, not a hang."""
    fake = fake_server(b'', linger=8)
    t0 = time.monotonic()
    res = probe(bins, prosody, port=fake.port, timeout=2)
    took = time.monotonic() - t0
    assert res.rc == 1, res
    d = res.disconnected
    assert (d['reason'], d['error']) == ('TIMEOUT', 'TIMEDOUT'), res
    assert 1.5 < took < 4.5, 'took %.2fs' % took
    assert 'timeout waiting' not in res.stdout, res      # epode's timer, not ours
    fake.join()
    assert fake.client_closed


def test_stream_error_before_features(bins, prosody, fake_server):
    """A stream error with text instead of features: reason STREAM_ERROR,
    the condition and the server's text reach the application."""
    fake = fake_server(FAKE_HEADER + "<stream:error><system-shutdown "
                       "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text "
                       "xmlns='urn:ietf:params:xml:ns:xmpp-streams'>going down for maintenance"
                       "</text></stream:error></stream:stream>")
    res = probe(bins, prosody, port=fake.port, timeout=8)
    assert res.rc == 1, res
    d = res.disconnected
    assert (d['reason'], d['error'], d['condition']) == ('STREAM_ERROR', 'STREAM', 'system-shutdown'), res
    assert 'going down for maintenance' in d['text'], res


def _fake_tls(srv):
    """A server-side TLS context with the real server's certificate (valid
    for its domain), for a fake server that speaks direct TLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(srv.pki.server_cert, srv.pki.server_key)
    return ctx


def _see_other_host(port):
    return (FAKE_HEADER + "<stream:error><see-other-host "
            "xmlns='urn:ietf:params:xml:ns:xmpp-streams'>127.0.0.1:%d</see-other-host>"
            "</stream:error></stream:stream>" % port)


def test_see_other_host_is_followed(bins, server, fake_server, record_id):
    """A see-other-host stream error over TLS whose certificate verifies
    for the domain, naming the real server: epode connects there and logs
    in (the certificate is still checked for the domain)."""
    fake = fake_server(_see_other_host(server.direct_tls_port), tls=_fake_tls(server))
    res = probe(bins, server, port=fake.port, direct_tls=True, record=record_id)
    assert res.rc == 0, res
    assert res.ready.startswith('alice@%s/' % server.domain), res
    assert res.events[-3:] == ['TLS_UP', 'TLS_UP', 'AUTHENTICATED'], res
    assert res.disconnected['reason'] == 'CLOSED', res
    fake.join()
    assert fake.handshakes == 1
    assert len(fake.connections) == 1 and USERS['alice'] not in fake.received.decode('utf-8', 'replace')


def test_see_other_host_before_tls_is_refused(bins, prosody, fake_server):
    """The same redirect in cleartext, before STARTTLS (anyone on the path
    could have written it): not followed, and the reason says so."""
    fake = fake_server(_see_other_host(prosody.c2s_port))
    res = probe(bins, prosody, port=fake.port, timeout=8)
    assert res.rc == 1, res
    assert not res.ready, res
    d = res.disconnected
    assert (d['reason'], d['condition']) == ('STREAM_ERROR', 'see-other-host'), res
    assert 'refused a see-other-host redirect to 127.0.0.1:%d received before TLS' % (
        prosody.c2s_port) in d['text'], res
    assert not any(l.startswith('redirect ') for l in res.lines), res


def test_see_other_host_loop_ends(bins, prosody, fake_server):
    """A server that redirects to itself forever (over verified TLS):
    epode follows 3 redirects, then gives up with the see-other-host
    condition."""
    fake = fake_server(b'', accepts=10, linger=3, tls=_fake_tls(prosody))
    fake.reply = _see_other_host(fake.port).encode()
    res = probe(bins, prosody, port=fake.port, direct_tls=True, timeout=10)
    assert res.rc == 1, res
    d = res.disconnected
    assert (d['reason'], d['condition']) == ('STREAM_ERROR', 'see-other-host'), res
    assert 'gave up after 3 see-other-host redirects' in d['text'], res
    assert 'redirect 127.0.0.1:%d' % fake.port in res.lines, res
    fake.close()
    fake.join()
    assert len(fake.connections) == 4, len(fake.connections)


def test_host_unknown(bins, server):
    """A JID whose domain the server does not serve: the server's stream
    error (host-unknown) ends the attempt, before any TLS."""
    res = probe(bins, server, jid='alice@example.test', timeout=8)
    assert res.rc == 1, res
    assert res.events == ['CONNECTING'], res
    d = res.disconnected
    assert (d['reason'], d['error'], d['condition']) == ('STREAM_ERROR', 'STREAM', 'host-unknown'), res


def test_requested_resource_and_conflict(bins, server, spawn):
    """A full JID requests its resource at bind. A second login with the
    same full JID takes it over; the first session gets the conflict
    stream error."""
    full = 'alice@%s/fixed-res' % server.domain
    first = probe(bins, server, '--presence', '--expect-from', 'nobody@%s' % server.domain,
                  jid=full, timeout=20, popen=spawn.popen)
    read_line_starting(first, 'ready ', timeout=10)
    second = probe(bins, server, jid=full)
    assert_logged_in(second, server)
    assert second.ready == full, second
    r1 = finish_probe(first, timeout=15)
    assert r1.ready == full, r1
    assert r1.rc == 1, r1
    d = r1.disconnected
    assert (d['reason'], d['error'], d['condition']) == ('STREAM_ERROR', 'STREAM', 'conflict'), r1
