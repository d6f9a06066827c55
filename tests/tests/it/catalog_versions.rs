//! Product versions and conditional writes over real gRPC against a real
//! PostgreSQL (issue 15): a product starts at version 1, every change of its
//! row bumps it (an update, stock taken by a reservation and given back by a
//! release, an operator's SQL), and `expected_version` on UpdateProduct and
//! DeleteProduct writes only while it is still the product's version: a
//! stale one is FAILED_PRECONDITION / VERSION_MISMATCH with the current
//! version, and changes nothing, even against a concurrent writer.

use proto::{
    catalog::v1::{DeleteProductRequest, Product, UpdateProductRequest},
    errors::{meta, reason},
};
use tests::catalog::{
    CatalogClient, catalog, catalog_database, create_product, metadata_of, money, reason_of,
    release, reserve,
};
use tonic::{Code, Status};

use tests::catalog::get_product as get;

/// UpdateProduct renaming `id` to `name`, conditioned on `expected_version`.
async fn rename(
    client: &mut CatalogClient,
    id: &str,
    name: &str,
    expected_version: Option<i64>,
) -> Result<Product, Status> {
    let request = UpdateProductRequest {
        id: id.to_owned(),
        name: Some(name.to_owned()),
        expected_version,
        ..Default::default()
    };
    Ok(client.update_product(request).await?.into_inner())
}

async fn delete(
    client: &mut CatalogClient,
    id: &str,
    expected_version: Option<i64>,
) -> Result<(), Status> {
    let request = DeleteProductRequest {
        id: id.to_owned(),
        expected_version,
    };
    client.delete_product(request).await.map(drop)
}

/// Asserts the refusal of a stale `expected_version`, naming `current`.
#[track_caller]
fn assert_mismatch(refused: &Status, current: i64) {
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason_of(refused), reason::VERSION_MISMATCH);
    assert_eq!(
        metadata_of(refused, meta::CURRENT_VERSION),
        current.to_string()
    );
}

