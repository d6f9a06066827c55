//! The inventory reservation protocol over real gRPC against a real
//! PostgreSQL: all-or-nothing reservations under concurrency, idempotency by
//! reservation id, release / commit exactly once, and products that are part
//! of a reservation cannot be deleted.

use proto::{
    catalog::v1::{
        DeleteProductRequest, GetProductRequest, Product, ReserveInventoryResponse,
        UpdateProductRequest,
    },
    errors::{meta, reason},
};
use tests::{
    RunningService,
    catalog::{
        CatalogClient, catalog, commit, create_product, metadata_of, money, reason_of, release,
        reserve, stock_of, violated_fields,
    },
    concurrently,
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

/// Asserts a refusal of the reservation `id`: this code and reason, the id
/// in the `ErrorInfo`.
#[track_caller]
fn assert_refused_for<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    expected_reason: &str,
    id: &str,
) {
    let status = result.expect_err("refused");
    assert_refused(&status, code, expected_reason);
    assert_eq!(metadata_of(&status, meta::ID), id);
}

/// Asserts a refusal because the reservation `id` was released (or
/// tombstoned before any reserve).
#[track_caller]
fn assert_released<T: std::fmt::Debug>(result: Result<T, Status>, id: &str) {
    let reason = reason::RESERVATION_RELEASED;
    assert_refused_for(result, Code::FailedPrecondition, reason, id);
}

/// Asserts the refusal of deleting a product that is part of a reservation.
#[track_caller]
fn assert_referenced(status: &Status) {
    assert_refused(status, Code::FailedPrecondition, reason::PRODUCT_REFERENCED);
    assert_eq!(
        status.message(),
        "Cannot delete product that is referenced in existing orders"
    );
}

async fn delete(client: &mut CatalogClient, id: &str) -> Result<(), Status> {
    client
        .delete_product(DeleteProductRequest {
            id: id.to_owned(),
            expected_version: None,
        })
        .await
        .map(|_| ())
}

async fn update(client: &mut CatalogClient, request: UpdateProductRequest) {
    client
        .update_product(request)
        .await
        .expect("product updated");
}

/// A product of stock 10 at 1.00 and a new reservation id.
async fn product_and_id(client: &mut CatalogClient, name: &str) -> (Product, String) {
    (create_product(client, name, "1.00", 10).await, new_id())
}

/// A "Widget" (1.00, stock 10) of which a reservation holds `quantity`.
async fn held(
    client: &mut CatalogClient,
    quantity: i32,
) -> (Product, String, ReserveInventoryResponse) {
    let (product, reservation) = product_and_id(client, "Widget").await;
    let taken = reserve(client, &reservation, &[(&product.id, quantity)])
        .await
        .expect("reserved");
    (product, reservation, taken)
}

/// As [`held`], then released (which reports it released).
async fn released(client: &mut CatalogClient, quantity: i32) -> (Product, String) {
    let (product, reservation, _) = held(client, quantity).await;
    assert!(release(client, &reservation).await.expect("released"));
    (product, reservation)
}

/// A catalog, a client, [`pair`] and a new reservation id.
async fn pair_to_reserve(
    prices: [&str; 2],
) -> (RunningService, CatalogClient, [Product; 2], String) {
    let (catalog, mut client) = catalog().await;
    let (products, reservation) = pair(&mut client, 0, prices).await;
    (catalog, client, products, reservation)
}

/// The stock of each product, in order.
async fn stocks(client: &mut CatalogClient, products: [&Product; 2]) -> [i32; 2] {
    [
        stock_of(client, &products[0].id).await,
        stock_of(client, &products[1].id).await,
    ]
}

/// Products `A<round>` and `B<round>` at these prices, stock 10 each, and a
/// new reservation id.
async fn pair(
    client: &mut CatalogClient,
    round: usize,
    prices: [&str; 2],
) -> ([Product; 2], String) {
    let a = create_product(client, &format!("A{round}"), prices[0], 10).await;
    let b = create_product(client, &format!("B{round}"), prices[1], 10).await;
    ([a, b], new_id())
}

