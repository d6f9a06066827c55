//! The inventory reservation protocol over real gRPC against a real
//! PostgreSQL: all-or-nothing reservations under concurrency, idempotency by
//! reservation id, release / commit exactly once, and products that are part
//! of a reservation cannot be deleted. Issue 2, acceptance 2-7.

use futures::future::join_all;
use proto::{
    catalog::v1::{DeleteProductRequest, GetProductRequest, UpdateProductRequest},
    errors::{meta, reason},
};
use tests::catalog::{
    CatalogClient, catalog_client, commit, create_product, metadata_of, money, reason_of, release,
    reserve, spawn_catalog, stock_of, violated_fields,
};
use tonic::{Code, Status};

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Asserts an `INSUFFICIENT_STOCK` refusal naming the product and its figures.
#[track_caller]
fn assert_insufficient(
    status: &Status,
    product_id: &str,
    product_name: &str,
    available: i32,
    requested: i64,
) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason_of(status), reason::INSUFFICIENT_STOCK);
    assert_eq!(metadata_of(status, meta::PRODUCT_ID), product_id);
    assert_eq!(metadata_of(status, meta::PRODUCT_NAME), product_name);
    assert_eq!(metadata_of(status, meta::AVAILABLE), available.to_string());
    assert_eq!(metadata_of(status, meta::REQUESTED), requested.to_string());
    assert_eq!(
        status.message(),
        format!(
            "Insufficient stock for product '{product_name}'. Available: {available}, Requested: {requested}"
        )
    );
}

/// Asserts a refusal with this code and `ErrorInfo` reason.
#[track_caller]
fn assert_refused(status: &Status, code: Code, expected_reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason_of(status), expected_reason, "{status:?}");
}

async fn delete(client: &mut CatalogClient, id: &str) -> Result<(), Status> {
    client
        .delete_product(DeleteProductRequest { id: id.to_owned() })
        .await
        .map(|_| ())
}

async fn set_price(client: &mut CatalogClient, id: &str, name: &str, price: &str) {
    client
        .update_product(UpdateProductRequest {
            id: id.to_owned(),
            name: Some(name.to_owned()),
            price: Some(money(price)),
            ..Default::default()
        })
        .await
        .expect("price updated");
}

