//! The payment timeout (PENDING_PAYMENT_TIMEOUT), end to end through the
//! gateway on real PostgreSQL: a pending order not paid in time is canceled
//! with `cancel_reason: payment_timeout`, its stock comes back exactly once
//! (through the outbox), a late payment is refused as expired, and each race
//! (expiry against payment, cancel, completion) has exactly one winner.
//!
//! Orders are made old by moving their `created_at` back in the database (a
//! clock the test controls), and the reconciler's pass, which runs the
//! expiry, is run when the test chooses.

use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};
use tests::{
    RunningService,
    catalog::spawn_catalog,
    gateway::{Platform, spawn_gateway},
    order::{OrderHarness, order_config, orders_database, start_order},
};

/// What the example Kubernetes overlay sets.
const TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The platform with the order service's payment timeout set (or not), and
/// its reconciler.
async fn platform(timeout: Option<Duration>) -> (Platform, order_service::Reconciler, String) {
    let catalog = spawn_catalog().await;
    let mut config = order_config(&catalog.url());
    config.pending_payment_timeout = timeout;
    let OrderHarness {
        service,
        reconciler,
        admin_addr,
    } = start_order(config).await;
    let gateway = spawn_gateway(&catalog.url(), &service.url(), |_| {}).await;
    let metrics = format!("http://{admin_addr}/metrics");
    (
        Platform::new(catalog, service, gateway),
        reconciler,
        metrics,
    )
}

/// Moves an order's creation `age` into the past.
async fn age(order: &RunningService, order_id: &str, age: Duration) {
    let mut db = orders_database(order).await;
    sqlx::query("UPDATE orders SET created_at = created_at - $2 WHERE id = $1::uuid")
        .bind(order_id)
        .bind(age)
        .execute(&mut db)
        .await
        .unwrap();
}

async fn outbox_rows(order: &RunningService) -> i64 {
    let mut db = orders_database(order).await;
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&mut db)
        .await
        .unwrap()
}

/// An order of `quantity` units of `product`; its id.
async fn order(p: &Platform, customer: i64, product: &str, quantity: i64) -> String {
    let reply = p.create_order(customer, &[(product, quantity)]).await;
    reply.expect(201);
    reply.json["id"].as_str().unwrap().to_owned()
}

fn payment(order_id: &str, status: &str) -> Value {
    json!({ "order_id": order_id, "payment_status": status })
}

async fn set_status(p: &Platform, order_id: &str, status: &str) -> tests::gateway::Reply {
    p.set_order_status(order_id, status).await
}

#[tokio::test]
async fn an_unpaid_order_expires_its_stock_returns_once_and_a_late_payment_is_refused() {
    let (p, reconciler, metrics) = platform(Some(TIMEOUT)).await;
    let product = p.create_product("Lamp", "10.00", 10).await;
    let product = product["id"].as_str().unwrap();
    let unpaid = order(&p, 1, product, 3).await;
    let young = order(&p, 2, product, 1).await;
    assert_eq!(p.stock_of(product).await, 6);

    // Not old enough yet: nothing happens.
    age(&p.order, &unpaid, TIMEOUT - Duration::from_secs(60)).await;
    assert_eq!(reconciler.reconcile_once().await.unwrap().expired, 0);
    let reply = p.get(&format!("/api/orders/{unpaid}")).await;
    assert_eq!(reply.expect(200).json["status"], "pending");
    assert!(
        reply.json.get("cancel_reason").is_none(),
        "{:?}",
        reply.json
    );

    // Past the timeout: canceled, with its reason; the stock is back.
    age(&p.order, &unpaid, Duration::from_secs(120)).await;
    let report = reconciler.reconcile_once().await.unwrap();
    assert_eq!(report.expired, 1);
    let reply = p.get(&format!("/api/orders/{unpaid}")).await;
    reply.expect(200);
    assert_eq!(reply.json["status"], "canceled");
    assert_eq!(reply.json["cancel_reason"], "payment_timeout");
    assert_eq!(reply.json["payment_status"], "unpaid");
    assert_eq!(p.stock_of(product).await, 9);
    assert_eq!(outbox_rows(&p.order).await, 0, "the release was delivered");
    let young_reply = p.get(&format!("/api/orders/{young}")).await;
    assert_eq!(young_reply.json["status"], "pending");

    // Exactly once: later passes change nothing.
    assert_eq!(reconciler.reconcile_once().await.unwrap().expired, 0);
    assert_eq!(p.stock_of(product).await, 9);

    // A payment that arrives now is refused: the processor must refund it.
    let reply = p.signed_webhook(&payment(&unpaid, "paid")).await;
    let detail = reply.problem(400);
    assert_eq!(
        detail,
        "Order expired: it was canceled because it was not paid in time; the payment must be \
         refunded"
    );
    assert_eq!(reply.json["code"], "ORDER_EXPIRED", "{:?}", reply.json);
    let reply = p.get(&format!("/api/orders/{unpaid}")).await;
    assert_eq!(reply.json["payment_status"], "unpaid");

    // Counted, for the dashboard.
    let expired = tests::metric_sample(
        &tests::gateway::http_client(),
        &metrics,
        "order_expired_orders_total",
    )
    .await;
    assert_eq!(expired, Some(1.0));
}

