#!/usr/bin/env bash
# Makes the certificates for mutual TLS between the platform's processes: a
# local CA and one ECDSA P-256 certificate per process, signed by it.
#
#   bash deploy/tls/make-certs.sh              # into deploy/tls/out/ (git-ignored)
#   bash deploy/tls/make-certs.sh /some/dir    # anywhere else
#
# Writes, into the directory:
#   ca.pem, ca.key                        the CA (ca.key signs; keep it off servers)
#   catalog-service.pem, .key             server certificate, also usable as a
#   order-service.pem, .key               client certificate (the order service
#                                         calls the catalog; each service's
#                                         `--probe` presents its own)
#   gateway.pem, .key                     client certificate only
#
# Server certificates name the service (compose / Kubernetes Service name, and
# its <name>.<namespace>, .svc, .svc.cluster.local forms for K8S_NAMESPACE,
# default "ecommerce") and localhost, 127.0.0.1, ::1 (for `--probe` and local
# runs). Every certificate has subject CN = the process name.
#
# Settings (environment): CERT_DAYS (default 825) for the process
# certificates, CA_DAYS (default 3650), K8S_NAMESPACE (default ecommerce).
# An existing ca.pem + ca.key in the directory is kept, so re-running renews
# the process certificates without a new CA to distribute; delete the
# directory for a new CA.
#
# Permissions: the directory is 0700 (only you reach the keys on this
# machine); inside it keys are 0644, because docker compose bind-mounts them
# as they are and the containers run as uid 10001, not as you. Kubernetes
# Secrets are mounted with their own mode (see deploy/k8s/base).
set -euo pipefail

OUT="${1:-$(dirname "$0")/out}"
CERT_DAYS="${CERT_DAYS:-825}"
CA_DAYS="${CA_DAYS:-3650}"
NAMESPACE="${K8S_NAMESPACE:-ecommerce}"

command -v openssl >/dev/null || { echo "openssl is needed" >&2; exit 1; }
mkdir -p "$OUT"
chmod 700 "$OUT"
cd "$OUT"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

if [ -s ca.pem ] && [ -s ca.key ]; then
    echo "keeping the CA in $OUT (ca.pem)"
else
    new_key ca.key
    cat >"$work/ca.ext" <<EOF
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    openssl req -new -x509 -key ca.key -sha256 -days "$CA_DAYS" \
        -subj "/O=ecommerce platform/CN=ecommerce internal CA" \
        -extensions v3_ca -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\n'; cat "$work/ca.ext") \
        -out ca.pem
    echo "new CA: $OUT/ca.pem"
fi

# issue NAME USAGES [server]: NAME.pem / NAME.key signed by the CA.
issue() {
    local name=$1 usages=$2 server=${3:-}
    local sans="DNS:$name"
    if [ -n "$server" ]; then
        sans="$sans,DNS:$name.$NAMESPACE,DNS:$name.$NAMESPACE.svc,DNS:$name.$NAMESPACE.svc.cluster.local"
        sans="$sans,DNS:localhost,IP:127.0.0.1,IP:::1"
    fi
    new_key "$name.key"
    openssl req -new -key "$name.key" -subj "/O=ecommerce platform/CN=$name" -out "$work/$name.csr"
    cat >"$work/$name.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = $usages
subjectAltName = $sans
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    openssl x509 -req -in "$work/$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -CAserial "$work/ca.srl" -sha256 -days "$CERT_DAYS" -extfile "$work/$name.ext" \
        -out "$name.pem" 2>/dev/null
    openssl verify -CAfile ca.pem "$name.pem" >/dev/null
    echo "issued $OUT/$name.pem ($usages; $sans)"
}

issue catalog-service serverAuth,clientAuth server
issue order-service serverAuth,clientAuth server
issue gateway clientAuth

chmod 600 ca.key
chmod 644 ca.pem catalog-service.pem order-service.pem gateway.pem \
    catalog-service.key order-service.key gateway.key