// ------------------------------------------------------------- 2: contention

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_reservations_of_one_unit_on_stock_ten_succeed_exactly_ten_times() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;

    for round in 1..=10 {
        let product = create_product(&mut client, &format!("Hot item {round}"), "9.99", 10).await;

        let calls = (0..50).map(|_| {
            let mut client = client.clone();
            let product_id = product.id.clone();
            tokio::spawn(async move { reserve(&mut client, &new_id(), &[(&product_id, 1)]).await })
        });
        let results: Vec<_> = join_all(calls)
            .await
            .into_iter()
            .map(|joined| joined.expect("task completed"))
            .collect();

        let (taken, refused): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
        assert_eq!(taken.len(), 10, "round {round}");
        assert_eq!(refused.len(), 40, "round {round}");
        for response in taken.into_iter().map(Result::unwrap) {
            assert_eq!(response.lines.len(), 1);
            assert_eq!(response.lines[0].product_id, product.id);
            assert_eq!(response.lines[0].quantity, 1);
            assert_eq!(response.lines[0].unit_price, Some(money("9.99")));
        }
        for status in refused.iter().map(|r| r.as_ref().unwrap_err()) {
            assert_insufficient(status, &product.id, &product.name, 0, 1);
        }
        assert_eq!(stock_of(&mut client, &product.id).await, 0, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_crossed_two_line_reservations_never_deadlock_and_stock_adds_up_exactly() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;

    for round in 1..=3 {
        // Each success takes 1 of A and 2 of B, so B (40) runs out after 20.
        let a = create_product(&mut client, &format!("A{round}"), "1.00", 25).await;
        let b = create_product(&mut client, &format!("B{round}"), "2.00", 40).await;

        let calls = (0..40).map(|i| {
            let mut client = client.clone();
            let (a, b) = (a.id.clone(), b.id.clone());
            tokio::spawn(async move {
                let items = if i % 2 == 0 {
                    [(a.as_str(), 1), (b.as_str(), 2)]
                } else {
                    [(b.as_str(), 2), (a.as_str(), 1)]
                };
                reserve(&mut client, &new_id(), &items).await
            })
        });
        let results: Vec<_> = join_all(calls)
            .await
            .into_iter()
            .map(|joined| joined.expect("task completed"))
            .collect();

        for result in &results {
            if let Err(status) = result {
                assert_eq!(
                    status.code(),
                    Code::FailedPrecondition,
                    "round {round}: only OK or FAILED_PRECONDITION may reach a caller, got {status:?}"
                );
                assert_insufficient(status, &b.id, &b.name, 0, 2);
            }
        }
        let successes = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(successes, 20, "round {round}");
        let mut by_id = [a.id.clone(), b.id.clone()];
        by_id.sort();
        for response in results.iter().flatten() {
            let ids: Vec<&str> = response
                .lines
                .iter()
                .map(|l| l.product_id.as_str())
                .collect();
            assert_eq!(ids, by_id, "lines come in product id order");
        }
        let successes = i32::try_from(successes).unwrap();
        assert_eq!(stock_of(&mut client, &a.id).await, 25 - successes);
        assert_eq!(stock_of(&mut client, &b.id).await, 40 - 2 * successes);
    }
}

// ------------------------------------------------------- 4: all or nothing

/// Three products with stock 5, 5 and 1; returned in product id order, so the
/// last one (stock 1) is also the last line in lock order.
async fn three_products_last_one_short(client: &mut CatalogClient) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    for name in ["first", "second", "third"] {
        ids.push(create_product(client, name, "3.00", 5).await.id);
    }
    ids.sort();
    let mut products = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        let name = format!("line {i}");
        client
            .update_product(UpdateProductRequest {
                id: id.clone(),
                name: Some(name.clone()),
                quantity: Some(if i == 2 { 1 } else { 5 }),
                ..Default::default()
            })
            .await
            .expect("arranged");
        products.push((id, name));
    }
    products
}

#[tokio::test]
async fn a_reservation_whose_last_line_lacks_stock_moves_nothing() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let products = three_products_last_one_short(&mut client).await;
    let [(first, _), (second, _), (third, third_name)] = &products[..] else {
        unreachable!()
    };

    let status = reserve(
        &mut client,
        &new_id(),
        &[(first, 2), (second, 4), (third, 3)],
    )
    .await
    .expect_err("the last line lacks stock");

    assert_insufficient(&status, third, third_name, 1, 3);
    assert_eq!(stock_of(&mut client, first).await, 5);
    assert_eq!(stock_of(&mut client, second).await, 5);
    assert_eq!(stock_of(&mut client, third).await, 1);
}

#[tokio::test]
async fn a_refused_reservation_leaves_no_claim_so_its_id_succeeds_once_stock_arrives() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Scarce", "3.00", 1).await;
    let reservation = new_id();
    reserve(&mut client, &reservation, &[(&product.id, 2)])
        .await
        .expect_err("not enough yet");

    client
        .update_product(UpdateProductRequest {
            id: product.id.clone(),
            quantity: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    let taken = reserve(&mut client, &reservation, &[(&product.id, 2)])
        .await
        .expect("the same id now succeeds");

    assert_eq!(taken.lines[0].quantity, 2);
    assert_eq!(stock_of(&mut client, &product.id).await, 0);
}

#[tokio::test]
async fn a_reservation_naming_missing_products_is_not_found_listing_each_and_moves_nothing() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let present = create_product(&mut client, "Present", "3.00", 5).await;
    let (missing1, missing2) = (new_id(), new_id());

    let status = reserve(
        &mut client,
        &new_id(),
        &[(&missing1, 1), (&present.id, 2), (&missing2, 1)],
    )
    .await
    .expect_err("missing products");

    assert_refused(&status, Code::NotFound, reason::PRODUCTS_NOT_FOUND);
    assert_eq!(
        metadata_of(&status, meta::PRODUCT_IDS),
        format!("{missing1},{missing2}")
    );
    assert_eq!(stock_of(&mut client, &present.id).await, 5);
}

