#!/bin/sh
# Makes the TLS test certificates (run once; the results are committed).
# EC P-256 keys; valid 2020-2120 unless the name says otherwise.
set -e
cd "$(dirname "$0")"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

cat > "$T/ca.cnf" <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = $T
database = $T/index.txt
new_certs_dir = $T
serial = $T/serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[ any ]
commonName = supplied
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, DNS:example.test, IP:127.0.0.1
[ wrongname ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.invalid
[ localhost ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
[ xmppaddr ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = otherName:1.3.6.1.5.5.7.8.5;UTF8:example.test
[ client ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = otherName:1.3.6.1.5.5.7.8.5;UTF8:alice@localhost
CNF

# Validity starts in 2020, not now, so a machine whose clock is behind
# the day these were made still accepts them.
V="-startdate 20200101000000Z -enddate 21200101000000Z"
mkca() { # name subject (self-signed through `openssl ca` to set the dates)
    : > "$T/index.txt"; openssl rand -hex 16 > "$T/serial"
    key "$1-key.pem"
    openssl req -new -config "$T/ca.cnf" -key "$1-key.pem" -subj "/CN=$2" -out "$T/$1.csr"
    openssl ca -batch -notext -selfsign -config "$T/ca.cnf" -extensions v3_ca \
        -keyfile "$1-key.pem" -in "$T/$1.csr" -out "$1.pem" $V 2>/dev/null
}
# sign name ca extensions subject [ca options...]
sign() {
    n=$1 ca=$2 ext=$3 subj=$4; shift 4
    : > "$T/index.txt"; openssl rand -hex 16 > "$T/serial"
    key "$n-key.pem"
    openssl req -new -config "$T/ca.cnf" -key "$n-key.pem" -subj "/CN=$subj" -out "$T/$n.csr"
    openssl ca -batch -notext -config "$T/ca.cnf" -extensions "$ext" -cert "$ca.pem" \
        -keyfile "$ca-key.pem" -in "$T/$n.csr" -out "$n.pem" "$@" 2>/dev/null
}

mkca ca "epode test CA"
mkca untrusted-ca "epode untrusted CA"
sign server ca server localhost $V
sign wrongname ca wrongname wrong.invalid $V
sign untrusted untrusted-ca localhost localhost $V
sign expired ca localhost localhost -startdate 20000101000000Z -enddate 20010101000000Z
sign notyet ca localhost localhost -startdate 21200101000000Z -enddate 22200101000000Z
sign xmppaddr ca xmppaddr "XmppAddr only" $V
sign client ca client alice@localhost $V
