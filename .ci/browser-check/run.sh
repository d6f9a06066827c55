#!/usr/bin/env bash
# The browser check: headless Chromium opens the gateway's /docs (Swagger UI)
# and /redoc (ReDoc) with nothing reachable but loopback, and checks from the
# DOM that every operation of /openapi.json is rendered on each page and that
# Swagger UI's "Try it out" on GET /api/products gets a 200 from the real
# services (check.mjs says exactly what is checked).
#
#   bash .ci/browser-check/run.sh [BIN_DIR]     # BIN_DIR: default target/debug
#
# Builds nothing: takes the directory of the already-built catalog-service,
# order-service and gateway binaries (`cargo build --workspace --bins`).
# Starts the three on free loopback ports, each service on a fresh database
# `t_browser_<random>_{catalog,orders}` (created and migrated by the services
# themselves), the gateway in development mode (DEV_MODE, as
# deploy/run-local.sh: writes open, so the check can seed two products),
# installs puppeteer-core (exact versions from package-lock.json, `npm ci`,
# no browser download) and drives the system Chromium. Stops everything and
# drops the databases on the way out, pass or fail.
#
# Needs node/npm and Chromium (`chromium`, or CHROMIUM=/path/to/chrome);
# .ci/run installs them from Debian when missing. Writes the screenshots to
# BROWSER_CHECK_OUT (default target/browser-check/) and prints where.
# Exits non-zero on any failure, printing the services' last log lines.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

BIN="${1:-target/debug}"
case "$BIN" in /*) ;; *) BIN="$repo/$BIN" ;; esac
OUT="${BROWSER_CHECK_OUT:-${CARGO_TARGET_DIR:-$repo/target}/browser-check}"
case "$OUT" in /*) ;; *) OUT="$repo/$OUT" ;; esac
PG="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"

log() { printf '== %s\n' "$*"; }

for binary in catalog-service order-service gateway; do
    if [ ! -x "$BIN/$binary" ]; then
        echo "missing $BIN/$binary: run cargo build --workspace --bins first" >&2
        exit 1
    fi
done
for tool in node npm psql; do
    command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
[ -n "$CHROMIUM" ] || { echo "no chromium on PATH (apt-get install chromium, or set CHROMIUM)" >&2; exit 1; }

work="$(mktemp -d)"
suffix="$(node -e 'console.log(require("crypto").randomBytes(8).toString("hex"))')"
catalog_db="t_browser_${suffix}_catalog"
order_db="t_browser_${suffix}_orders"
pids=()

stop_platform() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}

cleanup() {
    local status=$?
    stop_platform
    for db in "$catalog_db" "$order_db"; do
        psql "$PG/postgres" -qAtc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
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
trap cleanup EXIT

# Installed first, while nothing runs yet: exact versions from the lockfile,
# into a directory of its own under target/ (not the repository), from the
# npm cache when it has them. puppeteer-core downloads no browser by itself;
# PUPPETEER_SKIP_DOWNLOAD says so to anything that would.
tools="${BROWSER_CHECK_TOOLS_DIR:-$OUT/tools}"
mkdir -p "$tools" "$OUT"
cp "$here/package.json" "$here/package-lock.json" "$tools/"
log "npm ci (puppeteer-core $(node -p 'require(process.argv[1]).dependencies["puppeteer-core"]' "$here/package.json")) into $tools"
PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix "$tools" --no-audit --no-fund --loglevel=error --prefer-offline >/dev/null

export RUST_LOG=warn LOG_FORMAT=json ADMIN_ADDR=127.0.0.1:0 SHUTDOWN_GRACE=2s
# Starts the three services on free ports. The ports are free when picked,
# but another process may take one before a service binds it: the caller
# retries (as tests/schemathesis.sh does).
start_platform() {
    read -r catalog_port order_port gateway_port < <(node -e '
        const net = require("net");
        const servers = [0, 1, 2].map(() => net.createServer());
        Promise.all(servers.map((s) => new Promise((ok) => s.listen(0, "127.0.0.1", ok))))
            .then(() => {
                console.log(servers.map((s) => s.address().port).join(" "));
                servers.forEach((s) => s.close());
            });')
    base="http://127.0.0.1:${gateway_port}"
    log "starting the platform (gateway on $base, databases $catalog_db, $order_db)"
    DATABASE_URL="$PG/$catalog_db" LISTEN_ADDR="127.0.0.1:$catalog_port" \
        "$BIN/catalog-service" >"$work/catalog.log" 2>&1 &
    pids+=($!)
    DATABASE_URL="$PG/$order_db" LISTEN_ADDR="127.0.0.1:$order_port" \
        CATALOG_URL="http://127.0.0.1:$catalog_port" \
        "$BIN/order-service" >"$work/order.log" 2>&1 &
    pids+=($!)
    DEV_MODE=true LISTEN_ADDR="127.0.0.1:$gateway_port" \
        CATALOG_URL="http://127.0.0.1:$catalog_port" ORDER_URL="http://127.0.0.1:$order_port" \
        "$BIN/gateway" >"$work/gateway.log" 2>&1 &
    pids+=($!)
}

# Waits until /ready says both services are up (its body: a 200 alone only
# says the gateway serves; `backends`, or `services` in older gateways);
# fails as soon as one has exited.
wait_ready() {
    for _ in $(seq 1 120); do
        node -e '
            fetch(process.argv[1]).then(async (reply) => {
                const body = await reply.json().catch(() => ({}));
                const states = Object.values(body.backends ?? body.services ?? {});
                const up = states.length > 0 && states.every((s) => s === "up" || s === "SERVING");
                process.exit(reply.status === 200 && up ? 0 : 1);
            }, () => process.exit(1))' "$base/ready" && return 0
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

log "checking /docs and /redoc in $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") (screenshots in $OUT)"
node "$here/check.mjs" --base "$base" --tools "$tools" --chromium "$CHROMIUM" --out "$OUT"