#[tokio::test]
async fn lines_of_one_product_are_summed_so_two_lines_of_three_on_stock_five_are_refused() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Widget", "3.00", 5).await;

    let status = reserve(
        &mut client,
        &new_id(),
        &[(&product.id, 3), (&product.id, 3)],
    )
    .await
    .expect_err("6 > 5");

    assert_insufficient(&status, &product.id, "Widget", 5, 6);
    assert_eq!(stock_of(&mut client, &product.id).await, 5);
}

#[tokio::test]
async fn lines_of_one_product_are_summed_into_one_reserved_line() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Widget", "3.00", 5).await;

    let response = reserve(
        &mut client,
        &new_id(),
        &[(&product.id, 2), (&product.id, 3)],
    )
    .await
    .expect("5 of 5");

    assert_eq!(response.lines.len(), 1);
    assert_eq!(response.lines[0].quantity, 5);
    assert_eq!(response.lines[0].product_name, "Widget");
    assert_eq!(response.lines[0].unit_price, Some(money("3.00")));
    assert_eq!(stock_of(&mut client, &product.id).await, 0);
}

#[tokio::test]
async fn a_reservation_with_bad_fields_is_refused_naming_each_and_moves_nothing() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Widget", "3.00", 5).await;
    let p = product.id.as_str();

    // (case, reservation id, items, fields the refusal names)
    type Case<'a> = (&'a str, String, Vec<(&'a str, i32)>, Vec<&'a str>);
    let cases: [Case; 6] = [
        (
            "bad reservation id",
            "nope".into(),
            vec![(p, 1)],
            vec!["reservation_id"],
        ),
        ("no items", new_id(), vec![], vec!["items"]),
        (
            "bad product id",
            new_id(),
            vec![(p, 1), ("nope", 1)],
            vec!["items[1].product_id"],
        ),
        (
            "zero quantity",
            new_id(),
            vec![(p, 0)],
            vec!["items[0].quantity"],
        ),
        (
            "negative quantity",
            new_id(),
            vec![(p, 1), (p, -1)],
            vec!["items[1].quantity"],
        ),
        (
            "everything",
            String::new(),
            vec![("", 0)],
            vec!["reservation_id", "items[0].product_id", "items[0].quantity"],
        ),
    ];
    for (case, reservation_id, items, fields) in cases {
        let status = reserve(&mut client, &reservation_id, &items)
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::InvalidArgument, "{case}");
        assert_eq!(violated_fields(&status), fields, "{case}");
    }

    assert_eq!(stock_of(&mut client, &product.id).await, 5);
}

// ----------------------------------------------------------- 5: idempotency