#[tokio::test]
async fn only_pending_orders_not_paid_expire_and_without_the_setting_none_does() {
    let (p, reconciler, _) = platform(Some(TIMEOUT)).await;
    let product = p.create_product("Lamp", "10.00", 10).await;
    let product = product["id"].as_str().unwrap();
    let paid = order(&p, 1, product, 1).await;
    p.signed_webhook(&payment(&paid, "paid")).await.expect(200);
    let failed = order(&p, 2, product, 1).await;
    p.signed_webhook(&payment(&failed, "failed"))
        .await
        .expect(200);
    let completed = order(&p, 3, product, 1).await;
    set_status(&p, &completed, "completed").await.expect(200);
    for id in [&paid, &failed, &completed] {
        age(&p.order, id, TIMEOUT * 2).await;
    }
    assert_eq!(reconciler.reconcile_once().await.unwrap().expired, 1);
    let status = |reply: tests::gateway::Reply| {
        (
            reply.json["status"].as_str().unwrap().to_owned(),
            reply.json["cancel_reason"].as_str().map(str::to_owned),
        )
    };
    let cases = [
        (&paid, "pending", None),
        (&failed, "canceled", Some("payment_timeout".to_owned())),
        (&completed, "completed", None),
    ];
    for (id, expected_status, expected_reason) in cases {
        let got = status(p.get(&format!("/api/orders/{id}")).await);
        assert_eq!(got, (expected_status.to_owned(), expected_reason), "{id}");
    }

    // Off by default: an old unpaid order stays pending for ever.
    let (p, reconciler, _) = platform(None).await;
    let product = p.create_product("Lamp", "10.00", 10).await;
    let product = product["id"].as_str().unwrap();
    let old = order(&p, 1, product, 1).await;
    age(&p.order, &old, Duration::from_secs(365 * 24 * 3600)).await;
    assert_eq!(reconciler.reconcile_once().await.unwrap().expired, 0);
    let reply = p.get(&format!("/api/orders/{old}")).await;
    assert_eq!(reply.json["status"], "pending");
}

#[tokio::test]
async fn a_requested_cancel_says_so() {
    let (p, _, _) = platform(None).await;
    let product = p.create_product("Lamp", "10.00", 10).await;
    let product = product["id"].as_str().unwrap();
    let id = order(&p, 1, product, 1).await;
    let reply = set_status(&p, &id, "canceled").await;
    reply.expect(200);
    assert_eq!(reply.json["cancel_reason"], "requested");
    let listed = p.get("/api/orders?status=canceled").await;
    assert_eq!(listed.json["items"][0]["cancel_reason"], "requested");
}

/// Orders raced per kind of race, all at once.
const RACED: usize = 12;

/// What each raced order's competing request was.
#[derive(Clone, Copy, Debug)]
enum Rival {
    Payment,
    Cancel,
    Complete,
}

impl Rival {
    async fn send(self, p: &Platform, id: &str) -> tests::gateway::Reply {
        match self {
            Rival::Payment => p.signed_webhook(&payment(id, "paid")).await,
            Rival::Cancel => set_status(p, id, "canceled").await,
            Rival::Complete => set_status(p, id, "completed").await,
        }
    }
}

/// Checks that exactly one of the expiry and `rival` took effect on order
/// `id`, given the rival's `reply`; whether the expiry won.
async fn one_winner(p: &Platform, id: &str, reply: &tests::gateway::Reply, rival: Rival) -> bool {
    let order = p.get(&format!("/api/orders/{id}")).await;
    let (status, reason, paid) = (
        order.json["status"].as_str().unwrap(),
        order.json["cancel_reason"].as_str(),
        order.json["payment_status"].as_str().unwrap(),
    );
    let by_timeout = reason == Some("payment_timeout");
    match rival {
        Rival::Payment if by_timeout => {
            // Expiry first: the payment is refused as expired.
            assert_eq!((status, paid), ("canceled", "unpaid"), "{id}");
            assert_eq!(
                reply.json["code"], "ORDER_EXPIRED",
                "{id}: {:?}",
                reply.json
            );
            reply.expect(400);
        }
        Rival::Payment => {
            // Payment first: paid orders do not expire.
            reply.expect(200);
            assert_eq!((status, paid), ("pending", "paid"), "{id}");
        }
        Rival::Cancel => {
            // Either way canceled once; the loser's request is a no-op.
            reply.expect(200);
            assert_eq!(status, "canceled");
            let expected = if by_timeout {
                "payment_timeout"
            } else {
                "requested"
            };
            assert_eq!(reason, Some(expected));
        }
        Rival::Complete if by_timeout => {
            assert_eq!(status, "canceled");
            let detail = reply.problem(400);
            assert!(
                detail.contains("from 'canceled' to 'completed'"),
                "{detail}"
            );
        }
        Rival::Complete => {
            reply.expect(200);
            assert_eq!(status, "completed", "{id}");
        }
    }
    by_timeout
}

