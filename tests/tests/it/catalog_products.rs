//! Products over real gRPC against a real PostgreSQL: create, read, partial
//! update, delete, the newest-first list, and every validation refusal.
//! Issue 2, acceptance 1 (and the unreferenced half of 7).

use proto::{
    catalog::v1::{
        CreateProductRequest, DeleteProductRequest, GetProductRequest, Product,
        UpdateProductRequest,
    },
    common::v1::Money,
    errors::reason,
};
use tests::catalog::{
    CatalogClient, catalog_client, catalog_database, create_product, list_products, money,
    product_count, reason_of, spawn_catalog, violated_fields,
};
use tonic::Code;

fn create_request(name: &str, price: Option<Money>, quantity: i32) -> CreateProductRequest {
    CreateProductRequest {
        name: name.to_owned(),
        description: None,
        price,
        quantity,
    }
}

fn update_request(id: &str) -> UpdateProductRequest {
    UpdateProductRequest {
        id: id.to_owned(),
        ..Default::default()
    }
}

async fn get(client: &mut CatalogClient, id: &str) -> Result<Product, tonic::Status> {
    client
        .get_product(GetProductRequest { id: id.to_owned() })
        .await
        .map(tonic::Response::into_inner)
}

async fn update(
    client: &mut CatalogClient,
    request: UpdateProductRequest,
) -> Result<Product, tonic::Status> {
    client
        .update_product(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn delete(client: &mut CatalogClient, id: &str) -> Result<(), tonic::Status> {
    client
        .delete_product(DeleteProductRequest { id: id.to_owned() })
        .await
        .map(|_| ())
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
fn assert_invalid(
    result: Result<impl std::fmt::Debug, tonic::Status>,
    fields: &[&str],
    case: &str,
) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    assert_eq!(violated_fields(&status), fields, "{case}");
}

// ---------------------------------------------------------------- create / get

#[tokio::test]
async fn a_created_product_is_returned_by_get_with_every_field() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;

    let created = client
        .create_product(CreateProductRequest {
            name: "Laptop".into(),
            description: Some("14 inch, 16 GB".into()),
            price: Some(money("999.99")),
            quantity: 7,
        })
        .await
        .expect("created")
        .into_inner();
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
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;

    let longest_name = "é".repeat(255);
    let largest = client
        .create_product(create_request(&longest_name, Some(money("99999999.99")), 0))
        .await
        .expect("255 characters, the largest price and no stock are valid")
        .into_inner();
    let smallest = client
        .create_product(CreateProductRequest {
            name: "x".into(),
            description: Some(String::new()),
            // An empty currency code means the platform's currency.
            price: Some(Money {
                currency_code: String::new(),
                units: 0,
                nanos: 10_000_000,
            }),
            quantity: i32::MAX,
        })
        .await
        .expect("one character, 0.01, empty currency and i32::MAX stock are valid")
        .into_inner();

    assert_eq!(largest.name, longest_name);
    assert_eq!(largest.price, Some(money("99999999.99")));
    assert_eq!(largest.quantity, 0);
    assert_eq!(smallest.price, Some(money("0.01")));
    assert_eq!(smallest.description.as_deref(), Some(""));
    assert_eq!(smallest.quantity, i32::MAX);
}

#[tokio::test]
async fn get_of_an_unknown_product_is_not_found_naming_its_id() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    let status = get(&mut client, &unknown).await.expect_err("unknown");

    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.message(),
        format!("Product with id {unknown} not found")
    );
    assert_eq!(reason_of(&status), reason::PRODUCT_NOT_FOUND);
}

// -------------------------------------------------------------------- update