#[tokio::test]
async fn the_same_reservation_sent_twice_moves_stock_once_and_answers_identically() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let a = create_product(&mut client, "A", "1.25", 10).await;
    let b = create_product(&mut client, "B", "7.50", 10).await;
    let reservation = new_id();
    let items = [(a.id.as_str(), 2), (b.id.as_str(), 3)];

    let first = reserve(&mut client, &reservation, &items)
        .await
        .expect("first");
    let second = reserve(&mut client, &reservation, &items)
        .await
        .expect("again");

    assert_eq!(second, first);
    assert_eq!(first.reservation_id, reservation);
    assert_eq!(first.lines.len(), 2);
    assert_eq!(stock_of(&mut client, &a.id).await, 8);
    assert_eq!(stock_of(&mut client, &b.id).await, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_copies_of_one_reservation_move_stock_once_and_answer_identically() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;

    for round in 1..=5 {
        let a = create_product(&mut client, &format!("A{round}"), "1.25", 10).await;
        let b = create_product(&mut client, &format!("B{round}"), "7.50", 10).await;
        let reservation = new_id();

        let calls = (0..10).map(|_| {
            let mut client = client.clone();
            let (a, b, reservation) = (a.id.clone(), b.id.clone(), reservation.clone());
            tokio::spawn(
                async move { reserve(&mut client, &reservation, &[(&b, 3), (&a, 2)]).await },
            )
        });
        let answers: Vec<_> = join_all(calls)
            .await
            .into_iter()
            .map(|joined| {
                joined
                    .expect("task completed")
                    .expect("every copy succeeds")
            })
            .collect();

        assert!(
            answers.iter().all(|answer| *answer == answers[0]),
            "round {round}"
        );
        assert_eq!(answers[0].lines.len(), 2);
        assert_eq!(stock_of(&mut client, &a.id).await, 8, "round {round}");
        assert_eq!(stock_of(&mut client, &b.id).await, 7, "round {round}");
    }
}

#[tokio::test]
async fn the_same_reservation_id_with_other_items_is_refused_as_a_mismatch_and_moves_nothing() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let a = create_product(&mut client, "A", "1.00", 10).await;
    let b = create_product(&mut client, "B", "1.00", 10).await;
    let reservation = new_id();
    reserve(&mut client, &reservation, &[(&a.id, 2)])
        .await
        .expect("reserved");

    let other_quantity = reserve(&mut client, &reservation, &[(&a.id, 3)]).await;
    let other_product = reserve(&mut client, &reservation, &[(&b.id, 2)]).await;
    let extra_line = reserve(&mut client, &reservation, &[(&a.id, 2), (&b.id, 1)]).await;

    for result in [other_quantity, other_product, extra_line] {
        let status = result.expect_err("mismatch");
        assert_refused(&status, Code::AlreadyExists, reason::RESERVATION_MISMATCH);
        assert_eq!(metadata_of(&status, meta::ID), reservation);
    }
    assert_eq!(stock_of(&mut client, &a.id).await, 8);
    assert_eq!(stock_of(&mut client, &b.id).await, 10);
}

#[tokio::test]
async fn the_unit_price_and_name_are_captured_when_stock_is_taken() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Old name", "10.00", 10).await;
    let reservation = new_id();
    let taken = reserve(&mut client, &reservation, &[(&product.id, 1)])
        .await
        .expect("reserved");

    set_price(&mut client, &product.id, "New name", "12.50").await;
    let replayed = reserve(&mut client, &reservation, &[(&product.id, 1)])
        .await
        .expect("replayed");
    let fresh = reserve(&mut client, &new_id(), &[(&product.id, 1)])
        .await
        .expect("a new reservation");

    assert_eq!(taken.lines[0].unit_price, Some(money("10.00")));
    assert_eq!(replayed, taken);
    assert_eq!(replayed.lines[0].product_name, "Old name");
    assert_eq!(fresh.lines[0].unit_price, Some(money("12.50")));
    assert_eq!(fresh.lines[0].product_name, "New name");
    assert_eq!(stock_of(&mut client, &product.id).await, 8);
}

// ------------------------------------------------------ 6: release / commit

