//! Products over real gRPC against a real PostgreSQL: create, read, partial
//! update, delete, the newest-first list, and every validation refusal (a
//! product no reservation refers to can be deleted).

use proto::{
    catalog::v1::{CreateProductRequest, DeleteProductRequest, Product, UpdateProductRequest},
    common::v1::Money,
    errors::reason,
};
use tests::catalog::{
    CatalogClient, catalog, catalog_database, create_product, list_products, money, product_count,
    reason_of, violated_fields,
};
use tonic::{Code, Status};

fn create_request(name: &str, price: Option<Money>, quantity: i32) -> CreateProductRequest {
    CreateProductRequest {
        name: name.to_owned(),
        description: None,
        price,
        quantity,
    }
}

/// An update of the product `id` that changes nothing yet.
fn update_request(id: &str) -> UpdateProductRequest {
    UpdateProductRequest {
        id: id.to_owned(),
        ..Default::default()
    }
}

async fn create(
    client: &mut CatalogClient,
    request: CreateProductRequest,
) -> Result<Product, Status> {
    Ok(client.create_product(request).await?.into_inner())
}

/// A "Laptop" at 999.99 with 7 in stock and this description.
async fn laptop_described(client: &mut CatalogClient, description: &str) -> Product {
    let mut request = create_request("Laptop", Some(money("999.99")), 7);
    request.description = Some(description.to_owned());
    create(client, request).await.expect("created")
}

use tests::catalog::get_product as get;

async fn update(
    client: &mut CatalogClient,
    request: UpdateProductRequest,
) -> Result<Product, Status> {
    Ok(client.update_product(request).await?.into_inner())
}

async fn delete(client: &mut CatalogClient, id: &str) -> Result<(), Status> {
    let id = id.to_owned();
    client
        .delete_product(DeleteProductRequest {
            id,
            expected_version: None,
        })
        .await
        .map(drop)
}

/// `(seconds, nanos)` of a product's creation time, comparable.
fn created_at(product: &Product) -> (i64, i32) {
    let at = product.created_at.expect("created_at set");
    (at.seconds, at.nanos)
}

/// `(seconds, nanos)` of a product's last change, comparable.
fn updated_at(product: &Product) -> (i64, i32) {
    let at = product.updated_at.expect("updated_at set");
    (at.seconds, at.nanos)
}

/// Asserts `INVALID_ARGUMENT` whose violations name exactly `fields`.
#[track_caller]
fn assert_invalid(result: Result<impl std::fmt::Debug, Status>, fields: &[&str], case: &str) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    assert_eq!(violated_fields(&status), fields, "{case}");
}

/// Asserts the refusal of an unknown product, naming its id.
#[track_caller]
fn assert_not_found(result: Result<impl std::fmt::Debug, Status>, id: &str) {
    let status = result.expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), format!("Product with id {id} not found"));
}

// ---------------------------------------------------------------- create / get

#[tokio::test]
async fn a_created_product_is_returned_by_get_with_every_field() {
    let (_catalog, mut client) = catalog().await;

    let created = laptop_described(&mut client, "14 inch, 16 GB").await;
    let fetched = get(&mut client, &created.id).await.expect("found");

    assert_eq!(fetched, created);
    let id = uuid::Uuid::parse_str(&created.id).expect("id is a UUID");
    assert_eq!(
        created.id,
        id.hyphenated().to_string(),
        "canonical lowercase"
    );
    assert_eq!(created.name, "Laptop");
    assert_eq!(created.description.as_deref(), Some("14 inch, 16 GB"));
    assert_eq!(created.price, Some(money("999.99")));
    assert_eq!(created.quantity, 7);
    assert_eq!(created_at(&created), updated_at(&created));
}

#[tokio::test]
async fn the_boundary_values_of_every_field_are_accepted() {
    let (_catalog, mut client) = catalog().await;

    let longest_name = "é".repeat(255);
    let largest = create_request(&longest_name, Some(money("99999999.99")), 0);
    let largest = create(&mut client, largest)
        .await
        .expect("255 characters, the largest price and no stock are valid");
    let smallest = CreateProductRequest {
        name: "x".into(),
        description: Some(String::new()),
        // An empty currency code means the platform's currency.
        price: Some(Money {
            currency_code: String::new(),
            units: 0,
            nanos: 10_000_000,
        }),
        quantity: i32::MAX,
    };
    let smallest = create(&mut client, smallest)
        .await
        .expect("one character, 0.01, empty currency and i32::MAX stock are valid");

    assert_eq!(largest.name, longest_name);
    assert_eq!(largest.price, Some(money("99999999.99")));
    assert_eq!(largest.quantity, 0);
    assert_eq!(smallest.price, Some(money("0.01")));
    assert_eq!(smallest.description.as_deref(), Some(""));
    assert_eq!(smallest.quantity, i32::MAX);
}

