#!/usr/bin/env bash
# Starts the whole platform on this machine: catalog-service, order-service
# and gateway, against the local PostgreSQL (databases created and migrated by
# the services at start), the gateway in development mode (DEV_MODE=true: a
# built-in webhook secret, writes open; see README "Hardening"). Ctrl-C stops
# all three.
#
#   bash deploy/run-local.sh            # debug build (fast to build)
#   PROFILE=release bash deploy/run-local.sh
#
# Ports and settings come from the usual variables (see README, Configuration).
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE="${PROFILE:-dev}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN_DIR="$TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    echo "PostgreSQL is down; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

echo "Building ($PROFILE)..."
cargo build --workspace --bins --profile "$PROFILE"

CATALOG_ADDR="${CATALOG_LISTEN_ADDR:-127.0.0.1:50051}"
ORDER_ADDR="${ORDER_LISTEN_ADDR:-127.0.0.1:50052}"
GATEWAY_ADDR="${GATEWAY_LISTEN_ADDR:-127.0.0.1:8000}"

pids=()
stop_all() {
    trap - INT TERM EXIT
    echo
    echo "Stopping..."
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait || true
}
trap stop_all INT TERM EXIT

# Waits until a TCP port accepts connections (bounded).
wait_for_port() {
    local addr=$1 name=$2
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null && return 0
        sleep 0.2
    done
    echo "$name did not start listening on $addr" >&2
    exit 1
}

LISTEN_ADDR="$CATALOG_ADDR" DATABASE_URL="${CATALOG_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/catalog}" \
    "$BIN_DIR/catalog-service" &
pids+=($!)
wait_for_port "$CATALOG_ADDR" catalog-service

LISTEN_ADDR="$ORDER_ADDR" DATABASE_URL="${ORDER_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/orders}" \
    CATALOG_URL="http://$CATALOG_ADDR" "$BIN_DIR/order-service" &
pids+=($!)
wait_for_port "$ORDER_ADDR" order-service

# Development mode: the gateway runs without a webhook secret or API keys of
# its own (it warns at start); set WEBHOOK_SECRET / API_KEYS to try them.
DEV_MODE="${DEV_MODE:-true}" LISTEN_ADDR="$GATEWAY_ADDR" CATALOG_URL="http://$CATALOG_ADDR" \
    ORDER_URL="http://$ORDER_ADDR" "$BIN_DIR/gateway" &
pids+=($!)
wait_for_port "$GATEWAY_ADDR" gateway

cat <<MSG

The platform is up:
  REST API      http://$GATEWAY_ADDR/api/products
  Swagger UI    http://$GATEWAY_ADDR/docs
  ReDoc         http://$GATEWAY_ADDR/redoc
  OpenAPI       http://$GATEWAY_ADDR/openapi.json
  gRPC          catalog $CATALOG_ADDR, order $ORDER_ADDR
Press Ctrl-C to stop all three.
MSG
# Exit (and stop the others) as soon as any one of them dies.
wait -n