#[tokio::test]
async fn an_update_changes_only_the_given_fields() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let original = client
        .create_product(CreateProductRequest {
            name: "Laptop".into(),
            description: Some("the original".into()),
            price: Some(money("999.99")),
            quantity: 7,
        })
        .await
        .expect("created")
        .into_inner();

    let renamed = update(
        &mut client,
        UpdateProductRequest {
            name: Some("Laptop Pro".into()),
            ..update_request(&original.id)
        },
    )
    .await
    .expect("renamed");
    let repriced = update(
        &mut client,
        UpdateProductRequest {
            price: Some(money("1099.50")),
            quantity: Some(3),
            ..update_request(&original.id)
        },
    )
    .await
    .expect("repriced");

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
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let original = create_product(&mut client, "Laptop", "999.99", 7).await;

    let answered = update(&mut client, update_request(&original.id))
        .await
        .expect("an empty update is accepted");

    assert_eq!(answered, original);
    assert_eq!(get(&mut client, &original.id).await.unwrap(), original);
}

#[tokio::test]
async fn a_description_is_set_and_then_cleared() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let original = create_product(&mut client, "Laptop", "999.99", 7).await;
    assert_eq!(original.description, None);

    let described = update(
        &mut client,
        UpdateProductRequest {
            description: Some("now with a description".into()),
            ..update_request(&original.id)
        },
    )
    .await
    .expect("described");
    let cleared = update(
        &mut client,
        UpdateProductRequest {
            clear_description: true,
            ..update_request(&original.id)
        },
    )
    .await
    .expect("cleared");

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
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let original = client
        .create_product(CreateProductRequest {
            name: "Laptop".into(),
            description: Some("kept".into()),
            price: Some(money("999.99")),
            quantity: 7,
        })
        .await
        .expect("created")
        .into_inner();

    let result = update(
        &mut client,
        UpdateProductRequest {
            description: Some("new".into()),
            clear_description: true,
            ..update_request(&original.id)
        },
    )
    .await;

    assert_invalid(result, &["clear_description"], "description + clear");
    assert_eq!(get(&mut client, &original.id).await.unwrap(), original);
}

#[tokio::test]
async fn an_update_of_an_unknown_product_is_not_found() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    let with_fields = update(
        &mut client,
        UpdateProductRequest {
            name: Some("ghost".into()),
            ..update_request(&unknown)
        },
    )
    .await
    .expect_err("unknown");
    let without_fields = update(&mut client, update_request(&unknown))
        .await
        .expect_err("unknown");

    for status in [with_fields, without_fields] {
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(
            status.message(),
            format!("Product with id {unknown} not found")
        );
    }
    assert_eq!(product_count(&mut client).await, 0);
}

#[tokio::test]
async fn an_update_with_invalid_fields_is_refused_naming_each_and_changes_nothing() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let original = create_product(&mut client, "Laptop", "999.99", 7).await;
    let cases: Vec<(&str, UpdateProductRequest, Vec<&str>)> = vec![
        (
            "empty name",
            UpdateProductRequest {
                name: Some(String::new()),
                ..update_request(&original.id)
            },
            vec!["name"],
        ),
        (
            "256-character name",
            UpdateProductRequest {
                name: Some("a".repeat(256)),
                ..update_request(&original.id)
            },
            vec!["name"],
        ),
        (
            "zero price",
            UpdateProductRequest {
                price: Some(money("0")),
                ..update_request(&original.id)
            },
            vec!["price"],
        ),
        (
            "three decimals",
            UpdateProductRequest {
                price: Some(money("1.005")),
                ..update_request(&original.id)
            },
            vec!["price"],
        ),
        (
            "negative quantity",
            UpdateProductRequest {
                quantity: Some(-1),
                ..update_request(&original.id)
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
        let result = update(&mut client, request).await;
        assert_invalid(result, &fields, case);
    }

    assert_eq!(get(&mut client, &original.id).await.unwrap(), original);
}

// -------------------------------------------------------------------- delete

#[tokio::test]
async fn deleting_a_product_without_reservations_succeeds_and_get_is_then_not_found() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let doomed = create_product(&mut client, "Doomed", "5.00", 1).await;
    let kept = create_product(&mut client, "Kept", "5.00", 1).await;

    delete(&mut client, &doomed.id).await.expect("deleted");

    let status = get(&mut client, &doomed.id).await.expect_err("gone");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.message(),
        format!("Product with id {} not found", doomed.id)
    );
    assert_eq!(get(&mut client, &kept.id).await.unwrap(), kept);
    assert_eq!(product_count(&mut client).await, 1);
}

