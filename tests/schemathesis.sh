#!/usr/bin/env bash
# Schemathesis (PyPI) against the gateway's own /openapi.json: generated
# requests for every documented operation, checking that none gets a 5xx and
# that every response (status, content type, headers, body) is the one the
# document describes.
#
# Runs the already-built debug binaries (`cargo build --workspace --bins`)
# against PostgreSQL (TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432),
# each service on a fresh database `t_schema_<random>_{catalog,orders}`, on free
# ports, with access control on (API_KEYS; schemathesis sends a key with every
# right). Seeds a few products and an order, runs schemathesis, stops the
# platform, drops the databases. Exits non-zero on any failure.
#
#   bash tests/schemathesis.sh                 # from anywhere
#   MAX_EXAMPLES=200 bash tests/schemathesis.sh
#   MIN_REQUESTS=1 bash tests/schemathesis.sh --include-path /api/orders --report har
#                                              # extra arguments go to `schemathesis run`
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES="${MAX_EXAMPLES:-100}"
CHECKS="${CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,missing_required_header,unsupported_method,ignored_auth}"
# At least this many requests, or the run counts as failed: a run that
# sends too few has checked too little.
MIN_REQUESTS="${MIN_REQUESTS:-1000}"
PG="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
BIN=target/debug

work="$(mktemp -d)"
# The live platform: start, readiness, stop, clean-up (shared with the
# browser check).
source deploy/live-platform.sh
trap platform_cleanup EXIT

# schemathesis from PyPI, into a virtual environment of its own (Debian's
# Python refuses a plain `pip install`: PEP 668); its venv module comes in
# python3-venv.
venv=target/py/schemathesis
if ! "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
    log "installing schemathesis (pip, into $venv)"
    rm -rf "$venv"
    python3 -m venv "$venv" >/dev/null 2>&1 || {
        rm -rf "$venv"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        python3 -m venv "$venv"
    }
    "$venv/bin/pip" install -q "schemathesis>=4.32,<5"
fi
export PATH="$PWD/$venv/bin:$PATH"

platform_databases schema
api_key="schemathesis-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

# HTTP without curl (not on every machine): prints the status, then the body.
http() {
    python3 - "$@" <<'EOF'
import sys, urllib.request, urllib.error
method, url, key = sys.argv[1], sys.argv[2], sys.argv[3]
body = sys.argv[4].encode() if len(sys.argv) > 4 else None
request = urllib.request.Request(url, data=body, method=method)
request.add_header("Content-Type", "application/json")
request.add_header("Authorization", "Bearer " + key)
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(response.status); print(response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code); print(error.read().decode())
except Exception as error:
    print(0); print(error)
EOF
}

start_platform_retrying \
    WEBHOOK_SECRET="schemathesis-webhook-secret-3f786850e387550fdab836ed7e6dc881" \
    API_KEYS="schemathesis=$api_key:products,orders"

log "seeding products and an order"
product_id=""
for product in '{"name":"Laptop","description":"14-inch","price":"999.99","quantity":1000}' \
               '{"name":"Mouse","price":19.9,"quantity":1000}' \
               '{"name":"Sold out","description":null,"price":"5","quantity":0}'; do
    reply="$(http POST "$base/api/products" "$api_key" "$product")"
    [ "$(head -n1 <<<"$reply")" = 201 ] || { echo "seeding failed: $reply" >&2; exit 1; }
    [ -n "$product_id" ] || product_id="$(tail -n +2 <<<"$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
done
reply="$(http POST "$base/api/orders" "$api_key" "{\"customer_id\":1,\"products\":[{\"product_id\":\"$product_id\",\"quantity\":1}]}")"
[ "$(head -n1 <<<"$reply")" = 201 ] || { echo "seeding failed: $reply" >&2; exit 1; }

log "schemathesis $(schemathesis --version | awk '{print $NF}'): up to $MAX_EXAMPLES examples per operation"
set +e
# From the scratch directory: schemathesis and hypothesis leave caches in the
# working directory.
(cd "$work" && schemathesis run "$base/openapi.json" \
    --checks "$CHECKS" \
    --header "Authorization: Bearer $api_key" \
    --max-examples "$MAX_EXAMPLES" \
    --phases examples,coverage,fuzzing \
    --workers 1 \
    --request-timeout 20 \
    --generation-database none \
    --seed "${SCHEMATHESIS_SEED:-7}" \
    --no-color \
    --output-sanitize true \
    "$@") \
    2>&1 | tee "$work/schemathesis.out"
status=${PIPESTATUS[0]}
set -e

# One generated test case is one request.
requests="$(sed -n 's/^ *\([0-9][0-9]*\) generated.*/\1/p' "$work/schemathesis.out" | tail -n1)"
log "schemathesis exit status $status, ${requests:-no} test cases"
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
if [ "${requests:-0}" -lt "$MIN_REQUESTS" ]; then
    echo "only ${requests:-0} requests, fewer than $MIN_REQUESTS" >&2
    exit 1
fi
echo "schemathesis passed: $requests requests, no server error, every response as documented"