#[tokio::test]
async fn get_of_an_unknown_product_is_not_found_naming_its_id() {
    let (_catalog, mut client) = catalog().await;
    let unknown = uuid::Uuid::new_v4().to_string();

    let got = get(&mut client, &unknown).await;

    assert_eq!(
        reason_of(got.as_ref().unwrap_err()),
        reason::PRODUCT_NOT_FOUND
    );
    assert_not_found(got, &unknown);
}

// -------------------------------------------------------------------- update

#[tokio::test]
async fn an_update_changes_only_the_given_fields() {
    let (_catalog, mut client) = catalog().await;
    let original = laptop_described(&mut client, "the original").await;

    let renamed = UpdateProductRequest {
        name: Some("Laptop Pro".into()),
        ..update_request(&original.id)
    };
    let renamed = update(&mut client, renamed).await.expect("renamed");
    let repriced = UpdateProductRequest {
        price: Some(money("1099.50")),
        quantity: Some(3),
        ..update_request(&original.id)
    };
    let repriced = update(&mut client, repriced).await.expect("repriced");

    assert_eq!(renamed.name, "Laptop Pro");
    assert_eq!(renamed.description, original.description);
    assert_eq!(renamed.price, original.price);
    assert_eq!(renamed.quantity, original.quantity);
    assert_eq!(renamed.created_at, original.created_at);
    assert!(updated_at(&renamed) > updated_at(&original));

    assert_eq!(repriced.name, "Laptop Pro");
    assert_eq!(repriced.description, original.description);
    assert_eq!(repriced.price, Some(money("1099.50")));
    assert_eq!(repriced.quantity, 3);
    assert_eq!(repriced.created_at, original.created_at);
    assert!(updated_at(&repriced) > updated_at(&renamed));
    assert_eq!(get(&mut client, &original.id).await.unwrap(), repriced);
}

#[tokio::test]
async fn an_update_with_no_field_set_changes_nothing_not_even_updated_at() {
    let (_catalog, mut client) = catalog().await;
    let original = create_product(&mut client, "Laptop", "999.99", 7).await;

    let answered = update(&mut client, update_request(&original.id))
        .await
        .expect("an empty update is accepted");

    assert_eq!(answered, original);
    assert_eq!(get(&mut client, &original.id).await.unwrap(), original);
}

#[tokio::test]
async fn a_description_is_set_and_then_cleared() {
    let (_catalog, mut client) = catalog().await;
    let original = create_product(&mut client, "Laptop", "999.99", 7).await;
    assert_eq!(original.description, None);

    let described = UpdateProductRequest {
        description: Some("now with a description".into()),
        ..update_request(&original.id)
    };
    let described = update(&mut client, described).await.expect("described");
    let cleared = UpdateProductRequest {
        clear_description: true,
        ..update_request(&original.id)
    };
    let cleared = update(&mut client, cleared).await.expect("cleared");

    assert_eq!(
        described.description.as_deref(),
        Some("now with a description")
    );
    assert_eq!(cleared.description, None);
    assert_eq!(cleared.name, "Laptop");
    assert_eq!(cleared.price, Some(money("999.99")));
    assert_eq!(cleared.quantity, 7);
    assert_eq!(get(&mut client, &original.id).await.unwrap(), cleared);
}

#[tokio::test]
async fn a_description_together_with_clear_description_is_refused_and_changes_nothing() {
    let (_catalog, mut client) = catalog().await;
    let original = laptop_described(&mut client, "kept").await;

    let mut both = update_request(&original.id);
    (both.description, both.clear_description) = (Some("new".into()), true);
    let result = update(&mut client, both).await;

    assert_invalid(result, &["clear_description"], "description + clear");
    assert_eq!(get(&mut client, &original.id).await.unwrap(), original);
}

#[tokio::test]
async fn an_update_of_an_unknown_product_is_not_found() {
    let (_catalog, mut client) = catalog().await;
    let unknown = uuid::Uuid::new_v4().to_string();

    let with_fields = UpdateProductRequest {
        name: Some("ghost".into()),
        ..update_request(&unknown)
    };
    assert_not_found(update(&mut client, with_fields).await, &unknown);
    let without_fields = update_request(&unknown);
    assert_not_found(update(&mut client, without_fields).await, &unknown);

    assert_eq!(product_count(&mut client).await, 0);
}