#[tokio::test]
async fn deleting_an_unknown_product_is_not_found() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    create_product(&mut client, "Bystander", "5.00", 1).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    let status = delete(&mut client, &unknown).await.expect_err("unknown");

    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.message(),
        format!("Product with id {unknown} not found")
    );
    assert_eq!(product_count(&mut client).await, 1);
}

#[tokio::test]
async fn deleting_twice_is_not_found_the_second_time() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
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
        ids.push(
            create_product(client, &format!("product {i}"), "1.00", stock(i))
                .await
                .id,
        );
    }
    ids
}

fn ids_of(products: &[Product]) -> Vec<String> {
    products.iter().map(|p| p.id.clone()).collect()
}

#[tokio::test]
async fn list_pages_are_newest_first_with_the_true_total_and_empty_past_the_end() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let mut newest_first = create_products(&mut client, 7, |_| 1).await;
    newest_first.reverse();

    let page1 = list_products(&mut client, 1, 3, None).await.unwrap();
    let page2 = list_products(&mut client, 2, 3, None).await.unwrap();
    let page3 = list_products(&mut client, 3, 3, None).await.unwrap();
    let page4 = list_products(&mut client, 4, 3, None).await.unwrap();
    // The deepest page allowed (offset 10,000, the default MAX_LIST_OFFSET);
    // deeper is refused (see the catalog_* and api_bounds depth tests).
    let far_away = list_products(&mut client, 101, 100, None).await.unwrap();
    assert_invalid(
        list_products(&mut client, u32::MAX, 100, None).await,
        &["page"],
        "page u32::MAX",
    );

    assert_eq!(ids_of(&page1.products), newest_first[0..3]);
    assert_eq!(ids_of(&page2.products), newest_first[3..6]);
    assert_eq!(ids_of(&page3.products), newest_first[6..7]);
    assert!(page4.products.is_empty());
    assert!(far_away.products.is_empty());
    for page in [&page1, &page2, &page3, &page4, &far_away] {
        assert_eq!(page.total, 7);
    }
}

#[tokio::test]
async fn a_list_returns_whole_products() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Laptop", "999.99", 7).await;

    let page = list_products(&mut client, 1, 10, None).await.unwrap();

    assert_eq!(page.products, vec![product]);
    assert_eq!(page.total, 1);
}

#[tokio::test]
async fn walking_every_page_visits_each_product_once_in_newest_first_order() {
    let service = spawn_catalog().await;
    let client = catalog_client(&service).await;
    // Created concurrently: creation times are close and may coincide.
    let creations = (0..23).map(|i| {
        let mut client = client.clone();
        async move { create_product(&mut client, &format!("p{i}"), "1.00", i).await }
    });
    let created = futures::future::join_all(creations).await;
    let mut client = client;

    let mut walked = Vec::new();
    for page in 1..=6 {
        let response = list_products(&mut client, page, 4, None).await.unwrap();
        assert_eq!(response.total, 23);
        walked.extend(response.products);
    }

    let mut expected = created;
    expected.sort_by(|a, b| (created_at(b), &b.id).cmp(&(created_at(a), &a.id)));
    assert_eq!(ids_of(&walked), ids_of(&expected));
}

#[tokio::test]
async fn products_created_at_the_same_instant_are_ordered_by_id_and_pages_never_overlap() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let mut ids = create_products(&mut client, 10, |_| 1).await;
    let mut db = catalog_database(&service).await;
    sqlx::query("UPDATE products SET created_at = '2026-01-01T00:00:00Z'")
        .execute(&mut db)
        .await
        .unwrap();

    let mut walked = Vec::new();
    for page in 1..=4 {
        let response = list_products(&mut client, page, 3, None).await.unwrap();
        assert_eq!(response.total, 10);
        walked.extend(ids_of(&response.products));
    }

    ids.sort();
    ids.reverse();
    assert_eq!(walked, ids, "id descending breaks the tie");
}