#[tokio::test]
async fn releasing_twice_restores_stock_once() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let a = create_product(&mut client, "A", "1.00", 10).await;
    let b = create_product(&mut client, "B", "1.00", 10).await;
    let reservation = new_id();
    reserve(&mut client, &reservation, &[(&a.id, 3), (&b.id, 4)])
        .await
        .expect("reserved");

    let first = release(&mut client, &reservation).await.expect("released");
    let second = release(&mut client, &reservation)
        .await
        .expect("idempotent");

    assert!(first);
    assert!(!second);
    assert_eq!(stock_of(&mut client, &a.id).await, 10);
    assert_eq!(stock_of(&mut client, &b.id).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_releases_restore_stock_once() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;

    for round in 1..=5 {
        let a = create_product(&mut client, &format!("A{round}"), "1.00", 10).await;
        let b = create_product(&mut client, &format!("B{round}"), "1.00", 10).await;
        let reservation = new_id();
        reserve(&mut client, &reservation, &[(&a.id, 3), (&b.id, 4)])
            .await
            .expect("reserved");

        let calls = (0..10).map(|_| {
            let mut client = client.clone();
            let reservation = reservation.clone();
            tokio::spawn(async move { release(&mut client, &reservation).await })
        });
        let released: Vec<bool> = join_all(calls)
            .await
            .into_iter()
            .map(|joined| {
                joined
                    .expect("task completed")
                    .expect("every release succeeds")
            })
            .collect();

        assert_eq!(released.iter().filter(|&&r| r).count(), 1, "round {round}");
        assert_eq!(stock_of(&mut client, &a.id).await, 10, "round {round}");
        assert_eq!(stock_of(&mut client, &b.id).await, 10, "round {round}");
    }
}

#[tokio::test]
async fn a_release_of_an_unknown_id_leaves_a_tombstone_so_a_later_reserve_is_refused() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Widget", "1.00", 10).await;
    let reservation = new_id();

    let released = release(&mut client, &reservation).await.expect("tombstone");
    let late = reserve(&mut client, &reservation, &[(&product.id, 2)]).await;
    let later = reserve(&mut client, &reservation, &[(&product.id, 2)]).await;

    assert!(!released, "nothing was held, so nothing was released");
    for result in [late, later] {
        let status = result.expect_err("tombstoned");
        assert_refused(
            &status,
            Code::FailedPrecondition,
            reason::RESERVATION_RELEASED,
        );
        assert_eq!(metadata_of(&status, meta::ID), reservation);
    }
    assert_eq!(stock_of(&mut client, &product.id).await, 10);
}

#[tokio::test]
async fn a_released_reservation_cannot_take_stock_again() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Widget", "1.00", 10).await;
    let reservation = new_id();
    reserve(&mut client, &reservation, &[(&product.id, 2)])
        .await
        .unwrap();
    assert!(release(&mut client, &reservation).await.unwrap());

    let status = reserve(&mut client, &reservation, &[(&product.id, 2)])
        .await
        .expect_err("released");

    assert_refused(
        &status,
        Code::FailedPrecondition,
        reason::RESERVATION_RELEASED,
    );
    assert_eq!(stock_of(&mut client, &product.id).await, 10);
}

#[tokio::test]
async fn a_committed_reservation_cannot_be_released_and_keeps_its_stock() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Widget", "1.00", 10).await;
    let reservation = new_id();
    reserve(&mut client, &reservation, &[(&product.id, 4)])
        .await
        .unwrap();
    assert!(commit(&mut client, &reservation).await.unwrap());

    let status = release(&mut client, &reservation)
        .await
        .expect_err("committed");

    assert_refused(
        &status,
        Code::FailedPrecondition,
        reason::RESERVATION_COMMITTED,
    );
    assert_eq!(metadata_of(&status, meta::ID), reservation);
    assert_eq!(stock_of(&mut client, &product.id).await, 6);
}

#[tokio::test]
async fn committing_twice_is_fine_and_only_the_first_call_reports_committed() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Widget", "1.00", 10).await;
    let reservation = new_id();
    let taken = reserve(&mut client, &reservation, &[(&product.id, 4)])
        .await
        .unwrap();

    let first = commit(&mut client, &reservation).await.expect("committed");
    let second = commit(&mut client, &reservation).await.expect("idempotent");
    let replayed = reserve(&mut client, &reservation, &[(&product.id, 4)])
        .await
        .expect("a committed reservation still replays");

    assert!(first);
    assert!(!second);
    assert_eq!(replayed, taken);
    assert_eq!(stock_of(&mut client, &product.id).await, 6);
}

