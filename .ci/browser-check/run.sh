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

for tool in node npm psql python3; do
    command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
[ -n "$CHROMIUM" ] || { echo "no chromium on PATH (apt-get install chromium, or set CHROMIUM)" >&2; exit 1; }

work="$(mktemp -d)"
# The live platform: start, readiness, stop, clean-up (shared with
# tests/schemathesis.sh).
source "$repo/deploy/live-platform.sh"
trap platform_cleanup EXIT
platform_databases browser

# Installed first, while nothing runs yet: exact versions from the lockfile,
# into a directory of its own under target/ (not the repository), from the
# npm cache when it has them. puppeteer-core downloads no browser by itself;
# PUPPETEER_SKIP_DOWNLOAD says so to anything that would.
tools="${BROWSER_CHECK_TOOLS_DIR:-$OUT/tools}"
mkdir -p "$tools" "$OUT"
cp "$here/package.json" "$here/package-lock.json" "$tools/"
log "npm ci (puppeteer-core $(node -p 'require(process.argv[1]).dependencies["puppeteer-core"]' "$here/package.json")) into $tools"
PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix "$tools" --no-audit --no-fund --loglevel=error --prefer-offline >/dev/null

# Development mode, as deploy/run-local.sh: writes open, so the check can
# seed two products.
start_platform_retrying DEV_MODE=true

log "checking /docs and /redoc in $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") (screenshots in $OUT)"
node "$here/check.mjs" --base "$base" --tools "$tools" --chromium "$CHROMIUM" --out "$OUT"