// ------------------------------------------------------------- contention

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_reservations_of_one_unit_on_stock_ten_succeed_exactly_ten_times() {
    let (_catalog, mut client) = catalog().await;

    for round in 1..=10 {
        let product = create_product(&mut client, &format!("Hot item {round}"), "9.99", 10).await;

        let results = concurrently((0..50).map(|_| {
            let (mut client, product_id) = (client.clone(), product.id.clone());
            async move { reserve(&mut client, &new_id(), &[(&product_id, 1)]).await }
        }))
        .await;

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
    let (_catalog, mut client) = catalog().await;

    for round in 1..=3 {
        // Each success takes 1 of A and 2 of B, so B (40) runs out after 20.
        let a = create_product(&mut client, &format!("A{round}"), "1.00", 25).await;
        let b = create_product(&mut client, &format!("B{round}"), "2.00", 40).await;

        let results = concurrently((0..40).map(|i| {
            let mut client = client.clone();
            let (a, b) = (a.id.clone(), b.id.clone());
            async move {
                let items = if i % 2 == 0 {
                    [(a.as_str(), 1), (b.as_str(), 2)]
                } else {
                    [(b.as_str(), 2), (a.as_str(), 1)]
                };
                reserve(&mut client, &new_id(), &items).await
            }
        }))
        .await;

        for status in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(
                status.code(),
                Code::FailedPrecondition,
                "round {round}: only OK or FAILED_PRECONDITION may reach a caller, got {status:?}"
            );
            assert_insufficient(status, &b.id, &b.name, 0, 2);
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
        assert_eq!(
            stocks(&mut client, [&a, &b]).await,
            [25 - successes, 40 - 2 * successes]
        );
    }
}

// --------------------------------------------------------- all or nothing

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
        let request = UpdateProductRequest {
            id: id.clone(),
            name: Some(name.clone()),
            quantity: Some(if i == 2 { 1 } else { 5 }),
            ..Default::default()
        };
        update(client, request).await;
        products.push((id, name));
    }
    products
}

#[tokio::test]
async fn a_reservation_whose_last_line_lacks_stock_moves_nothing() {
    let (_catalog, mut client) = catalog().await;
    let products = three_products_last_one_short(&mut client).await;
    let [(first, _), (second, _), (third, third_name)] = &products[..] else {
        unreachable!()
    };

    let lines = [(first.as_str(), 2), (second, 4), (third, 3)];
    let status = reserve(&mut client, &new_id(), &lines)
        .await
        .expect_err("the last line lacks stock");

    assert_insufficient(&status, third, third_name, 1, 3);
    for (id, stock) in [(first, 5), (second, 5), (third, 1)] {
        assert_eq!(stock_of(&mut client, id).await, stock);
    }
}

#[tokio::test]
async fn a_refused_reservation_leaves_no_claim_so_its_id_succeeds_once_stock_arrives() {
    let (_catalog, mut client) = catalog().await;
    let product = create_product(&mut client, "Scarce", "3.00", 1).await;
    let reservation = new_id();
    let lines = [(product.id.as_str(), 2)];
    reserve(&mut client, &reservation, &lines)
        .await
        .expect_err("not enough yet");

    let restock = UpdateProductRequest {
        id: product.id.clone(),
        quantity: Some(2),
        ..Default::default()
    };
    update(&mut client, restock).await;
    let taken = reserve(&mut client, &reservation, &lines)
        .await
        .expect("the same id now succeeds");

    assert_eq!(taken.lines[0].quantity, 2);
    assert_eq!(stock_of(&mut client, &product.id).await, 0);
}