/// Sessions of the orders database waiting for a lock.
async fn lock_waiters(db: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

async fn wait_for_waiters(db: &mut sqlx::PgConnection, n: i64) {
    for _ in 0..500 {
        if lock_waiters(db).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} sessions never queued on the order's lock");
}

/// One old unpaid order on which the expiry and `rival` both wait for the
/// order's row lock (held by the test), queued in the order `expiry_first`
/// says; the lock is then released and PostgreSQL grants it in queue order.
/// So both outcomes of the race are shown, each a real contention.
async fn forced(
    p: &Platform,
    reconciler: &order_service::Reconciler,
    product: &str,
    rival: Rival,
    expiry_first: bool,
) {
    let id = order(p, 900, product, 1).await;
    age(&p.order, &id, TIMEOUT * 2).await;
    let mut holder = orders_database(&p.order).await;
    let mut watcher = orders_database(&p.order).await;
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM orders WHERE id = $1::uuid FOR UPDATE")
        .bind(&id)
        .execute(&mut holder)
        .await
        .unwrap();
    let spawn_expiry = || {
        let reconciler = reconciler.clone();
        tokio::spawn(async move { reconciler.reconcile_once().await.unwrap().expired })
    };
    // A task handle is awaitable, so the block below hands back the
    // handle on purpose: it is awaited after the race.
    #[allow(clippy::async_yields_async)]
    let (reply, expiry) = if expiry_first {
        let expiry = spawn_expiry();
        wait_for_waiters(&mut watcher, 1).await;
        let (reply, ()) = tokio::join!(rival.send(p, &id), async {
            wait_for_waiters(&mut watcher, 2).await;
            sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
        });
        (reply, expiry)
    } else {
        tokio::join!(rival.send(p, &id), async {
            wait_for_waiters(&mut watcher, 1).await;
            let expiry = spawn_expiry();
            wait_for_waiters(&mut watcher, 2).await;
            sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
            expiry
        })
    };
    let expired = expiry.await.unwrap();
    let by_timeout = one_winner(p, &id, &reply, rival).await;
    assert_eq!(
        by_timeout, expiry_first,
        "{rival:?}: the first in the queue wins"
    );
    assert_eq!(expired, usize::from(expiry_first));
}

/// Races the expiry of old unpaid orders against `rival`: `RACED` orders at
/// once, with two reconciler passes at once (two replicas), then one order
/// with each of the two queued first on its lock. One winner per order, and
/// the stock of every order that ends canceled back exactly once.
async fn race(rival: Rival) {
    let (p, reconciler, _) = platform(Some(TIMEOUT)).await;
    let product = p.create_product("Lamp", "10.00", 1000).await;
    let product = product["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for customer in 0..RACED {
        let id = order(&p, customer as i64 + 1, &product, 1).await;
        age(&p.order, &id, TIMEOUT * 2).await;
        ids.push(id);
    }
    let requests = join_all(ids.iter().map(|id| rival.send(&p, id)));
    let (replies, pass_a, pass_b) = tokio::join!(
        requests,
        reconciler.reconcile_once(),
        reconciler.reconcile_once()
    );
    let expired_by_passes = pass_a.unwrap().expired + pass_b.unwrap().expired;
    let mut expired = 0;
    for (id, reply) in ids.iter().zip(&replies) {
        expired += usize::from(one_winner(&p, id, reply, rival).await);
    }
    assert_eq!(
        expired, expired_by_passes,
        "each expiry counted by one pass"
    );
    eprintln!(
        "{rival:?}, all at once: {expired} expired first, {} rival first",
        RACED - expired
    );

    forced(&p, &reconciler, &product, rival, true).await;
    forced(&p, &reconciler, &product, rival, false).await;

    // Kept: paid (still pending) or completed orders hold their unit; every
    // canceled one's unit is back, once.
    let kept = match rival {
        Rival::Cancel => 0,
        _ => RACED - expired + 1,
    };
    assert_eq!(outbox_rows(&p.order).await, 0, "every release delivered");
    assert_eq!(p.stock_of(&product).await, 1000 - kept as i64, "{rival:?}");
}

#[tokio::test]
async fn expiry_against_payment_has_one_winner_per_order() {
    race(Rival::Payment).await;
}

#[tokio::test]
async fn expiry_against_cancel_has_one_winner_per_order() {
    race(Rival::Cancel).await;
}

#[tokio::test]
async fn expiry_against_complete_has_one_winner_per_order() {
    race(Rival::Complete).await;
}