#[tokio::test]
async fn an_update_with_invalid_fields_is_refused_naming_each_and_changes_nothing() {
    let (_catalog, mut client) = catalog().await;
    let original = create_product(&mut client, "Laptop", "999.99", 7).await;
    let request = || update_request(&original.id);
    let cases: Vec<(&str, UpdateProductRequest, Vec<&str>)> = vec![
        (
            "empty name",
            UpdateProductRequest {
                name: Some(String::new()),
                ..request()
            },
            vec!["name"],
        ),
        (
            "256-character name",
            UpdateProductRequest {
                name: Some("a".repeat(256)),
                ..request()
            },
            vec!["name"],
        ),
        (
            "zero price",
            UpdateProductRequest {
                price: Some(money("0")),
                ..request()
            },
            vec!["price"],
        ),
        (
            "three decimals",
            UpdateProductRequest {
                price: Some(money("1.005")),
                ..request()
            },
            vec!["price"],
        ),
        (
            "negative quantity",
            UpdateProductRequest {
                quantity: Some(-1),
                ..request()
            },
            vec!["quantity"],
        ),
        (
            "everything wrong, valid name first",
            UpdateProductRequest {
                name: Some("fine".into()),
                price: Some(money("-1")),
                quantity: Some(-5),
                ..update_request("not-a-uuid")
            },
            vec!["id", "price", "quantity"],
        ),
    ];

    for (case, request, fields) in cases {
        assert_invalid(update(&mut client, request).await, &fields, case);
    }

    assert_eq!(get(&mut client, &original.id).await.unwrap(), original);
}

// -------------------------------------------------------------------- delete

#[tokio::test]
async fn deleting_a_product_without_reservations_succeeds_and_get_is_then_not_found() {
    let (_catalog, mut client) = catalog().await;
    let doomed = create_product(&mut client, "Doomed", "5.00", 1).await;
    let kept = create_product(&mut client, "Kept", "5.00", 1).await;

    delete(&mut client, &doomed.id).await.expect("deleted");

    assert_not_found(get(&mut client, &doomed.id).await, &doomed.id);
    assert_eq!(get(&mut client, &kept.id).await.unwrap(), kept);
    assert_eq!(product_count(&mut client).await, 1);
}

#[tokio::test]
async fn deleting_an_unknown_product_is_not_found() {
    let (_catalog, mut client) = catalog().await;
    create_product(&mut client, "Bystander", "5.00", 1).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    assert_not_found(delete(&mut client, &unknown).await, &unknown);
    assert_eq!(product_count(&mut client).await, 1);
}

#[tokio::test]
async fn deleting_twice_is_not_found_the_second_time() {
    let (_catalog, mut client) = catalog().await;
    let product = create_product(&mut client, "Once", "5.00", 1).await;

    delete(&mut client, &product.id).await.expect("deleted");
    let status = delete(&mut client, &product.id).await.expect_err("gone");

    assert_eq!(status.code(), Code::NotFound);
}

// ---------------------------------------------------------------------- list

/// Creates `n` products one after the other (so creation times differ); returns
/// their ids, oldest first.
async fn create_products(
    client: &mut CatalogClient,
    n: usize,
    stock: impl Fn(usize) -> i32,
) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("product {i}");
        ids.push(create_product(client, &name, "1.00", stock(i)).await.id);
    }
    ids
}

fn ids_of(products: &[Product]) -> Vec<String> {
    products.iter().map(|p| p.id.clone()).collect()
}

/// The ids of pages `pages` of `page_size` (unfiltered), each checked to
/// report `total`.
async fn walk(
    client: &mut CatalogClient,
    pages: std::ops::RangeInclusive<u32>,
    page_size: u32,
    total: u64,
) -> Vec<String> {
    let mut walked = Vec::new();
    for page in pages {
        let response = list_products(client, page, page_size, None).await.unwrap();
        assert_eq!(response.total, total);
        walked.extend(ids_of(&response.products));
    }
    walked
}

#[tokio::test]
async fn list_pages_are_newest_first_with_the_true_total_and_empty_past_the_end() {
    let (_catalog, mut client) = catalog().await;
    let mut newest_first = create_products(&mut client, 7, |_| 1).await;
    newest_first.reverse();

    let pages = walk(&mut client, 1..=4, 3, 7).await;
    // The deepest page allowed (offset 10,000, the default MAX_LIST_OFFSET);
    // deeper is refused (see the catalog_* and api_bounds depth tests).
    let far_away = list_products(&mut client, 101, 100, None).await.unwrap();
    assert_invalid(
        list_products(&mut client, u32::MAX, 100, None).await,
        &["page"],
        "page u32::MAX",
    );

    // Pages 1-3 hold 3, 3 and 1; page 4 is empty.
    assert_eq!(pages, newest_first);
    assert!(far_away.products.is_empty());
    assert_eq!(far_away.total, 7);
    for (page, expected) in [(1, 3), (3, 1), (4, 0)] {
        let listed = list_products(&mut client, page, 3, None).await.unwrap();
        assert_eq!(listed.products.len(), expected, "page {page}");
    }
}