#[tokio::test]
async fn a_reservation_naming_missing_products_is_not_found_listing_each_and_moves_nothing() {
    let (_catalog, mut client) = catalog().await;
    let present = create_product(&mut client, "Present", "3.00", 5).await;
    let (missing1, missing2) = (new_id(), new_id());

    let lines = [(missing1.as_str(), 1), (&present.id, 2), (&missing2, 1)];
    let status = reserve(&mut client, &new_id(), &lines)
        .await
        .expect_err("missing products");

    assert_refused(&status, Code::NotFound, reason::PRODUCTS_NOT_FOUND);
    assert_eq!(
        metadata_of(&status, meta::PRODUCT_IDS),
        format!("{missing1},{missing2}")
    );
    assert_eq!(stock_of(&mut client, &present.id).await, 5);
}

/// A catalog, a "Widget" of stock 5, and a reservation of two lines of it
/// with these quantities.
async fn two_lines_of_one_product(
    quantities: [i32; 2],
) -> (
    RunningService,
    CatalogClient,
    Product,
    Result<ReserveInventoryResponse, Status>,
) {
    let (service, mut client) = catalog().await;
    let product = create_product(&mut client, "Widget", "3.00", 5).await;
    let lines = quantities.map(|quantity| (product.id.as_str(), quantity));
    let reserved = reserve(&mut client, &new_id(), &lines).await;
    (service, client, product, reserved)
}

#[tokio::test]
async fn lines_of_one_product_are_summed_so_two_lines_of_three_on_stock_five_are_refused() {
    let (_catalog, mut client, product, reserved) = two_lines_of_one_product([3, 3]).await;

    let status = reserved.expect_err("6 > 5");
    assert_insufficient(&status, &product.id, "Widget", 5, 6);
    assert_eq!(stock_of(&mut client, &product.id).await, 5);
}

#[tokio::test]
async fn lines_of_one_product_are_summed_into_one_reserved_line() {
    let (_catalog, mut client, product, reserved) = two_lines_of_one_product([2, 3]).await;

    let response = reserved.expect("5 of 5");
    assert_eq!(response.lines.len(), 1);
    assert_eq!(response.lines[0].quantity, 5);
    assert_eq!(response.lines[0].product_name, "Widget");
    assert_eq!(response.lines[0].unit_price, Some(money("3.00")));
    assert_eq!(stock_of(&mut client, &product.id).await, 0);
}