#[tokio::test]
async fn a_product_starts_at_version_1_and_every_update_bumps_it() {
    let (_catalog, mut client) = catalog().await;
    let product = create_product(&mut client, "Lamp", "20.00", 5).await;
    assert_eq!(product.version, 1);
    assert_eq!(get(&mut client, &product.id).await.unwrap().version, 1);

    let renamed = rename(&mut client, &product.id, "Desk lamp", None)
        .await
        .unwrap();
    assert_eq!(renamed.version, 2);
    let restocked = client
        .update_product(UpdateProductRequest {
            id: product.id.clone(),
            quantity: Some(9),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restocked.version, 3);
    assert_eq!(get(&mut client, &product.id).await.unwrap(), restocked);

    // An update that sets nothing writes nothing: same version.
    let nothing = client
        .update_product(UpdateProductRequest {
            id: product.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(nothing, restocked);
}

#[tokio::test]
async fn an_update_with_the_current_version_succeeds_and_bumps_it() {
    let (_catalog, mut client) = catalog().await;
    let product = create_product(&mut client, "Lamp", "20.00", 5).await;
    let renamed = rename(&mut client, &product.id, "Desk lamp", Some(1))
        .await
        .unwrap();
    assert_eq!((renamed.name.as_str(), renamed.version), ("Desk lamp", 2));
    let again = rename(&mut client, &product.id, "Floor lamp", Some(2))
        .await
        .unwrap();
    assert_eq!((again.name.as_str(), again.version), ("Floor lamp", 3));
    // An empty update checks the version too (and writes nothing).
    let empty = UpdateProductRequest {
        id: product.id.clone(),
        expected_version: Some(3),
        ..Default::default()
    };
    let unchanged = client.update_product(empty.clone()).await.unwrap();
    assert_eq!(unchanged.into_inner(), again);
    let stale = UpdateProductRequest {
        expected_version: Some(2),
        ..empty
    };
    assert_mismatch(&client.update_product(stale).await.unwrap_err(), 3);
}

#[tokio::test]
async fn a_stale_version_changes_nothing_and_names_the_current_one() {
    let (_catalog, mut client) = catalog().await;
    let product = create_product(&mut client, "Lamp", "20.00", 5).await;
    let current = rename(&mut client, &product.id, "Desk lamp", None)
        .await
        .unwrap();
    assert_eq!(current.version, 2);

    // Read at version 1, written after someone else's change: refused.
    let refused = rename(&mut client, &product.id, "Lost update", Some(1))
        .await
        .unwrap_err();
    assert_mismatch(&refused, 2);
    assert_eq!(
        refused.message(),
        format!(
            "Product {} has changed: its version is 2, not 1",
            product.id
        )
    );
    // A stock change is refused the same way (it takes the row lock first).
    let restock = UpdateProductRequest {
        id: product.id.clone(),
        quantity: Some(100),
        expected_version: Some(1),
        ..Default::default()
    };
    assert_mismatch(&client.update_product(restock).await.unwrap_err(), 2);
    // A version never reached, and 0 (versions start at 1), never match.
    for never in [0, 3, -1] {
        let refused = rename(&mut client, &product.id, "x", Some(never))
            .await
            .unwrap_err();
        assert_mismatch(&refused, 2);
    }
    assert_eq!(get(&mut client, &product.id).await.unwrap(), current);

    // A delete with a stale version deletes nothing; with the current one,
    // it deletes.
    assert_mismatch(
        &delete(&mut client, &product.id, Some(1)).await.unwrap_err(),
        2,
    );
    assert_eq!(get(&mut client, &product.id).await.unwrap(), current);
    delete(&mut client, &product.id, Some(2)).await.unwrap();
    let gone = get(&mut client, &product.id).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn a_missing_product_is_not_found_whatever_the_expected_version() {
    let (_catalog, mut client) = catalog().await;
    let missing = uuid::Uuid::new_v4().to_string();
    for expected in [None, Some(1)] {
        let refused = rename(&mut client, &missing, "x", expected)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
        let refused = delete(&mut client, &missing, expected).await.unwrap_err();
        assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    }
}

#[tokio::test]
async fn reserving_and_releasing_stock_bumps_the_version() {
    let (_catalog, mut client) = catalog().await;
    let a = create_product(&mut client, "A", "1.00", 10).await;
    let b = create_product(&mut client, "B", "2.00", 10).await;
    let untouched = create_product(&mut client, "C", "3.00", 10).await;

    let reservation = uuid::Uuid::new_v4().to_string();
    reserve(
        &mut client,
        &reservation,
        &[(a.id.as_str(), 3), (b.id.as_str(), 1)],
    )
    .await
    .unwrap();
    let (a_taken, b_taken) = (
        get(&mut client, &a.id).await.unwrap(),
        get(&mut client, &b.id).await.unwrap(),
    );
    assert_eq!((a_taken.quantity, a_taken.version), (7, 2));
    assert_eq!((b_taken.quantity, b_taken.version), (9, 2));
    // A write conditioned on the version read before the order is refused:
    // it would overwrite the stock the order took.
    let stale = UpdateProductRequest {
        id: a.id.clone(),
        quantity: Some(10),
        expected_version: Some(1),
        ..Default::default()
    };
    assert_mismatch(&client.update_product(stale).await.unwrap_err(), 2);

    // A replay of the same reservation moves no stock: no new version.
    reserve(
        &mut client,
        &reservation,
        &[(a.id.as_str(), 3), (b.id.as_str(), 1)],
    )
    .await
    .unwrap();
    assert_eq!(get(&mut client, &a.id).await.unwrap().version, 2);

    assert!(release(&mut client, &reservation).await.unwrap());
    let (a_back, b_back) = (
        get(&mut client, &a.id).await.unwrap(),
        get(&mut client, &b.id).await.unwrap(),
    );
    assert_eq!((a_back.quantity, a_back.version), (10, 3));
    assert_eq!((b_back.quantity, b_back.version), (10, 3));
    // Released once: a second release moves nothing, bumps nothing.
    assert!(!release(&mut client, &reservation).await.unwrap());
    assert_eq!(get(&mut client, &a.id).await.unwrap().version, 3);
    assert_eq!(get(&mut client, &untouched.id).await.unwrap().version, 1);
}

#[tokio::test]
async fn a_change_made_in_sql_bumps_the_version_and_a_no_op_does_not() {
    let (catalog, mut client) = catalog().await;
    let product = create_product(&mut client, "Lamp", "20.00", 5).await;
    let mut db = catalog_database(&catalog).await;
    let run = |sql: &'static str| sqlx::query(sql).bind(product.id.as_str());
    // An operator's fix: the trigger bumps the version, whatever the
    // statement says about it.
    run("UPDATE products SET quantity = 6, version = 1 WHERE id = $1::uuid")
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(get(&mut client, &product.id).await.unwrap().version, 2);
    // Writing the values the row already has changes nothing.
    run("UPDATE products SET quantity = quantity WHERE id = $1::uuid")
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(get(&mut client, &product.id).await.unwrap().version, 2);
}

#[tokio::test]
async fn of_concurrent_writers_with_the_same_version_exactly_one_wins() {
    let (catalog, mut client) = catalog().await;
    let product = create_product(&mut client, "Lamp", "20.00", 5).await;
    let writers = 8;
    let mut tasks = Vec::new();
    for i in 0..writers {
        let mut client = tests::catalog::catalog_client(&catalog).await;
        let id = product.id.clone();
        tasks.push(tokio::spawn(async move {
            let request = UpdateProductRequest {
                id,
                price: Some(money(&format!("{}.00", 30 + i))),
                quantity: Some(i),
                expected_version: Some(1),
                ..Default::default()
            };
            client.update_product(request).await.map(|r| r.into_inner())
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(product) => winners.push(product),
            Err(refused) => assert_mismatch(&refused, 2),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one write of version 1 wins");
    assert_eq!(winners[0].version, 2);
    assert_eq!(get(&mut client, &product.id).await.unwrap(), winners[0]);
}