#[tokio::test]
async fn committing_an_unknown_reservation_is_not_found() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let reservation = new_id();

    let status = commit(&mut client, &reservation)
        .await
        .expect_err("unknown");

    assert_refused(&status, Code::NotFound, reason::RESERVATION_NOT_FOUND);
    assert_eq!(metadata_of(&status, meta::ID), reservation);
}

#[tokio::test]
async fn committing_a_released_reservation_is_refused_and_moves_nothing() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Widget", "1.00", 10).await;
    let reservation = new_id();
    reserve(&mut client, &reservation, &[(&product.id, 4)])
        .await
        .unwrap();
    assert!(release(&mut client, &reservation).await.unwrap());

    let status = commit(&mut client, &reservation)
        .await
        .expect_err("released");

    assert_refused(
        &status,
        Code::FailedPrecondition,
        reason::RESERVATION_RELEASED,
    );
    assert_eq!(stock_of(&mut client, &product.id).await, 10);
}

#[tokio::test]
async fn release_and_commit_refuse_a_reservation_id_that_is_not_a_uuid() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;

    for bad in ["", "order-1", "00000000-0000-0000-0000"] {
        let released = release(&mut client, bad).await.expect_err(bad);
        let committed = commit(&mut client, bad).await.expect_err(bad);
        for status in [released, committed] {
            assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
            assert_eq!(violated_fields(&status), ["reservation_id"], "{bad:?}");
        }
    }
}

// ------------------------------------------------- 7: referenced products

#[tokio::test]
async fn deleting_a_product_with_a_held_reservation_is_refused_and_the_product_stays() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Ordered", "1.00", 10).await;
    reserve(&mut client, &new_id(), &[(&product.id, 1)])
        .await
        .unwrap();

    let status = delete(&mut client, &product.id)
        .await
        .expect_err("referenced");

    assert_refused(
        &status,
        Code::FailedPrecondition,
        reason::PRODUCT_REFERENCED,
    );
    assert_eq!(
        status.message(),
        "Cannot delete product that is referenced in existing orders"
    );
    assert_eq!(stock_of(&mut client, &product.id).await, 9);
}

#[tokio::test]
async fn deleting_a_product_whose_reservations_were_released_or_committed_is_still_refused() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let released = create_product(&mut client, "Released", "1.00", 10).await;
    let committed = create_product(&mut client, "Committed", "1.00", 10).await;
    let (r1, r2) = (new_id(), new_id());
    reserve(&mut client, &r1, &[(&released.id, 1)])
        .await
        .unwrap();
    reserve(&mut client, &r2, &[(&committed.id, 1)])
        .await
        .unwrap();
    assert!(release(&mut client, &r1).await.unwrap());
    assert!(commit(&mut client, &r2).await.unwrap());

    for product in [&released, &committed] {
        let status = delete(&mut client, &product.id)
            .await
            .expect_err("referenced");
        assert_refused(
            &status,
            Code::FailedPrecondition,
            reason::PRODUCT_REFERENCED,
        );
        assert_eq!(
            status.message(),
            "Cannot delete product that is referenced in existing orders"
        );
        let still_there = client
            .get_product(GetProductRequest {
                id: product.id.clone(),
            })
            .await;
        assert!(still_there.is_ok(), "{} still exists", product.name);
    }
}

#[tokio::test]
async fn a_refused_reservation_does_not_stop_its_products_from_being_deleted() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Never taken", "1.00", 1).await;
    reserve(&mut client, &new_id(), &[(&product.id, 2)])
        .await
        .expect_err("not enough stock");

    delete(&mut client, &product.id)
        .await
        .expect("no reservation line refers to it");

    let status = client
        .get_product(GetProductRequest {
            id: product.id.clone(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(status.code(), Code::NotFound);
}
