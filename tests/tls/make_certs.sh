#!/usr/bin/env bash
# Writes a throwaway test PKI into DIR (created if missing), valid for one day:
#   ca.crt ca.key            the test CA
#   server.crt server.key    signed by the CA; subjectAltName DNS:localhost, IP:127.0.0.1
#   client.crt client.key    signed by the CA; for servers that require client certificates
#   other-ca.crt             a second CA that signed nothing here (the "wrong CA" case)
# Used by the TLS tests for clients (wss), Redis (rediss) and the hook; needs only openssl.
set -euo pipefail

dir="${1:?usage: make_certs.sh DIR}"
mkdir -p "$dir"
cd "$dir"

curve=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)

openssl req -x509 "${curve[@]}" -days 1 -subj /CN=wsrelay-test-ca \
    -keyout ca.key -out ca.crt 2>/dev/null
openssl req -x509 "${curve[@]}" -days 1 -subj /CN=wsrelay-other-ca \
    -keyout other-ca.key -out other-ca.crt 2>/dev/null

sign() { # sign NAME CN EXTENSIONS
    openssl req "${curve[@]}" -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
        -extfile <(printf '%s\n' "$3") -out "$1.crt" 2>/dev/null
    rm -f "$1.csr"
}
sign server localhost 'subjectAltName=DNS:localhost,IP:127.0.0.1'
sign client wsrelay-test-client 'extendedKeyUsage=clientAuth'
chmod 600 ./*.key
