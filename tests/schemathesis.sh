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

log() { printf '== %s\n' "$*"; }

for binary in catalog-service order-service gateway; do
    if [ ! -x "$BIN/$binary" ]; then
        echo "missing $BIN/$binary: run cargo build --workspace --bins first" >&2
        exit 1
    fi
done
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

work="$(mktemp -d)"
suffix="$(python3 -c 'import uuid; print(uuid.uuid4().hex[:16])')"
catalog_db="t_schema_${suffix}_catalog"
order_db="t_schema_${suffix}_orders"
api_key="schemathesis-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
pids=()

cleanup() {
    local status=$?
    stop_platform
    if command -v psql >/dev/null; then
        for db in "$catalog_db" "$order_db"; do
            psql "$PG/postgres" -qAtc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
        done
    fi
    if [ "$status" -ne 0 ]; then
        for file in "$work"/*.log; do
            echo "---- $(basename "$file"): panics, errors, last lines"
            grep -A2 -m3 'panicked' "$file" || true
            grep -m10 '"level":"ERROR"' "$file" || true
            tail -n 5 "$file"
        done
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

export RUST_LOG=warn LOG_FORMAT=json ADMIN_ADDR=127.0.0.1:0 SHUTDOWN_GRACE=2s
# Starts the three services on free ports. The ports are free when picked,
# but another process may take one before a service binds it: the caller
# retries.
start_platform() {
    read -r catalog_port order_port gateway_port < <(python3 - <<'EOF'
import socket
sockets = [socket.socket() for _ in range(3)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
EOF
)
    base="http://127.0.0.1:${gateway_port}"
    log "starting the platform (gateway on $base)"
    DATABASE_URL="$PG/$catalog_db" LISTEN_ADDR="127.0.0.1:$catalog_port" \
        "$BIN/catalog-service" >"$work/catalog.log" 2>&1 &
    pids+=($!)
    DATABASE_URL="$PG/$order_db" LISTEN_ADDR="127.0.0.1:$order_port" \
        CATALOG_URL="http://127.0.0.1:$catalog_port" \
        "$BIN/order-service" >"$work/order.log" 2>&1 &
    pids+=($!)
    LISTEN_ADDR="127.0.0.1:$gateway_port" \
        CATALOG_URL="http://127.0.0.1:$catalog_port" ORDER_URL="http://127.0.0.1:$order_port" \
        WEBHOOK_SECRET="schemathesis-webhook-secret-3f786850e387550fdab836ed7e6dc881" API_KEYS="schemathesis=$api_key:products,orders" \
        "$BIN/gateway" >"$work/gateway.log" 2>&1 &
    pids+=($!)
}

stop_platform() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}

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

status_of() { local reply; reply="$(http "$@")"; echo "${reply%%$'\n'*}"; }
# Waits until /ready says both services are up (a 200 alone only says the
# gateway serves: it stays ready while a backend is down, and reports each
# in `backends`); fails as soon as a service has exited.
all_up() {
    local reply; reply="$(http GET "$base/ready" "$api_key")"
    [ "${reply%%$'\n'*}" = 200 ] || return 1
    python3 -c 'import json, sys; states = json.loads(sys.argv[1]).get("backends", {}).values(); sys.exit(0 if states and all(s == "up" for s in states) else 1)' "${reply#*$'\n'}"
}
wait_ready() {
    for _ in $(seq 1 120); do
        all_up && return 0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null || { echo "a service exited during start-up" >&2; return 1; }
        done
        sleep 0.5
    done
    echo "the platform never became ready" >&2
    return 1
}

for attempt in 1 2 3; do
    start_platform
    wait_ready && break
    stop_platform
    [ "$attempt" -lt 3 ] || { echo "the platform did not start" >&2; exit 1; }
done

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