#[tokio::test]
async fn a_reservation_with_bad_fields_is_refused_naming_each_and_moves_nothing() {
    let (_catalog, mut client) = catalog().await;
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

// ------------------------------------------------------------ idempotency

#[tokio::test]
async fn the_same_reservation_sent_twice_moves_stock_once_and_answers_identically() {
    let (_catalog, mut client, [a, b], reservation) = pair_to_reserve(["1.25", "7.50"]).await;
    let items = [(a.id.as_str(), 2), (b.id.as_str(), 3)];

    let first = reserve(&mut client, &reservation, &items).await.unwrap();
    let second = reserve(&mut client, &reservation, &items).await.unwrap();

    assert_eq!(second, first);
    assert_eq!(first.reservation_id, reservation);
    assert_eq!(first.lines.len(), 2);
    assert_eq!(stocks(&mut client, [&a, &b]).await, [8, 7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_copies_of_one_reservation_move_stock_once_and_answer_identically() {
    let (_catalog, mut client) = catalog().await;

    for round in 1..=5 {
        let ([a, b], reservation) = pair(&mut client, round, ["1.25", "7.50"]).await;

        let answers = concurrently((0..10).map(|_| {
            let mut client = client.clone();
            let (a, b, reservation) = (a.id.clone(), b.id.clone(), reservation.clone());
            async move { reserve(&mut client, &reservation, &[(&b, 3), (&a, 2)]).await }
        }))
        .await;

        let answers: Vec<_> = answers
            .into_iter()
            .map(|a| a.expect("every copy succeeds"))
            .collect();
        assert!(
            answers.iter().all(|answer| *answer == answers[0]),
            "round {round}"
        );
        assert_eq!(answers[0].lines.len(), 2);
        assert_eq!(stocks(&mut client, [&a, &b]).await, [8, 7], "round {round}");
    }
}

#[tokio::test]
async fn the_same_reservation_id_with_other_items_is_refused_as_a_mismatch_and_moves_nothing() {
    let (_catalog, mut client, [a, b], reservation) = pair_to_reserve(["1.00", "1.00"]).await;
    reserve(&mut client, &reservation, &[(&a.id, 2)])
        .await
        .expect("reserved");

    for other in [
        vec![(a.id.as_str(), 3)],
        vec![(b.id.as_str(), 2)],
        vec![(a.id.as_str(), 2), (b.id.as_str(), 1)],
    ] {
        let mismatch = reserve(&mut client, &reservation, &other).await;
        let (code, reason) = (Code::AlreadyExists, reason::RESERVATION_MISMATCH);
        assert_refused_for(mismatch, code, reason, &reservation);
    }
    assert_eq!(stocks(&mut client, [&a, &b]).await, [8, 10]);
}

#[tokio::test]
async fn the_unit_price_and_name_are_captured_when_stock_is_taken() {
    let (_catalog, mut client) = catalog().await;
    let product = create_product(&mut client, "Old name", "10.00", 10).await;
    let reservation = new_id();
    let lines = [(product.id.as_str(), 1)];
    let taken = reserve(&mut client, &reservation, &lines).await.unwrap();

    let renamed = UpdateProductRequest {
        id: product.id.clone(),
        name: Some("New name".to_owned()),
        price: Some(money("12.50")),
        ..Default::default()
    };
    update(&mut client, renamed).await;
    let replayed = reserve(&mut client, &reservation, &lines).await.unwrap();
    let fresh = reserve(&mut client, &new_id(), &lines).await.unwrap();

    assert_eq!(taken.lines[0].unit_price, Some(money("10.00")));
    assert_eq!(replayed, taken);
    assert_eq!(replayed.lines[0].product_name, "Old name");
    assert_eq!(fresh.lines[0].unit_price, Some(money("12.50")));
    assert_eq!(fresh.lines[0].product_name, "New name");
    assert_eq!(stock_of(&mut client, &product.id).await, 8);
}

// ------------------------------------------------------- release / commit

#[tokio::test]
async fn releasing_twice_restores_stock_once() {
    let (_catalog, mut client, [a, b], reservation) = pair_to_reserve(["1.00", "1.00"]).await;
    reserve(&mut client, &reservation, &[(&a.id, 3), (&b.id, 4)])
        .await
        .expect("reserved");

    let first = release(&mut client, &reservation).await.expect("released");
    let second = release(&mut client, &reservation)
        .await
        .expect("idempotent");

    assert!(first);
    assert!(!second);
    assert_eq!(stocks(&mut client, [&a, &b]).await, [10, 10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_releases_restore_stock_once() {
    let (_catalog, mut client) = catalog().await;

    for round in 1..=5 {
        let ([a, b], reservation) = pair(&mut client, round, ["1.00", "1.00"]).await;
        reserve(&mut client, &reservation, &[(&a.id, 3), (&b.id, 4)])
            .await
            .expect("reserved");

        let released = concurrently((0..10).map(|_| {
            let (mut client, reservation) = (client.clone(), reservation.clone());
            async move { release(&mut client, &reservation).await }
        }))
        .await;

        let released: Vec<bool> = released.into_iter().map(|r| r.expect("released")).collect();
        assert_eq!(released.iter().filter(|&&r| r).count(), 1, "round {round}");
        assert_eq!(
            stocks(&mut client, [&a, &b]).await,
            [10, 10],
            "round {round}"
        );
    }
}

#[tokio::test]
async fn a_release_of_an_unknown_id_leaves_a_tombstone_so_a_later_reserve_is_refused() {
    let (_catalog, mut client) = catalog().await;
    let (product, reservation) = product_and_id(&mut client, "Widget").await;

    let released = release(&mut client, &reservation).await.expect("tombstone");
    assert!(!released, "nothing was held, so nothing was released");
    // A late reserve, and a later one: both refused.
    for _ in 0..2 {
        let refused = reserve(&mut client, &reservation, &[(&product.id, 2)]).await;
        assert_released(refused, &reservation);
    }
    assert_eq!(stock_of(&mut client, &product.id).await, 10);
}

#[tokio::test]
async fn a_released_reservation_cannot_take_stock_again() {
    let (_catalog, mut client) = catalog().await;
    let (product, reservation) = released(&mut client, 2).await;

    let again = reserve(&mut client, &reservation, &[(&product.id, 2)]).await;

    assert_released(again, &reservation);
    assert_eq!(stock_of(&mut client, &product.id).await, 10);
}

#[tokio::test]
async fn a_committed_reservation_cannot_be_released_and_keeps_its_stock() {
    let (_catalog, mut client) = catalog().await;
    let (product, reservation, _) = held(&mut client, 4).await;
    assert!(commit(&mut client, &reservation).await.unwrap());

    let refused = release(&mut client, &reservation).await;

    let (code, reason) = (Code::FailedPrecondition, reason::RESERVATION_COMMITTED);
    assert_refused_for(refused, code, reason, &reservation);
    assert_eq!(stock_of(&mut client, &product.id).await, 6);
}

#[tokio::test]
async fn committing_twice_is_fine_and_only_the_first_call_reports_committed() {
    let (_catalog, mut client) = catalog().await;
    let (product, reservation, taken) = held(&mut client, 4).await;

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
    let (_catalog, mut client) = catalog().await;
    let reservation = new_id();

    let refused = commit(&mut client, &reservation).await;

    assert_refused_for(
        refused,
        Code::NotFound,
        reason::RESERVATION_NOT_FOUND,
        &reservation,
    );
}

#[tokio::test]
async fn committing_a_released_reservation_is_refused_and_moves_nothing() {
    let (_catalog, mut client) = catalog().await;
    let (product, reservation) = released(&mut client, 4).await;

    let refused = commit(&mut client, &reservation).await;

    assert_released(refused, &reservation);
    assert_eq!(stock_of(&mut client, &product.id).await, 10);
}

#[tokio::test]
async fn release_and_commit_refuse_a_reservation_id_that_is_not_a_uuid() {
    let (_catalog, mut client) = catalog().await;

    for bad in ["", "order-1", "00000000-0000-0000-0000"] {
        let released = release(&mut client, bad).await.expect_err(bad);
        let committed = commit(&mut client, bad).await.expect_err(bad);
        for status in [released, committed] {
            assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
            assert_eq!(violated_fields(&status), ["reservation_id"], "{bad:?}");
        }
    }
}

// --------------------------------------------------- referenced products

#[tokio::test]
async fn deleting_a_product_with_a_held_reservation_is_refused_and_the_product_stays() {
    let (_catalog, mut client) = catalog().await;
    let (product, _, _) = held(&mut client, 1).await;

    let status = delete(&mut client, &product.id)
        .await
        .expect_err("referenced");

    assert_referenced(&status);
    assert_eq!(stock_of(&mut client, &product.id).await, 9);
}

#[tokio::test]
async fn deleting_a_product_whose_reservations_were_released_or_committed_is_still_refused() {
    let (_catalog, mut client) = catalog().await;
    let (of_released, _) = released(&mut client, 1).await;
    let (of_committed, reservation, _) = held(&mut client, 1).await;
    assert!(commit(&mut client, &reservation).await.unwrap());

    for product in [&of_released, &of_committed] {
        let status = delete(&mut client, &product.id)
            .await
            .expect_err("referenced");
        assert_referenced(&status);
        let still_there = client
            .get_product(GetProductRequest {
                id: product.id.clone(),
            })
            .await;
        assert!(still_there.is_ok(), "{} still exists", product.id);
    }
}

#[tokio::test]
async fn a_refused_reservation_does_not_stop_its_products_from_being_deleted() {
    let (_catalog, mut client) = catalog().await;
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
