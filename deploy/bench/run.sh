#!/usr/bin/env bash
# The load benchmark: builds the release binaries, starts the whole
# platform on fresh databases, seeds it through the public API, drives it with
# wrk, measures the PostgreSQL ceilings with pgbench in the same run, and prints
# one line per scenario and concurrency, then (once the order service's
# reconciler has released what the load left) the invariant check, per product
# and per order, and the count of "transaction in progress" notices in each
# service's log, and peak RSS. Writes results.json and chart.svg next to this
# script (--quick: under target/bench/ instead, so smoke runs leave the tree
# alone). Exits non-zero on any invariant violation or notice.
#
#   bash deploy/bench/run.sh              # full run: 7 scenarios x (1, 16, 64) connections, 10 s each
#   bash deploy/bench/run.sh --quick      # smoke run: one scenario at 16 connections, 5 s
#   bash deploy/bench/run.sh --help       # every option
#   bash deploy/bench/run.sh --quick --no-build --bin-dir target/debug --no-ceilings
#                                         # smoke run on the debug binaries the tests built
#   bash deploy/bench/run.sh --chart-only # no run: redraws chart.svg from results.json
#                                         # (--out DIR: those in DIR); sets up Python only
#   bash deploy/bench/run.sh --cut-clients --no-build --bin-dir target/debug
#       # the check that cut clients leave no pooled connection inside a
#       # transaction: 10 rounds of wrk -c 64 on GET /api/products?page_size=20
#       # and POST /api/orders at once, each killed with SIGKILL after 1.3 s,
#       # then the invariant and the notice count; non-zero exit on any
#       # violation or notice (~40 s; writes target/bench/cut-clients.json)
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres; BENCH_POSTGRES_URL to
# override) and installs what is missing: wrk (apt), pgbench (apt,
# postgresql-15 / postgresql-client), matplotlib (the pinned
# deploy/bench/requirements.txt, pip, into a virtual environment under
# target/bench/venv; python3-venv from apt when Python lacks venv).
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf '== %s\n' "$*" >&2; }

if [[ " $* " == *" --help "* || " $* " == *" -h "* ]]; then
    exec python3 deploy/bench/bench.py --help
fi

apt_install() {
    say "installing $* (apt)"
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

# The chart needs matplotlib, pinned with what it pulls in by
# deploy/bench/requirements.txt; a smoke run and --cut-clients do without it.
# It goes into a virtual environment, never the system Python (Debian's
# refuses a plain `pip install`: PEP 668), whose venv module comes in
# python3-venv. The venv keeps a copy of the requirements it was made from,
# and is made anew when the file changes.
PYTHON=python3
setup_python() {
    local venv=target/bench/venv requirements=deploy/bench/requirements.txt
    if ! cmp -s "$requirements" "$venv/requirements.txt" ||
        ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
        say "installing $requirements (pip, into $venv)"
        rm -rf "$venv"
        python3 -m venv "$venv" >/dev/null 2>&1 ||
            { rm -rf "$venv"; apt_install python3-venv; python3 -m venv "$venv"; }
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            --no-input -r "$requirements"
        cp "$requirements" "$venv/requirements.txt"
    fi
    PYTHON="$venv/bin/python"
}

if [[ " $* " == *" --chart-only "* ]]; then
    setup_python
    exec "$PYTHON" deploy/bench/bench.py "$@"
fi
if [[ " $* " != *" --quick "* && " $* " != *" --cut-clients "* ]]; then
    setup_python
fi

command -v wrk >/dev/null || apt_install wrk
command -v psql >/dev/null || apt_install postgresql-client
PGBENCH="${PGBENCH:-$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n1 || true)}"
if [ -z "$PGBENCH" ] || [ ! -x "$PGBENCH" ]; then
    apt_install postgresql-contrib postgresql-client
    PGBENCH="$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -n1)"
fi
export PGBENCH
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    say "PostgreSQL is down; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

if [[ " $* " != *" --no-build "* ]]; then
    say "building release binaries (cargo build --release --workspace --bins; ~13 min cold)"
    cargo build --release --workspace --bins
fi

exec "$PYTHON" deploy/bench/bench.py "$@"
