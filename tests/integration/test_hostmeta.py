"""XEP-0156 discovery (lib/http/hostmeta.c, through hostmeta_probe) against
ejabberd 23.01's mod_host_meta on an HTTPS listener of its own: the XRD
document found, the JSON one when only it is served, nothing usable when
neither is, and a certificate for another name refused. (Prosody 0.12
has no host-meta module in Debian: mod_host_meta is a community module
not packaged there.)"""
import os
import re
import subprocess

import pytest

import integ_util as iu

LINE = re.compile(r'^status=(\S+) ws=(\S+) bosh=(\S+) ms=(\d+) text=(.*)$')


def _start(pki, handlers, cert='good'):
    port = iu.xs.free_port()
    srv = iu.xs.Ejabberd(pki=pki, graceful_stop=False, cert=cert,
                         modules=['mod_host_meta', 'bosh'])
    hs = {'/bosh': 'mod_bosh', '/ws': 'ejabberd_http_ws'}
    hs.update({p: 'mod_host_meta' for p in handlers})
    srv.extra_listeners = [{'port': port, 'ip': iu.xs.HOST, 'module': 'ejabberd_http',
                            'tls': True, 'request_handlers': hs}]
    srv.start()
    srv.https_port = port
    return srv


def _probe(srv, domain='localhost'):
    exe = os.path.join(iu.BUILD, 'tests', 'integration', 'hostmeta_probe')
    if not os.access(exe, os.X_OK):
        pytest.skip('hostmeta_probe not built (epode without libcurl)')
    out = subprocess.run([exe, domain, str(srv.https_port), srv.pki.ca_cert],
                         capture_output=True, text=True, timeout=60)
    m = LINE.match(out.stdout.strip())
    assert m and out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    return m.group(1), m.group(2), m.group(3), m.group(5)


@pytest.mark.parametrize('docs', [('/.well-known/host-meta', '/.well-known/host-meta.json'),
                                  ('/.well-known/host-meta.json',)])
def test_hostmeta_finds_ejabberds_urls(pki, docs):
    srv = _start(pki, docs)
    try:
        status, ws, bosh, text = _probe(srv)
    finally:
        srv.stop()
    base = 'localhost:%d' % srv.https_port
    assert status == 'OK', text
    assert ws == 'wss://%s/ws' % base
    assert bosh == 'https://%s/bosh' % base
    assert text.endswith(docs[0] if len(docs) == 1 else '/.well-known/host-meta'), text


def test_hostmeta_nothing_served(pki):
    srv = _start(pki, ())
    try:
        status, ws, bosh, text = _probe(srv)
    finally:
        srv.stop()
    assert (status, ws, bosh) == ('HTTP', '-', '-')
    assert '/.well-known/host-meta: HTTP status 404' in text
    assert '/.well-known/host-meta.json: HTTP status 404' in text


def test_hostmeta_certificate_for_another_name(pki):
    srv = _start(pki, ('/.well-known/host-meta', '/.well-known/host-meta.json'), cert='wrongname')
    try:
        status, ws, bosh, text = _probe(srv)
    finally:
        srv.stop()
    assert (status, ws, bosh) == ('CERT', '-', '-'), text
