#!/usr/bin/env python3
"""The platform's load benchmark; `deploy/bench/run.sh` is the documented entry.

Starts catalog-service, order-service and gateway from target/release on
fresh databases, seeds products through the public API, then for every
scenario and concurrency runs wrk (Lua scripts in wrk/) and, where one
applies, the pgbench ceiling at the same concurrency and for the same time
right before it. Prints one line per scenario and concurrency (with the CPU
time each service process spent per request during the wrk run), then, once the
order service's reconciler has had its pass over what the load left, the
invariant check (per product: no unit of stock lost or oversold; orders and
reservations agree) and the count of "transaction in progress" notices in
each service's log, and each process's peak RSS; writes results.json and
chart.svg. Exits non-zero, after printing everything, on any violation or
notice.

--cut-clients runs, instead of the scenarios, the check that cut clients
leave no pooled connection inside a transaction: 10 rounds of two wrk runs
at 64 connections (product lists and orders) killed with SIGKILL mid-flight,
then the same invariant and notice count; writes cut-clients.json.

Only 127.0.0.1 is ever driven.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent.parent
WRK_DIR = BENCH_DIR / "wrk"
PGBENCH_DIR = BENCH_DIR / "pgbench"

WEBHOOK_SECRET = "bench-webhook-secret-8f14e45fceea167a5a36dedd4bea2543"
SPREAD_PRODUCTS = 1000
SPREAD_STOCK = 1_000_000
HOT_STOCK = 100_000_000
PRICE = "9.99"

# The list ceiling's parameters, as the catalog binds them for
# GET /api/products?page=1&page_size=20 (see pgbench/list.sql): the count's
# cap (PageRequest::count_cap() + 1 at the default MAX_LIST_OFFSET, 10,000,
# and MAX_PAGE_SIZE, 100; a --env MAX_LIST_OFFSET would not move it), the
# page's size and offset.
LIST_COUNT_LIMIT = 10_000 + 100 + 1
LIST_PAGE_SIZE = 20
LIST_OFFSET = 0

# How many pending orders the webhook ceiling pays from (pgbench/
# webhook_orders.sql): one per transaction of a measurement, with room for
# several times this machine's rate at 64 clients for 10 s (~3.6k/s at 16).
WEBHOOK_CEILING_ORDERS = 200_000

# What the services run with beside their defaults. Pool size made no
# measurable difference between 4 and 16 connections per service on this
# 2-core machine (the reservation and order writes are group-committed), and 8
# leaves room under PostgreSQL's max_connections (100) for pgbench's 64
# clients. The order service's reconciler runs every second and treats an
# order as abandoned after 7 s (defaults: 30 s and 60 s), so the invariant can
# be judged soon after the load stops, once it has released what the load
# left mid-saga; 7 s because the grace must exceed the longest saga, two
# catalog deadlines (GRPC_TIMEOUT, 3 s), or the reconciler would reject
# live orders. Only the order service reads these two. --env overrides or
# adds settings.
SERVICE_ENV = {"DB_MAX_CONNECTIONS": "8", "RECONCILE_INTERVAL": "1s", "RESERVING_GRACE": "7s"}

# After the reconciler's wait, how much longer the orders may take to settle
# (nothing `reserving`, outbox empty) before that counts as a violation.
SETTLE_TIMEOUT_S = 60

# How many products, and orders of each kind of disagreement, a violated
# invariant names (beside their count).
SHOWN = 20

# PostgreSQL's "there is already a transaction in progress" and "there is no
# transaction in progress": sqlx logs these notices at WARN (kept by the
# services' RUST_LOG=warn) when a pooled connection was handed out, or
# returned, still inside a transaction.
NOTICE = "transaction in progress"

# --cut-clients: rounds, when wrk is killed, and what it drives (at once).
CUT_ROUNDS = 10
CUT_AFTER_S = 1.3
CUT_CONNECTIONS = 64
CUT_SCENARIOS = ["list_products", "order_spread"]


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    script: str
    # Which pgbench ceiling the figure is compared with (None: no ratio).
    ceiling: str | None
    creates_orders: bool


SCENARIOS = [
    Scenario("get_product", "GET /api/products/{id}", "get_product.lua", "select", False),
    Scenario("list_products", "GET /api/products?page_size=20", "list_products.lua", "list", False),
    Scenario("order_spread", "POST /api/orders 1 unit, spread", "order_spread.lua", "order_spread", True),
    Scenario("order_five_lines", "POST /api/orders 5 lines", "order_five_lines.lua", None, True),
    Scenario("order_hot", "POST /api/orders 1 unit, hot row", "order_hot.lua", "order_hot", True),
    Scenario("webhook", "POST /api/payment-webhook (signed)", "webhook.lua", "webhook", False),
    Scenario("mix", "mix 80% read/15% order/5% cancel", "mix.lua", None, True),
]
BY_KEY = {s.key: s for s in SCENARIOS}

CEILING_TITLES = {
    "select": "pgbench -S",
    "order_spread": "order SQL, spread",
    "order_hot": "order SQL, hot row",
    "list": "list SQL",
    "webhook": "webhook SQL",
}

# How the per-scenario line names the processes in its CPU per request.
CPU_NAMES = {"gateway": "gw", "order-service": "order", "catalog-service": "catalog"}


def log(message: str) -> None:
    print(f"-- {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- PostgreSQL


class Postgres:
    """psql against the benchmark's server (admin statements and checks)."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")

    def url(self, database: str) -> str:
        return f"{self.base_url}/{database}"

    def psql(self, database: str, sql: str, *extra: str) -> str:
        out = subprocess.run(
            ["psql", self.url(database), "-v", "ON_ERROR_STOP=1", "-Atq", *extra, "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def rows(self, database: str, sql: str) -> list[list[str]]:
        text = self.psql(database, sql, "-F", "\t")
        return [line.split("\t") for line in text.splitlines() if line]

    def recreate(self, database: str) -> None:
        self.psql("postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        self.psql("postgres", f'CREATE DATABASE "{database}"')

    def checkpoint(self) -> None:
        # Each measurement starts without a pending checkpoint's I/O.
        self.psql("postgres", "CHECKPOINT")

    def vacuum(self, *databases: str) -> None:
        """VACUUM ANALYZE, standing in for autovacuum when it is off (fresh
        statistics also make PostgreSQL re-plan cached statements, which it
        otherwise keeps as planned on the first, nearly empty tables)."""
        for database in databases:
            self.psql(database, "VACUUM ANALYZE")

    def autovacuum_on(self) -> bool:
        return self.psql("postgres", "SHOW autovacuum") == "on"


# ------------------------------------------------------------------ platform


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def peak_rss_kib(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def cpu_seconds(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks = os.sysconf("SC_CLK_TCK")
            return (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            return None


@dataclass
class Platform:
    gateway_port: int
    processes: list[Process] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.popen.poll() is None:
                proc.popen.terminate()
        for proc in self.processes:
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.popen.kill()

    def cpu_seconds(self) -> dict[str, float | None]:
        """Each process's CPU time so far (user + system, all its threads)."""
        return {p.name: p.cpu_seconds() for p in self.processes}


def cpu_per_request(before: dict[str, float | None], after: dict[str, float | None],
                    requests: int) -> dict[str, float | None]:
    """CPU milliseconds each process spent per request between two readings
    (around one wrk run). It includes what a process does beside requests in
    that time (the reconciler's passes, health checks, the change feed): small
    next to thousands of requests a second, and part of the cost anyway. The
    kernel counts in clock ticks (10 ms at the usual 100 Hz), a fraction of a
    per cent of the seconds a run takes."""
    return {
        name: round((after[name] - start) * 1000 / requests, 4)
        if start is not None and after.get(name) is not None and requests else None
        for name, start in before.items()
    }


def seconds(duration: str) -> float:
    """A duration setting's value (`7s`, `500ms`, `2m`) in seconds."""
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if duration.endswith(suffix) and duration[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(duration[: -len(suffix)]) * factor
    raise ValueError(f"not a duration with a unit: {duration!r}")


def start_platform(pg: Postgres, bin_dir: Path, log_dir: Path, env_extra: dict[str, str]) -> Platform:
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = {
        name: free_port()
        for name in ["catalog", "catalog_admin", "order", "order_admin", "gateway", "gateway_admin"]
    }
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    base_env.update({"RUST_LOG": "warn", "HEALTH_CHECK_INTERVAL": "2s"})
    base_env.update(env_extra)
    specs = [
        (
            "catalog-service",
            {
                "DATABASE_URL": pg.url("bench_catalog"),
                "LISTEN_ADDR": f"127.0.0.1:{ports['catalog']}",
                "ADMIN_ADDR": f"127.0.0.1:{ports['catalog_admin']}",
            },
            ports["catalog"],
        ),
        (
            "order-service",
            {
                "DATABASE_URL": pg.url("bench_orders"),
                "LISTEN_ADDR": f"127.0.0.1:{ports['order']}",
                "ADMIN_ADDR": f"127.0.0.1:{ports['order_admin']}",
                "CATALOG_URL": f"http://127.0.0.1:{ports['catalog']}",
            },
            ports["order"],
        ),
        (
            "gateway",
            {
                "LISTEN_ADDR": f"127.0.0.1:{ports['gateway']}",
                "ADMIN_ADDR": f"127.0.0.1:{ports['gateway_admin']}",
                "CATALOG_URL": f"http://127.0.0.1:{ports['catalog']}",
                "ORDER_URL": f"http://127.0.0.1:{ports['order']}",
                "WEBHOOK_SECRET": WEBHOOK_SECRET,
                # The benchmark measures the contract's open writes, as a
                # production gateway serves them only when told to.
                "OPEN_WRITES": "true",
            },
            ports["gateway"],
        ),
    ]
    platform_ = Platform(gateway_port=ports["gateway"])
    for name, env, port in specs:
        log_path = log_dir / f"{name}.log"
        popen = subprocess.Popen(
            [str(bin_dir / name)],
            env={**base_env, **env},
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        platform_.processes.append(Process(name, popen, log_path))
        wait_for_port(port, name, popen, log_path)
    wait_until_ready(platform_.gateway_port)
    return platform_


def wait_for_port(port: int, name: str, popen: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            sys.exit(f"{name} exited with {popen.returncode}; see {log_path}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"{name} did not listen on {port} within 60 s; see {log_path}")


def wait_until_ready(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            # A 200 alone only says the gateway serves (it stays ready while
            # a backend is down); the body reports each backend.
            status, body = http_json(port, "GET", "/ready")
            backends = (body or {}).get("backends", {}) if isinstance(body, dict) else {}
            if status == 200 and backends and all(state == "up" for state in backends.values()):
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("the gateway did not become ready within 60 s")


def http_json(port: int, method: str, path: str, body: object | None = None, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    payload = None if body is None else json.dumps(body)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if own:
        conn.close()
    return response.status, (json.loads(data) if data else None)


# ------------------------------------------------------------------ seeding


@dataclass
class Seed:
    spread: list[str]
    hot: str
    initial_stock: dict[str, int]


def seed(port: int) -> Seed:
    """1,000 spread products and one hot product, through the public API."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    spread: list[str] = []
    initial: dict[str, int] = {}
    for i in range(SPREAD_PRODUCTS + 1):
        hot = i == SPREAD_PRODUCTS
        quantity = HOT_STOCK if hot else SPREAD_STOCK
        status, product = http_json(
            port,
            "POST",
            "/api/products",
            {
                "name": "Hot product" if hot else f"Product {i + 1}",
                "description": "seeded by deploy/bench",
                "price": PRICE,
                "quantity": quantity,
            },
            conn,
        )
        if status != 201:
            sys.exit(f"seeding failed: POST /api/products answered {status}: {product}")
        initial[product["id"]] = quantity
        if not hot:
            spread.append(product["id"])
    conn.close()
    return Seed(spread=spread, hot=product["id"], initial_stock=initial)


def seed_platform(port: int, data_dir: Path) -> Seed:
    """Seeds the products, writes the data files the wrk scripts read, and
    places a few orders to start from, so the webhook and mix scenarios have
    pending orders even when run alone."""
    log("seeding 1,000 products and a hot one through POST /api/products")
    seed_ = seed(port)
    (data_dir / "products.txt").write_text("\n".join(seed_.spread) + "\n")
    (data_dir / "hot.txt").write_text(seed_.hot + "\n")
    for pid in random.sample(seed_.spread, 50):
        http_json(port, "POST", "/api/orders", {"customer_id": 1, "products": [{"product_id": pid, "quantity": 1}]})
    return seed_


def write_pending_orders(pg: Postgres, path: Path, limit: int, kind: str) -> int:
    """A file of pending orders for the webhook and cancel scenarios."""
    ids = [row[0] for row in pg.rows(
        "bench_orders",
        "SELECT id FROM orders WHERE status = 'pending' AND payment_status = 'unpaid' "
        f"ORDER BY random() LIMIT {int(limit)}",
    )]
    with path.open("w") as out:
        for order_id in ids:
            if kind == "webhook":
                body = json.dumps({"order_id": order_id, "payment_status": "paid"})
                sig = hmac.new(WEBHOOK_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
                out.write(f"{sig} {body}\n")
            else:
                out.write(f"{order_id}\n")
    return len(ids)


def prepare_data(pg: Postgres, scenario: Scenario, data_dir: Path) -> None:
    """Fresh pending orders for the scenarios that act on existing orders, so
    each run's webhooks and cancels are real transitions, not repeats."""
    if scenario.key == "webhook":
        write_pending_orders(pg, data_dir / "webhooks.txt", 200_000, "webhook")
    elif scenario.key == "mix":
        write_pending_orders(pg, data_dir / "cancels.txt", 200_000, "cancel")


# ---------------------------------------------------------------- measuring


@dataclass
class Measured:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    s5xx: int
    requests: int
    detail: dict


def wrk_command(port: int, scenario: Scenario, connections: int, seconds: int,
                data_dir: Path) -> tuple[list[str], dict[str, str]]:
    threads = 1 if connections == 1 else 2
    env = {
        **os.environ,
        "BENCH_WRK": str(WRK_DIR),
        "BENCH_DATA": str(data_dir),
        "BENCH_THREADS": str(threads),
    }
    cmd = [
        "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
        "--timeout", "10s", "-s", str(WRK_DIR / scenario.script), f"http://127.0.0.1:{port}",
    ]
    return cmd, env


def run_wrk(port: int, scenario: Scenario, connections: int, seconds: int, data_dir: Path) -> Measured:
    cmd, env = wrk_command(port, scenario, connections, seconds, data_dir)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH_RESULT ")), None)
    if out.returncode != 0 or line is None:
        sys.exit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    r = json.loads(line.removeprefix("BENCH_RESULT "))
    socket_errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    return Measured(
        rps=r["requests"] / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        non_2xx=r["s4xx"] + r["s5xx"] + r["sother"] + socket_errors,
        s5xx=r["s5xx"],
        requests=r["requests"],
        detail=r,
    )


class Ceilings:
    """pgbench on a scratch database shaped like ours."""

    def __init__(self, pg: Postgres, pgbench: str):
        self.pg = pg
        self.pgbench = pgbench
        self.database = "bench_ceiling"

    def prepare(self) -> None:
        self.webhook_orders = False
        self.pg.recreate(self.database)
        subprocess.run(
            ["psql", self.pg.url(self.database), "-v", "ON_ERROR_STOP=1", "-q",
             "-v", f"products={SPREAD_PRODUCTS}", "-v", f"hot_stock={HOT_STOCK}",
             "-f", str(PGBENCH_DIR / "schema.sql")],
            check=True, capture_output=True, text=True,
        )
        # pgbench's own tables for -S (scale 1: 100,000 accounts).
        subprocess.run(
            [self.pgbench, "-i", "-q", "-s", "1", self.pg.url(self.database)],
            check=True, capture_output=True, text=True,
        )

    def ready(self, kind: str) -> None:
        """What a measurement of `kind` needs beforehand (outside its time, and
        before the VACUUM standing in for autovacuum): the webhook ceiling's
        orders pending and unpaid again, made on its first measurement (not in
        prepare(), so the order ceilings measured before it insert into tables
        as small as the order service's are then)."""
        if kind != "webhook":
            return
        subprocess.run(
            ["psql", self.pg.url(self.database), "-v", "ON_ERROR_STOP=1", "-q",
             "-v", f"orders={WEBHOOK_CEILING_ORDERS}", "-v", f"seed={'false' if self.webhook_orders else 'true'}",
             "-f", str(PGBENCH_DIR / "webhook_orders.sql")],
            check=True, capture_output=True, text=True,
        )
        self.webhook_orders = True

    def measure(self, kind: str, connections: int, seconds: int) -> float:
        threads = 1 if connections == 1 else 2
        common = ["-n", "-M", "prepared", "-c", str(connections), "-j", str(threads), "-T", str(seconds)]
        if kind == "select":
            cmd = [self.pgbench, "-S", *common]
        elif kind == "list":
            cmd = [self.pgbench, *common, "-D", f"count_limit={LIST_COUNT_LIMIT}",
                   "-D", f"page_size={LIST_PAGE_SIZE}", "-D", f"offset={LIST_OFFSET}",
                   "-f", str(PGBENCH_DIR / "list.sql")]
        elif kind == "webhook":
            # k: each client's count of its transactions, so that each pays an order of its own.
            cmd = [self.pgbench, *common, "-D", "k=0", "-D", f"clients={connections}",
                   "-D", f"orders={WEBHOOK_CEILING_ORDERS}", "-f", str(PGBENCH_DIR / "webhook.sql")]
        else:
            hot = "1" if kind == "order_hot" else "0"
            cmd = [self.pgbench, *common, "-D", f"hot={hot}", "-D", f"products={SPREAD_PRODUCTS}",
                   "-f", str(PGBENCH_DIR / "order.sql")]
        out = subprocess.run([*cmd, self.pg.url(self.database)], capture_output=True, text=True,
                             timeout=seconds + 60)
        tps = None
        for line in out.stdout.splitlines():
            if line.startswith("tps = "):
                tps = float(line.split()[2])
            elif (kind == "webhook" and line.startswith("number of transactions actually processed:")
                  and int(line.split(":")[1].split("/")[0]) > WEBHOOK_CEILING_ORDERS):
                # Not exact (clients run at different rates), but a run this
                # long has paid some orders twice: those transactions changed nothing.
                log(f"webhook ceiling: more transactions than its {WEBHOOK_CEILING_ORDERS} orders; some"
                    " paid an order already paid (raise WEBHOOK_CEILING_ORDERS)")
        if tps is not None:
            return tps
        hint = ""
        if "too many clients" in out.stderr:
            hint = ("\nPostgreSQL's max_connections is used up (pgbench needs one per client beside the"
                    " services' pools and anything else on this server): wait for a quieter server, or"
                    " run with fewer pooled connections (--env DB_MAX_CONNECTIONS=4).")
        sys.exit(f"pgbench failed ({out.returncode}):\n{out.stdout}\n{out.stderr}{hint}")


# ------------------------------------------------------------- invariants


def settle(pg: Postgres, service_env: dict[str, str], load_stopped: float) -> dict:
    """Waits until the reconciler has had its pass over what the load left,
    then until no order is `reserving` and the outbox is empty (at most
    SETTLE_TIMEOUT_S longer). An order abandoned mid-saga just before the load
    stopped turns stale a grace period later and is released by a pass at
    most an interval after that: grace + 2 intervals leaves a pass to spare."""
    grace = seconds(service_env["RESERVING_GRACE"])
    # The order service's floor (a zero interval would spin).
    interval = max(1.0, seconds(service_env["RECONCILE_INTERVAL"]))
    earliest = load_stopped + grace + 2 * interval
    deadline = earliest + SETTLE_TIMEOUT_S
    log(f"waiting for the reconciler ({grace:g} s grace + 2 x {interval:g} s interval since the load stopped),"
        " then for nothing `reserving` and an empty outbox")
    time.sleep(max(0.0, earliest - time.monotonic()))
    while True:
        reserving = int(pg.psql("bench_orders", "SELECT count(*) FROM orders WHERE status = 'reserving'"))
        outbox = int(pg.psql("bench_orders", "SELECT count(*) FROM outbox"))
        settled = reserving == 0 and outbox == 0
        if settled or time.monotonic() > deadline:
            return {"reserving": reserving, "outbox": outbox, "settled": settled,
                    "settle_s": round(time.monotonic() - load_stopped, 1)}
        time.sleep(0.5)


def offenders(ids: list[str]) -> dict:
    """How many, and the first SHOWN in id order."""
    return {"count": len(ids), "first": sorted(ids)[:SHOWN]}


def invariant(pg: Postgres, initial_stock: dict[str, int], settled: dict) -> dict:
    """Per product, exactly: initial stock = current stock + units in live
    (pending or completed) orders; and every order agrees with its
    reservation (same id) in the catalog: pending with held, completed with
    committed, canceled with released, nothing left `reserving` or in the
    outbox. Only seeding changes stock outside orders, so the initial stock is
    what was seeded (0 for any product the benchmark did not create)."""
    current = {pid: int(q) for pid, q in pg.rows("bench_catalog", "SELECT id, quantity FROM products")}
    live = {
        pid: int(units)
        for pid, units in pg.rows(
            "bench_orders",
            "SELECT i.product_id, sum(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id "
            "WHERE o.status IN ('pending', 'completed') GROUP BY i.product_id",
        )
    }
    # What the catalog itself believes is out: tells a catalog that lost stock
    # on its own from orders and reservations that disagree.
    reserved = {
        pid: int(units)
        for pid, units in pg.rows(
            "bench_catalog",
            "SELECT l.product_id, sum(l.quantity) FROM reservation_lines l "
            "JOIN reservations r ON r.id = l.reservation_id "
            "WHERE r.state IN ('held', 'committed') GROUP BY l.product_id",
        )
    }
    orders = dict(pg.rows("bench_orders", "SELECT id, status FROM orders"))
    reservations = dict(pg.rows("bench_catalog", "SELECT id, state FROM reservations"))
    outbox = [oid for (oid,) in pg.rows("bench_orders", "SELECT reservation_id FROM outbox")]

    def orders_in(status: str, unless: str) -> list[str]:
        return [oid for oid, s in orders.items() if s == status and reservations.get(oid) != unless]

    def reservations_in(state: str, unless: str) -> list[str]:
        return [rid for rid, s in reservations.items() if s == state and orders.get(rid) != unless]

    disagreements = {
        "orders left reserving": [oid for oid, s in orders.items() if s == "reserving"],
        "orders with an undelivered outbox row": outbox,
        "held reservations without a pending order": reservations_in("held", "pending"),
        "pending orders without a held reservation": orders_in("pending", "held"),
        "committed reservations without a completed order": reservations_in("committed", "completed"),
        "completed orders without a committed reservation": orders_in("completed", "committed"),
        "canceled orders whose reservation is not released": orders_in("canceled", "released"),
    }
    offending = set().union(*disagreements.values())

    gaps = {}
    for pid in set(initial_stock) | set(current) | set(live):
        gap = initial_stock.get(pid, 0) - current.get(pid, 0) - live.get(pid, 0)
        if gap:
            gaps[pid] = gap
    bad = sorted(gaps)[:SHOWN]
    # The offending orders with a line of each product shown (order lines or
    # reservation lines: either side may be the one missing).
    touching: dict[str, set[str]] = {pid: set() for pid in bad}
    if bad:
        ids = "'{" + ",".join(bad) + "}'::uuid[]"
        for database, sql in [
            ("bench_orders", f"SELECT order_id, product_id FROM order_items WHERE product_id = ANY({ids})"),
            ("bench_catalog",
             f"SELECT reservation_id, product_id FROM reservation_lines WHERE product_id = ANY({ids})"),
        ]:
            for oid, pid in pg.rows(database, sql):
                touching[pid].add(oid)
    products = [
        {
            "id": pid,
            "initial": initial_stock.get(pid, 0),
            "current": current.get(pid, 0),
            "live_units": live.get(pid, 0),
            "reserved_units": reserved.get(pid, 0),
            "gap": gaps[pid],
            "orders_involved": offenders(list(touching[pid] & offending)),
        }
        for pid in bad
    ]

    lost = sum(g for g in gaps.values() if g > 0)
    oversold = -sum(g for g in gaps.values() if g < 0)
    ok = settled["settled"] and not gaps and not offending
    return {
        "verdict": "OK" if ok else "VIOLATED",
        "initial": sum(initial_stock.values()),
        "current": sum(current.get(pid, 0) for pid in initial_stock),
        "live_units": sum(live.values()),
        "lost": lost,
        "oversold": oversold,
        "orders": dict(Counter(orders.values())),
        "reservations": dict(Counter(reservations.values())),
        **settled,
        "products_off": {"count": len(gaps), "first": products},
        "disagreements": {name: offenders(ids) for name, ids in disagreements.items()},
    }


def invariant_lines(check: dict) -> list[str]:
    """The one-line summary, then, when violated, what and who."""
    lines = [
        f"invariant ({check['verdict']}): initial stock {check['initial']} = current {check['current']}"
        f" + units in live orders {check['live_units']}: {check['lost']} lost, {check['oversold']} oversold"
        f" (orders by status {check['orders']}; catalog reservations {check['reservations']};"
        f" reserving {check['reserving']}, outbox {check['outbox']})"
    ]
    if not check["settled"]:
        lines.append(f"  NOT SETTLED {check['settle_s']} s after the load stopped: orders reserving"
                     f" {check['reserving']}, outbox rows {check['outbox']}")
    off = check["products_off"]
    if off["count"]:
        lines.append(f"  products whose stock does not add up: {off['count']}"
                     + (f" (first {SHOWN})" if off["count"] > SHOWN else ""))
    for p in off["first"]:
        what = f"{p['gap']} lost" if p["gap"] > 0 else f"{-p['gap']} oversold"
        lines.append(
            f"    {p['id']}: initial {p['initial']} != current {p['current']} + in live orders {p['live_units']}:"
            f" {what} (catalog: {p['reserved_units']} units in held/committed reservations);"
            f" offending orders with this product: {listing(p['orders_involved'])}"
        )
    for name, ids in check["disagreements"].items():
        if ids["count"]:
            lines.append(f"  {name}: {listing(ids)}")
    return lines


def listing(ids: dict) -> str:
    if not ids["count"]:
        return "none"
    more = f" (first {len(ids['first'])} of {ids['count']})" if ids["count"] > len(ids["first"]) else ""
    return f"{ids['count']}{more}: " + ", ".join(ids["first"])


def count_notices(processes: list[Process]) -> dict[str, int]:
    counts = {}
    for proc in processes:
        with proc.log_path.open(errors="replace") as lines:
            counts[proc.name] = sum(NOTICE in line for line in lines)
    return counts


def notice_lines(notices: dict[str, int], processes: list[Process]) -> list[str]:
    lines = ["notices: " + ", ".join(f"{name} {n}" for name, n in notices.items())]
    total = sum(notices.values())
    if total:
        logs = ", ".join(str(p.log_path) for p in processes if notices[p.name])
        lines.append(f"!!! {total} log lines carry PostgreSQL's '{NOTICE}' notice: a pooled connection was"
                     f" left inside a transaction (see {logs})")
    return lines


def judge(pg: Postgres, platform_: Platform, seed_: Seed, service_env: dict[str, str],
          load_stopped: float) -> tuple[dict, dict[str, int], list[str]]:
    """Settles, checks the invariant, counts the notices, prints both; returns
    them and what failed."""
    check = invariant(pg, seed_.initial_stock, settle(pg, service_env, load_stopped))
    notices = count_notices(platform_.processes)
    for line in invariant_lines(check) + notice_lines(notices, platform_.processes):
        print(line, flush=True)
    failures = []
    if check["verdict"] != "OK":
        failures.append("the invariant is violated")
    if sum(notices.values()):
        failures.append(f"{sum(notices.values())} '{NOTICE}' notices in the services' logs")
    return check, notices, failures


def verdict(failures: list[str]) -> None:
    """The last line; exits non-zero on any failure."""
    if failures:
        print("verdict: FAILED: " + "; ".join(failures), flush=True)
        sys.exit(1)
    print("verdict: OK", flush=True)


# ------------------------------------------------------------------ cut clients


def cut_clients(port: int, data_dir: Path) -> None:
    """CUT_ROUNDS rounds of wrk on each of CUT_SCENARIOS at once, every wrk
    killed with SIGKILL CUT_AFTER_S into its run: the requests in flight
    (and their database work behind the gateway) are cut at the client."""
    scenarios = [BY_KEY[key] for key in CUT_SCENARIOS]
    print(f"cut clients: {CUT_ROUNDS} rounds of wrk -c {CUT_CONNECTIONS} -t 2 on "
          + " and ".join(s.title for s in scenarios) + f" at once, killed with SIGKILL after {CUT_AFTER_S} s",
          flush=True)
    for round_ in range(1, CUT_ROUNDS + 1):
        running = []
        for scenario in scenarios:
            # Asked for far longer than it is given: it must still be running when cut.
            cmd, env = wrk_command(port, scenario, CUT_CONNECTIONS, 60, data_dir)
            running.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                            text=True))
        time.sleep(CUT_AFTER_S)
        for wrk in running:
            if wrk.poll() is not None:
                sys.exit(f"wrk ended ({wrk.returncode}) before it was cut:\n{wrk.communicate()[1]}")
            wrk.kill()
            wrk.communicate()
        log(f"round {round_}: wrk killed")
        # The next round's connections start after this round's are gone, so
        # each round is a cut of its own.
        time.sleep(0.5)


# ------------------------------------------------------------------ output

HEADER = (
    f"{'scenario':<36} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7} {'5xx':>4}"
    f"  {'ceiling':<19} {'ceil/s':>7} {'ratio':>6}"
)


def format_line(scenario: Scenario, connections: int, m: Measured, ceiling: float | None,
                cpu: dict[str, float | None] | None = None) -> str:
    line = (
        f"{scenario.title:<36} {connections:>5} {m.rps:>8.0f} {m.p50_ms:>7.2f} {m.p99_ms:>7.2f}"
        f" {m.non_2xx:>7} {m.s5xx:>4}"
    )
    if ceiling is not None and scenario.ceiling:
        line += f"  {CEILING_TITLES[scenario.ceiling]:<19} {ceiling:>7.0f} {m.rps / ceiling:>6.2f}"
    else:
        line += f"  {'-':<19} {'-':>7} {'-':>6}"
    if cpu:
        line += "  cpu/req: " + ", ".join(
            f"{short} {cpu[name]:.2f} ms" if cpu[name] is not None else f"{short} ?"
            for name, short in CPU_NAMES.items() if name in cpu)
    return line


def targets(results: list[dict], check: dict, rss: dict) -> list[tuple[str, str, bool]]:
    """The targets that this run's results can judge: (target, measured, met)."""
    by = {(r["scenario"], r["connections"]): r for r in results}
    out = []

    def ratio(scenario: str, conns: int, at_least: float, label: str) -> None:
        r = by.get((scenario, conns))
        if r and r["ratio"] is not None:
            out.append((f"{label} >= {at_least:.2f} x ceiling", f"{r['ratio']:.2f} x", r["ratio"] >= at_least))

    def p99(scenario: str, conns: int, at_most: float, label: str) -> None:
        r = by.get((scenario, conns))
        if r:
            out.append((f"{label} p99 <= {at_most:g} ms", f"{r['p99_ms']:.1f} ms", r["p99_ms"] <= at_most))

    ratio("order_spread", 64, 0.40, "POST /api/orders spread, 64 conns:")
    p99("order_spread", 16, 25, "POST /api/orders spread, 16 conns:")
    ratio("order_hot", 64, 1.5, "POST /api/orders hot row, 64 conns:")
    ratio("get_product", 64, 0.50, "GET /api/products/{id}, 64 conns:")
    p99("get_product", 64, 15, "GET /api/products/{id}, 64 conns:")
    order_rows = [r for r in results if BY_KEY[r["scenario"]].creates_orders]
    if order_rows:
        s5xx = sum(r["s5xx"] for r in order_rows)
        out.append(("every order scenario: 0 units lost or oversold",
                     f"{check['lost']} lost, {check['oversold']} oversold",
                     check["lost"] == 0 and check["oversold"] == 0))
        out.append(("every order scenario: 0 5xx", f"{s5xx} 5xx", s5xx == 0))
    worst = max((kib for kib in rss.values() if kib), default=0) / 1024
    out.append(("peak RSS of each process <= 64 MiB", f"largest {worst:.1f} MiB", worst <= 64))
    return out


def machine_state() -> dict:
    load = Path("/proc/loadavg").read_text().split()[:3]
    # Builds and test runs of other people on this machine: processes whose
    # executable is cargo, rustc or nextest (not any command line that merely
    # mentions them, e.g. in an environment dump).
    busy = subprocess.run(["pgrep", "-f", "^[^ ]*(cargo|rustc|nextest)"],
                          capture_output=True, text=True).stdout.split()
    return {"loadavg": [float(x) for x in load], "cargo_rustc_nextest_processes": len(busy)}


def git_head() -> str:
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()


def machine_description() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    pg_version = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "postgres_client": pg_version,
    }


# ------------------------------------------------------------------ main


def keep_running(platform_: Platform) -> None:
    log(f"platform left running: http://127.0.0.1:{platform_.gateway_port} (Ctrl-C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def env_overrides(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            sys.exit(f"--env wants NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: one scenario (order_spread) at 16 connections for 5 s")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--scenarios", default=",".join(s.key for s in SCENARIOS),
                        help="comma-separated subset of: " + ", ".join(s.key for s in SCENARIOS))
    parser.add_argument("--connections", default="1,16,64", help="comma-separated (default 1,16,64)")
    parser.add_argument("--no-ceilings", action="store_true", help="skip pgbench")
    parser.add_argument("--no-build", action="store_true", help="(run.sh) use the existing binaries")
    parser.add_argument("--bin-dir", type=Path,
                        help="where the three binaries are (default: target/release; e.g. target/debug for a smoke run)")
    parser.add_argument("--out", type=Path, help="where results.json and chart.svg go "
                        "(default: deploy/bench; --quick: target/bench)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the three services (repeatable), e.g. DB_MAX_CONNECTIONS=8")
    parser.add_argument("--keep", action="store_true", help="leave the platform running at the end (Ctrl-C stops)")
    parser.add_argument("--cut-clients", action="store_true",
                        help=f"instead of the scenarios: {CUT_ROUNDS} rounds of wrk at {CUT_CONNECTIONS} connections on"
                        f" product lists and on orders at once, killed with SIGKILL after {CUT_AFTER_S} s, then the"
                        " invariant and the notice count; fails on any violation or notice; writes"
                        " cut-clients.json (default: to target/bench)")
    parser.add_argument("--chart-only", action="store_true",
                        help="no run: redraw chart.svg from the results.json in --out (default: deploy/bench),"
                        " e.g. after a change to chart.py; run.sh sets up only Python for it")
    args = parser.parse_args()

    if args.chart_only:
        out_dir = args.out or BENCH_DIR
        import chart  # noqa: PLC0415 (next to this script)

        try:
            chart.write(json.loads((out_dir / "results.json").read_text()), out_dir / "chart.svg")
        except ImportError as error:
            # The system Python usually lacks matplotlib; run.sh has a venv with it.
            sys.exit(f"no chart ({error}): bash deploy/bench/run.sh --chart-only runs this with the"
                     " matplotlib of deploy/bench/requirements.txt (in target/bench/venv)")
        log(f"wrote {out_dir / 'chart.svg'} from {out_dir / 'results.json'}")
        return

    if args.quick:
        args.duration = 5
        args.scenarios = "order_spread"
        args.connections = "16"
    scenarios = [BY_KEY[k.strip()] for k in args.scenarios.split(",") if k.strip()]
    connections = [int(c) for c in args.connections.split(",")]
    out_dir = args.out or (REPO / "target" / "bench" if args.quick or args.cut_clients else BENCH_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = REPO / "target" / "bench"
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=work_dir.mkdir(parents=True, exist_ok=True) or work_dir))
    bin_dir = args.bin_dir or Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release"
    pg = Postgres(os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"))
    pgbench = os.environ.get("PGBENCH") or shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"

    for binary in ["catalog-service", "order-service", "gateway"]:
        if not (bin_dir / binary).exists():
            sys.exit(f"{bin_dir / binary} is missing: cargo build --release --workspace --bins")
    service_env = {**SERVICE_ENV, **env_overrides(args.env)}

    started = dt.datetime.now(dt.timezone.utc)
    quiet_before = machine_state()
    log(f"machine before the run: load {quiet_before['loadavg']}, "
        f"{quiet_before['cargo_rustc_nextest_processes']} cargo/rustc/nextest processes")

    log("fresh databases bench_catalog, bench_orders")
    pg.recreate("bench_catalog")
    pg.recreate("bench_orders")
    ceilings = None
    if not args.cut_clients and not args.no_ceilings and any(s.ceiling for s in scenarios):
        log("ceiling database bench_ceiling (pgbench)")
        ceilings = Ceilings(pg, pgbench)
        ceilings.prepare()

    log("services' settings: " + ", ".join(f"{k}={v}" for k, v in service_env.items()))
    platform_ = start_platform(pg, bin_dir, work_dir / "logs", service_env)
    results = []
    try:
        seed_ = seed_platform(platform_.gateway_port, data_dir)
        if args.cut_clients:
            cut_clients(platform_.gateway_port, data_dir)
            check, notices, failures = judge(pg, platform_, seed_, service_env, time.monotonic())
            (out_dir / "cut-clients.json").write_text(json.dumps({
                "started": started.isoformat(timespec="seconds"),
                "git": git_head(),
                "binaries": str(bin_dir),
                "service_env": service_env,
                "rounds": CUT_ROUNDS,
                "cut_after_s": CUT_AFTER_S,
                "connections": CUT_CONNECTIONS,
                "scenarios": CUT_SCENARIOS,
                "invariant": check,
                "notices": notices,
            }, indent=2) + "\n")
            log(f"wrote {out_dir / 'cut-clients.json'}")
            verdict(failures)
            if args.keep:
                keep_running(platform_)
            return

        autovacuum = pg.autovacuum_on()
        if not autovacuum:
            log("autovacuum is off on this server: VACUUM ANALYZE runs before every measurement instead")
        print(HEADER, flush=True)
        for scenario in scenarios:
            # Warm-up: connections, prepared statements, caches.
            prepare_data(pg, scenario, data_dir)
            run_wrk(platform_.gateway_port, scenario, 16, 2, data_dir)
            for c in connections:
                ceiling = None
                if ceilings and scenario.ceiling:
                    ceilings.ready(scenario.ceiling)
                    if not autovacuum:
                        pg.vacuum(ceilings.database)
                    pg.checkpoint()
                    ceiling = ceilings.measure(scenario.ceiling, c, args.duration)
                if not autovacuum:
                    pg.vacuum("bench_catalog", "bench_orders")
                prepare_data(pg, scenario, data_dir)
                pg.checkpoint()
                # Each process's CPU time around the run, per request wrk completed.
                cpu_before = platform_.cpu_seconds()
                measured = run_wrk(platform_.gateway_port, scenario, c, args.duration, data_dir)
                cpu_after = platform_.cpu_seconds()
                cpu = cpu_per_request(cpu_before, cpu_after, measured.requests)
                print(format_line(scenario, c, measured, ceiling, cpu), flush=True)
                results.append({
                    "scenario": scenario.key,
                    "title": scenario.title,
                    "connections": c,
                    "rps": measured.rps,
                    "p50_ms": measured.p50_ms,
                    "p99_ms": measured.p99_ms,
                    "non_2xx": measured.non_2xx,
                    "s5xx": measured.s5xx,
                    "ceiling": scenario.ceiling,
                    "ceiling_rps": ceiling,
                    "ratio": (measured.rps / ceiling) if ceiling else None,
                    "cpu_ms_per_request": cpu,
                    "cpu_seconds_during_run": {
                        name: round(cpu_after[name] - start, 2)
                        if start is not None and cpu_after.get(name) is not None else None
                        for name, start in cpu_before.items()
                    },
                    "wrk": measured.detail,
                })

        check, notices, failures = judge(pg, platform_, seed_, service_env, time.monotonic())
        rss = {p.name: p.peak_rss_kib() for p in platform_.processes}
        cpu = {p.name: p.cpu_seconds() for p in platform_.processes}
        print("peak RSS: " + ", ".join(f"{name} {kib / 1024:.1f} MiB" for name, kib in rss.items() if kib),
              flush=True)
        judged = targets(results, check, rss)
        print("targets:", flush=True)
        for target, measured, met in judged:
            print(f"  {'met    ' if met else 'NOT met'}  {target:<58} {measured}", flush=True)
        quiet_after = machine_state()
        print(f"machine: load before {quiet_before['loadavg']}, after {quiet_after['loadavg']}; "
              f"cargo/rustc/nextest processes before {quiet_before['cargo_rustc_nextest_processes']}, "
              f"after {quiet_after['cargo_rustc_nextest_processes']}", flush=True)
        report = {
            "started": started.isoformat(timespec="seconds"),
            "duration_s": args.duration,
            "machine": machine_description(),
            "quiet_before": quiet_before,
            "quiet_after": quiet_after,
            "git": git_head(),
            "results": results,
            "invariant": check,
            "notices": notices,
            "service_env": service_env,
            "autovacuum": autovacuum,
            "binaries": str(bin_dir),
            "peak_rss_kib": rss,
            "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in judged],
            "cpu_seconds": cpu,
        }
        (out_dir / "results.json").write_text(json.dumps(report, indent=2) + "\n")
        try:
            import chart  # noqa: PLC0415 (next to this script)

            chart.write(report, out_dir / "chart.svg")
            log(f"wrote {out_dir / 'results.json'} and {out_dir / 'chart.svg'}")
        except ImportError as error:
            log(f"no chart ({error}); wrote {out_dir / 'results.json'}")
        if args.quick and any(r["non_2xx"] for r in results):
            failures.append("smoke run: some requests were not answered 2xx")
        verdict(failures)
        if args.keep:
            keep_running(platform_)
    finally:
        platform_.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(BENCH_DIR))
    main()