#[tokio::test]
async fn a_list_returns_whole_products() {
    let (_catalog, mut client) = catalog().await;
    let product = create_product(&mut client, "Laptop", "999.99", 7).await;

    let page = list_products(&mut client, 1, 10, None).await.unwrap();

    assert_eq!(page.products, vec![product]);
    assert_eq!(page.total, 1);
}

#[tokio::test]
async fn walking_every_page_visits_each_product_once_in_newest_first_order() {
    let (_catalog, mut client) = catalog().await;
    // Created concurrently: creation times are close and may coincide.
    let creations = (0..23).map(|i| {
        let mut client = client.clone();
        async move { create_product(&mut client, &format!("p{i}"), "1.00", i).await }
    });
    let mut expected = futures::future::join_all(creations).await;

    let walked = walk(&mut client, 1..=6, 4, 23).await;

    expected.sort_by(|a, b| (created_at(b), &b.id).cmp(&(created_at(a), &a.id)));
    assert_eq!(walked, ids_of(&expected));
}

#[tokio::test]
async fn products_created_at_the_same_instant_are_ordered_by_id_and_pages_never_overlap() {
    let (catalog, mut client) = catalog().await;
    let mut ids = create_products(&mut client, 10, |_| 1).await;
    let mut db = catalog_database(&catalog).await;
    sqlx::query("UPDATE products SET created_at = '2026-01-01T00:00:00Z'")
        .execute(&mut db)
        .await
        .unwrap();

    let walked = walk(&mut client, 1..=4, 3, 10).await;

    ids.sort();
    ids.reverse();
    assert_eq!(walked, ids, "id descending breaks the tie");
}

#[tokio::test]
async fn the_in_stock_filter_keeps_products_with_stock_or_without() {
    let (_catalog, mut client) = catalog().await;
    // Even positions have stock, odd ones are sold out.
    let ids = create_products(&mut client, 9, |i| if i % 2 == 0 { 3 } else { 0 }).await;
    let newest_first = |keep_even: bool| -> Vec<String> {
        let mut kept: Vec<String> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| (i % 2 == 0) == keep_even)
            .map(|(_, id)| id.clone())
            .collect();
        kept.reverse();
        kept
    };

    let in_stock = list_products(&mut client, 1, 100, Some(true))
        .await
        .unwrap();
    let sold_out = list_products(&mut client, 1, 100, Some(false))
        .await
        .unwrap();
    let in_stock_page2 = list_products(&mut client, 2, 2, Some(true)).await.unwrap();
    let sold_out_past_end = list_products(&mut client, 3, 2, Some(false)).await.unwrap();

    assert_eq!(in_stock.total, 5);
    assert_eq!(ids_of(&in_stock.products), newest_first(true));
    assert!(in_stock.products.iter().all(|p| p.quantity == 3));
    assert_eq!(sold_out.total, 4);
    assert_eq!(ids_of(&sold_out.products), newest_first(false));
    assert!(sold_out.products.iter().all(|p| p.quantity == 0));
    assert_eq!(in_stock_page2.total, 5);
    assert_eq!(ids_of(&in_stock_page2.products), newest_first(true)[2..4]);
    assert_eq!(sold_out_past_end.total, 4);
    assert!(sold_out_past_end.products.is_empty());
}

#[tokio::test]
async fn a_product_whose_stock_runs_out_moves_to_the_sold_out_list() {
    let (_catalog, mut client) = catalog().await;
    let product = create_product(&mut client, "Last one", "1.00", 1).await;

    let sell_out = UpdateProductRequest {
        quantity: Some(0),
        ..update_request(&product.id)
    };
    update(&mut client, sell_out).await.unwrap();

    let in_stock = list_products(&mut client, 1, 10, Some(true)).await.unwrap();
    let sold_out = list_products(&mut client, 1, 10, Some(false))
        .await
        .unwrap();
    assert_eq!((in_stock.total, in_stock.products.len()), (0, 0));
    assert_eq!(ids_of(&sold_out.products), vec![product.id]);
}