#[tokio::test]
async fn the_in_stock_filter_keeps_products_with_stock_or_without() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
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
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Last one", "1.00", 1).await;

    update(
        &mut client,
        UpdateProductRequest {
            quantity: Some(0),
            ..update_request(&product.id)
        },
    )
    .await
    .unwrap();

    let in_stock = list_products(&mut client, 1, 10, Some(true)).await.unwrap();
    let sold_out = list_products(&mut client, 1, 10, Some(false))
        .await
        .unwrap();
    assert_eq!((in_stock.total, in_stock.products.len()), (0, 0));
    assert_eq!(ids_of(&sold_out.products), vec![product.id]);
}

#[tokio::test]
async fn a_bad_page_or_page_size_is_refused_naming_the_field() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
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

#[tokio::test]
async fn a_create_with_a_bad_name_is_refused_naming_the_name_and_writes_nothing() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;

    let cases = [
        ("empty", String::new()),
        ("256 characters", "a".repeat(256)),
        ("256 two-byte characters", "é".repeat(256)),
        ("NUL inside", "lap\0top".to_owned()),
    ];
    for (case, name) in cases {
        let result = client
            .create_product(create_request(&name, Some(money("1.00")), 1))
            .await;
        assert_invalid(result, &["name"], case);
    }

    assert_eq!(product_count(&mut client).await, 0);
}

#[tokio::test]
async fn a_create_with_a_bad_price_is_refused_naming_the_price_and_writes_nothing() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
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
    for (case, price) in cases {
        let result = client
            .create_product(create_request("Laptop", price, 1))
            .await;
        assert_invalid(result, &["price"], case);
    }

    assert_eq!(product_count(&mut client).await, 0);
}

#[tokio::test]
async fn a_create_with_negative_quantity_is_refused_naming_the_quantity_and_writes_nothing() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;

    for quantity in [-1, i32::MIN] {
        let result = client
            .create_product(create_request("Laptop", Some(money("1.00")), quantity))
            .await;
        assert_invalid(result, &["quantity"], &format!("quantity {quantity}"));
    }

    assert_eq!(product_count(&mut client).await, 0);
}

#[tokio::test]
async fn a_create_with_several_bad_fields_names_every_one() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;

    let result = client
        .create_product(CreateProductRequest {
            name: String::new(),
            description: Some("bad\0description".into()),
            price: None,
            quantity: -1,
        })
        .await;

    assert_invalid(
        result,
        &["name", "description", "price", "quantity"],
        "all at once",
    );
    assert_eq!(product_count(&mut client).await, 0);
}

#[tokio::test]
async fn get_update_and_delete_refuse_an_id_that_is_not_a_uuid() {
    let service = spawn_catalog().await;
    let mut client = catalog_client(&service).await;
    let product = create_product(&mut client, "Bystander", "1.00", 1).await;

    for bad in [
        "",
        "42",
        "not-a-uuid",
        "00000000-0000-0000-0000-00000000000g",
    ] {
        assert_invalid(
            get(&mut client, bad).await,
            &["id"],
            &format!("get {bad:?}"),
        );
        assert_invalid(
            update(
                &mut client,
                UpdateProductRequest {
                    name: Some("renamed".into()),
                    ..update_request(bad)
                },
            )
            .await,
            &["id"],
            &format!("update {bad:?}"),
        );
        assert_invalid(
            delete(&mut client, bad).await,
            &["id"],
            &format!("delete {bad:?}"),
        );
    }

    assert_eq!(get(&mut client, &product.id).await.unwrap(), product);
    assert_eq!(product_count(&mut client).await, 1);
}
