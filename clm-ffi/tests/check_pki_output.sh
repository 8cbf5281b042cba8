#!/usr/bin/env bash
# Checks what examples/c/pki.c wrote into OUT_DIR with openssl, as the Rust
# test of examples/pki.rs (tests/issuance.rs) checks its output.
#   check_pki_output.sh OUT_DIR
set -euo pipefail
cd "$1"
fail() { echo "check_pki_output: $*" >&2; exit 1; }
openssl verify -CAfile root.pem -untrusted intermediate.pem server.pem client.pem >/dev/null \
  || fail "openssl verify rejects server.pem/client.pem"
openssl crl -in crl.pem -CAfile intermediate.pem -noout 2>&1 | grep -q "verify OK" \
  || fail "openssl crl does not verify crl.pem"
openssl verify -crl_check -CRLfile crl.pem -CAfile root.pem -untrusted intermediate.pem server.pem >/dev/null \
  || fail "openssl verify -crl_check rejects server.pem"
crl="$(openssl crl -in crl.pem -noout -text)"
grep -q "Key Compromise" <<<"$crl" || fail "the CRL has no Key Compromise entry"
[ "$(grep -c "Serial Number:" <<<"$crl")" = 1 ] || fail "the CRL should list exactly one serial"
server="$(openssl x509 -in server.pem -noout -text)"
grep -q "DNS:server.example.com" <<<"$server" && grep -q "IP Address:127.0.0.1" <<<"$server" \
  || fail "server.pem lacks its SANs"
openssl x509 -in client.pem -noout -text | grep -q "TLS Web Client Authentication" \
  || fail "client.pem is not a TLS client certificate"
for pair in server client; do
  [ "$(openssl x509 -in $pair.pem -noout -pubkey)" = "$(openssl pkey -in $pair.key -pubout)" ] \
    || fail "$pair.key does not match $pair.pem"
  [ "$(stat -c %a $pair.key)" = 600 ] || fail "$pair.key is not mode 0600"
done
[ "$(grep -c "BEGIN CERTIFICATE" chain.pem)" = 2 ] || fail "chain.pem should hold two certificates"
[ "$(head -c "$(wc -c <server.pem)" chain.pem)" = "$(cat server.pem)" ] || fail "chain.pem does not start with server.pem"
echo "check_pki_output: $1 is a verifiable PKI"
