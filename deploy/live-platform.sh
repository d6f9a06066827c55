# Sourced, not run: a live platform for checks that drive it from outside
# (tests/schemathesis.sh, .ci/browser-check/run.sh). Starts the three built
# binaries on free loopback ports, each service on a fresh database of its
# own, waits until the gateway reports both services up, and on the way out
# stops them, drops the databases and, on failure, prints what their logs
# say.
#
# The caller sets, before sourcing:
#   BIN      the directory of catalog-service, order-service and gateway
#   PG       the PostgreSQL server URL (no database)
#   work     a scratch directory (logs go there; removed on exit)
# and calls, in order:
#   platform_databases <prefix>   names t_<prefix>_<random>_{catalog,orders}
#   trap platform_cleanup EXIT
#   start_platform_retrying [NAME=value ...]   extra environment of the gateway
# which sets `base` (the gateway's URL) and `pids`.

log() { printf '== %s\n' "$*"; }

for binary in catalog-service order-service gateway; do
    if [ ! -x "$BIN/$binary" ]; then
        echo "missing $BIN/$binary: run cargo build --workspace --bins first" >&2
        exit 1
    fi
done

pids=()
catalog_db=""
order_db=""

platform_databases() {
    local suffix
    suffix="$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
    catalog_db="t_${1}_${suffix}_catalog"
    order_db="t_${1}_${suffix}_orders"
}

stop_platform() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}

# The EXIT trap: stops the services, drops their databases, prints the logs'
# panics, errors and last lines on failure, removes the scratch directory.
platform_cleanup() {
    local status=$?
    stop_platform
    if command -v psql >/dev/null; then
        for db in "$catalog_db" "$order_db"; do
            [ -n "$db" ] || continue
            psql "$PG/postgres" -qAtc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
        done
    fi
    if [ "$status" -ne 0 ]; then
        for file in "$work"/*.log; do
            [ -e "$file" ] || continue
            echo "---- $(basename "$file"): panics, errors, last lines"
            grep -A2 -m3 'panicked' "$file" || true
            grep -m10 '"level":"ERROR"' "$file" || true
            tail -n 5 "$file"
        done
    fi
    rm -rf "$work"
    exit "$status"
}

export RUST_LOG=warn LOG_FORMAT=json ADMIN_ADDR=127.0.0.1:0 SHUTDOWN_GRACE=2s

# Starts the three services on free ports, the gateway with the extra
# environment given. The ports are free when picked, but another process may
# take one before a service binds it: start_platform_retrying retries.
start_platform() {
    read -r catalog_port order_port gateway_port < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(3)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))')
    base="http://127.0.0.1:${gateway_port}"
    log "starting the platform (gateway on $base, databases $catalog_db, $order_db)"
    DATABASE_URL="$PG/$catalog_db" LISTEN_ADDR="127.0.0.1:$catalog_port" \
        "$BIN/catalog-service" >"$work/catalog.log" 2>&1 &
    pids+=($!)
    DATABASE_URL="$PG/$order_db" LISTEN_ADDR="127.0.0.1:$order_port" \
        CATALOG_URL="http://127.0.0.1:$catalog_port" \
        "$BIN/order-service" >"$work/order.log" 2>&1 &
    pids+=($!)
    env "$@" LISTEN_ADDR="127.0.0.1:$gateway_port" \
        CATALOG_URL="http://127.0.0.1:$catalog_port" ORDER_URL="http://127.0.0.1:$order_port" \
        "$BIN/gateway" >"$work/gateway.log" 2>&1 &
    pids+=($!)
}

# Waits until /ready says both services are up (a 200 alone only says the
# gateway serves: it stays ready while a backend is down, and reports each in
# `backends`); fails as soon as a service has exited.
wait_ready() {
    for _ in $(seq 1 120); do
        python3 -c '
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as reply:
        states = json.load(reply).get("backends", {}).values()
        sys.exit(0 if states and all(s == "up" for s in states) else 1)
except Exception:
    sys.exit(1)' "$base/ready" && return 0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null || { echo "a service exited during start-up" >&2; return 1; }
        done
        sleep 0.5
    done
    echo "the platform never became ready" >&2
    return 1
}

start_platform_retrying() {
    local attempt
    for attempt in 1 2 3; do
        start_platform "$@"
        wait_ready && return 0
        stop_platform
    done
    echo "the platform did not start" >&2
    exit 1
}
