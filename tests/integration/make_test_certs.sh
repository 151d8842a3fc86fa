#!/usr/bin/env bash
# Makes the certificates security_test needs in DIR (test-local, never used
# elsewhere): a CA; server certificates (SAN 127.0.0.1, ::1, localhost), one
# for rotation; a client certificate; a second, unrelated CA with a client
# certificate of its own; and an expired client certificate of the right CA.
# P-256 keys keep it fast. OpenSSL 3.0 (Debian 12): `x509 -req -days -1`
# gives a notAfter in the past, which is what "expired" needs.
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
ca() {
  key "$1"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
# sign NAME CN CA DAYS EXT
sign() {
  key "$1"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2"
  printf '%s\n' "$5" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days "$4" \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

server_ext='subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
extendedKeyUsage=serverAuth'
client_ext='extendedKeyUsage=clientAuth'

ca ca "walrus test CA"
ca wrong-ca "unrelated CA"
sign server walrusd ca 30 "$server_ext"
sign server-rotated walrusd-rotated ca 30 "$server_ext"
sign client raft-node ca 30 "$client_ext"
sign wrong-client raft-node wrong-ca 30 "$client_ext"
sign expired-client raft-node ca -1 "$client_ext"
