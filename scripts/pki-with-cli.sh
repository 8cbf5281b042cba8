#!/usr/bin/env bash
# The PKI of `cargo run --example pki -- OUT_DIR`, made with `clm` commands
# alone: a root and an intermediate CA, a TLS server certificate
# (server.example.com and 127.0.0.1) with its key, a TLS client certificate
# with its key, the chain, and the intermediate's CRL with one revoked
# certificate. Writes into OUT_DIR: root.pem, intermediate.pem, server.pem,
# server.key, client.pem, client.key, chain.pem, crl.pem.
#
#     scripts/pki-with-cli.sh OUT_DIR
#
# `clm` comes from CLM (default: `clm` on PATH, else target/*/debug/clm).
# Data lives in SQLite under OUT_DIR/data unless CLM_SECURE_DATABASE_URL and
# CLM_CORE_DATABASE_URL are set; the master key is OUT_DIR/master.key unless
# CLM_MASTER_KEY_FILE is set. The first run creates the store and an
# administrator (password in OUT_DIR/admin.password, 0600); later runs log in
# again and add a new PKI (names carry a random suffix). Check the result:
#
#     openssl verify -CAfile OUT_DIR/root.pem -untrusted OUT_DIR/intermediate.pem OUT_DIR/server.pem
#     openssl verify -crl_check -CRLfile OUT_DIR/crl.pem -CAfile OUT_DIR/root.pem \
#         -untrusted OUT_DIR/intermediate.pem OUT_DIR/server.pem
set -euo pipefail
out="${1:?usage: scripts/pki-with-cli.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

if [ -z "${CLM:-}" ]; then
  if command -v clm >/dev/null 2>&1; then
    CLM=clm
  else
    root_dir="$(cd "$(dirname "$0")/.." && pwd)"
    CLM="$(ls -t "$root_dir"/target/*/debug/clm "$root_dir"/target/debug/clm 2>/dev/null | head -n1 || true)"
    [ -n "$CLM" ] || { echo "no clm binary: cargo build -p clm-cli, or set CLM" >&2; exit 1; }
  fi
fi

# The session token and the settings belong to this PKI, not to the user.
export CLM_CONFIG_DIR="$out/config"
export CLM_MASTER_KEY_FILE="${CLM_MASTER_KEY_FILE:-$out/master.key}"
unset CLM_MASTER_KEY CLM_API_KEY_FILE CLM_CONFIG
if [ -z "${CLM_SECURE_DATABASE_URL:-}" ] || [ -z "${CLM_CORE_DATABASE_URL:-}" ]; then
  unset CLM_SECURE_DATABASE_URL CLM_CORE_DATABASE_URL
  export CLM_DATA_DIR="$out/data"
fi
clm() { "$CLM" "$@"; }

password_file="$out/admin.password"
if [ ! -e "$CLM_MASTER_KEY_FILE" ]; then
  umask 077
  head -c 24 /dev/urandom | base64 | tr -d '\n' > "$password_file"
  umask 022
  clm init --admin-username pki-admin --admin-email pki-admin@example.com \
    --password-stdin -o json < "$password_file" > /dev/null
  echo "created the store and its administrator pki-admin"
fi
clm login -u pki-admin --password-stdin -o json < "$password_file" > /dev/null

suffix="$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"

root="$(clm ca create-root --cn "Example Root CA $suffix" --org "Example Inc." --country US \
  --key-algorithm ECDSA-P384 --validity-days 3650 --path-len 1 \
  --ca-issuers-url http://pki.example.com/root.crt --crl-url http://pki.example.com/root.crl \
  --get certificate.id)"
echo "root CA       $root"

intermediate="$(clm ca create-intermediate --issuer "$root" \
  --cn "Example Issuing CA $suffix" --org "Example Inc." --country US \
  --key-algorithm ECDSA-P256 --validity-days 1825 --path-len 0 \
  --crl-url http://pki.example.com/issuing.crl --ca-issuers-url http://pki.example.com/issuing.crt \
  --get certificate.id)"
echo "intermediate  $intermediate"

cat > "$out/policy.yaml" <<YAML
policy_code: INTERNAL-TLS-$suffix
name: Internal TLS
rules:
  max_validity_days: 397
  allowed_domains: [example.com]
  allow_subdomains: true
  allowed_ip_ranges: [127.0.0.0/8]
  allowed_algorithms: [ECDSA, RSA]
YAML
clm policy apply "$out/policy.yaml" -o json > /dev/null
policy="INTERNAL-TLS-$suffix"
echo "policy        $policy"

clm cert issue --issuer "$intermediate" --policy "$policy" --kind tls-server --validity-days 90 \
  --cn server.example.com --san DNS:server.example.com --san IP:127.0.0.1 \
  --cert-out "$out/server.pem" --key-out "$out/server.key" --get certificate.serial_number \
  | sed 's/^/server        serial /'
clm cert issue --issuer "$intermediate" --policy "$policy" --kind tls-client --validity-days 90 \
  --cn client.example.com --san DNS:client.example.com \
  --cert-out "$out/client.pem" --key-out "$out/client.key" --get certificate.serial_number \
  | sed 's/^/client        serial /'
retired="$(clm cert issue --issuer "$intermediate" --policy "$policy" --kind tls-server --validity-days 90 \
  --cn retired.example.com --san DNS:retired.example.com --get certificate.id)"
clm cert revoke "$retired" --reason key-compromise --comment "pki-with-cli: a compromised key" -o json > /dev/null
echo "revoked       $retired (key_compromise)"

clm crl generate --issuer "$intermediate" --out "$out/crl.pem" --get 0.entry_count \
  | sed 's/^/CRL           entries: /'
clm cert show "$root" -o pem > "$out/root.pem"
clm cert show "$intermediate" -o pem > "$out/intermediate.pem"
cat "$out/server.pem" "$out/intermediate.pem" > "$out/chain.pem"
clm logout -o json > /dev/null
for name in root.pem intermediate.pem server.pem server.key client.pem client.key chain.pem crl.pem; do
  echo "wrote         $out/$name"
done
