"""Finding the server through DNS SRV, end to end: epode asks a DNS
responder of the test's own on 127.0.0.1 (never the machine's resolver)
for _xmpps-client._tcp and _xmpp-client._tcp, and must connect where the
records say, in their order, direct TLS where the record is _xmpps."""
import pytest

import integ_util as iu
from dns_responder import DnsResponder, TYPE_SRV

# epode never asks DNS about "localhost" (RFC 6761), so these servers host
# example.test (in the test certificate's names); SRV targets are
# "localhost", which resolves from /etc/hosts.
DOMAIN = 'example.test'


@pytest.fixture(scope='module', params=iu.KINDS)
def server(request, pki):
    srv = iu.start_server(request.param, pki, domain=DOMAIN)
    try:
        yield srv
    finally:
        srv.stop()


def srv_probe(bins, srv, dns, *args):
    # no --server: the probe resolves the domain through SRV
    argv_extra = ['--dns', dns.address] + list(args)
    return iu.probe(bins, srv, *argv_extra, port=None, no_server=True)


@pytest.fixture
def dns_factory():
    made = []

    def make(records):
        d = DnsResponder(records)
        made.append(d)
        return d
    yield make
    for d in made:
        d.close()


def test_srv_points_to_starttls_port(bins, server, dns_factory):
    dns = dns_factory({('_xmpp-client._tcp.' + server.domain, TYPE_SRV):
                       [(10, 0, server.c2s_port, 'localhost')]})
    res = srv_probe(bins, server, dns)
    iu.assert_logged_in(res, server)
    assert 'STARTTLS' in res.security, res
    assert ('_xmpp-client._tcp.' + server.domain, TYPE_SRV) in dns.queries
    assert ('_xmpps-client._tcp.' + server.domain, TYPE_SRV) in dns.queries


def test_srv_prefers_direct_tls_record_by_priority(bins, server, dns_factory):
    dns = dns_factory({
        ('_xmpps-client._tcp.' + server.domain, TYPE_SRV): [(5, 0, server.direct_tls_port, 'localhost')],
        ('_xmpp-client._tcp.' + server.domain, TYPE_SRV): [(10, 0, server.c2s_port, 'localhost')],
    })
    res = srv_probe(bins, server, dns)
    iu.assert_logged_in(res, server)
    assert 'direct' in res.security, res


def test_srv_falls_through_to_next_target(bins, server, dns_factory):
    dead = iu.closed_port()
    dns = dns_factory({('_xmpp-client._tcp.' + server.domain, TYPE_SRV):
                       [(1, 0, dead, 'localhost'), (2, 0, server.c2s_port, 'localhost')]})
    res = srv_probe(bins, server, dns)
    iu.assert_logged_in(res, server)


def test_srv_dot_means_no_service(bins, server, dns_factory):
    dns = dns_factory({('_xmpp-client._tcp.' + server.domain, TYPE_SRV): [(0, 0, 0, '.')]})
    res = srv_probe(bins, server, dns)
    assert res.rc == 1, res
    assert 'reason=NETWORK' in res.stdout, res
    assert 'no XMPP service' in res.stdout, res


def test_no_srv_records_falls_back_to_domain_5222(bins, server, dns_factory):
    # no SRV records: the domain itself on 5222, whose address comes from
    # the same responder (nothing of ours listens on 127.0.0.1:5222)
    dns = dns_factory({(DOMAIN, 1): ['127.0.0.1']})
    res = srv_probe(bins, server, dns)
    assert res.rc == 1, res
    assert '127.0.0.1:5222' in res.stdout, res
    assert ('_xmpp-client._tcp.' + DOMAIN, TYPE_SRV) in dns.queries