#[tokio::test]
async fn a_bad_page_or_page_size_is_refused_naming_the_field() {
    let (_catalog, mut client) = catalog().await;
    create_product(&mut client, "Bystander", "1.00", 1).await;

    let cases = [
        ("page 0", 0, 10, vec!["page"]),
        ("page_size 0", 1, 0, vec!["page_size"]),
        ("page_size 101", 1, 101, vec!["page_size"]),
        ("both", 0, 101, vec!["page", "page_size"]),
    ];
    for (case, page, page_size, fields) in cases {
        let result = list_products(&mut client, page, page_size, None).await;
        assert_invalid(result, &fields, case);
    }

    let largest_page = list_products(&mut client, 1, 100, None).await.unwrap();
    assert_eq!(largest_page.total, 1);
}

// ---------------------------------------------------------------- validation

/// Each `(case, request)` is refused naming exactly `fields`, and none
/// writes anything.
async fn refused_creations(cases: Vec<(String, CreateProductRequest)>, fields: &[&str]) {
    let (_catalog, mut client) = catalog().await;
    for (case, request) in cases {
        assert_invalid(create(&mut client, request).await, fields, &case);
    }
    assert_eq!(product_count(&mut client).await, 0);
}

#[tokio::test]
async fn a_create_with_a_bad_name_is_refused_naming_the_name_and_writes_nothing() {
    let cases = [
        ("empty", String::new()),
        ("256 characters", "a".repeat(256)),
        ("256 two-byte characters", "é".repeat(256)),
        ("NUL inside", "lap\0top".to_owned()),
    ];
    let cases = cases.map(|(case, name)| {
        let request = create_request(&name, Some(money("1.00")), 1);
        (case.to_owned(), request)
    });
    refused_creations(cases.into(), &["name"]).await;
}

#[tokio::test]
async fn a_create_with_a_bad_price_is_refused_naming_the_price_and_writes_nothing() {
    let usd = |units: i64, nanos: i32| Money {
        currency_code: "USD".into(),
        units,
        nanos,
    };
    let cases = [
        ("zero", Some(money("0"))),
        ("negative", Some(money("-5.00"))),
        ("negative cents", Some(money("-0.01"))),
        ("three decimals", Some(money("19.999"))),
        ("one nano", Some(usd(1, 1))),
        ("a cent above the largest", Some(money("100000000.00"))),
        ("far above the largest", Some(usd(i64::MAX, 999_999_999))),
        ("missing", None),
        (
            "another currency",
            Some(Money {
                currency_code: "EUR".into(),
                units: 10,
                nanos: 0,
            }),
        ),
        ("nanos above range", Some(usd(1, 1_000_000_000))),
        ("nanos below range", Some(usd(-1, -1_000_000_000))),
        ("units positive, nanos negative", Some(usd(1, -500_000_000))),
        ("units negative, nanos positive", Some(usd(-1, 500_000_000))),
    ];
    let cases = cases.map(|(case, price)| (case.to_owned(), create_request("Laptop", price, 1)));
    refused_creations(cases.into(), &["price"]).await;
}

#[tokio::test]
async fn a_create_with_negative_quantity_is_refused_naming_the_quantity_and_writes_nothing() {
    let cases = [-1, i32::MIN].map(|quantity| {
        let request = create_request("Laptop", Some(money("1.00")), quantity);
        (format!("quantity {quantity}"), request)
    });
    refused_creations(cases.into(), &["quantity"]).await;
}

#[tokio::test]
async fn a_create_with_several_bad_fields_names_every_one() {
    let everything_wrong = CreateProductRequest {
        name: String::new(),
        description: Some("bad\0description".into()),
        price: None,
        quantity: -1,
    };
    let cases = vec![("all at once".to_owned(), everything_wrong)];
    refused_creations(cases, &["name", "description", "price", "quantity"]).await;
}

#[tokio::test]
async fn get_update_and_delete_refuse_an_id_that_is_not_a_uuid() {
    let (_catalog, mut client) = catalog().await;
    let product = create_product(&mut client, "Bystander", "1.00", 1).await;

    for bad in [
        "",
        "42",
        "not-a-uuid",
        "00000000-0000-0000-0000-00000000000g",
    ] {
        let got = get(&mut client, bad).await;
        assert_invalid(got, &["id"], &format!("get {bad:?}"));
        let rename = UpdateProductRequest {
            name: Some("renamed".into()),
            ..update_request(bad)
        };
        let updated = update(&mut client, rename).await;
        assert_invalid(updated, &["id"], &format!("update {bad:?}"));
        let deleted = delete(&mut client, bad).await;
        assert_invalid(deleted, &["id"], &format!("delete {bad:?}"));
    }

    assert_eq!(get(&mut client, &product.id).await.unwrap(), product);
    assert_eq!(product_count(&mut client).await, 1);
}
