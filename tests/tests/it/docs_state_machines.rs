//! The state diagrams (`deploy/docs/state-machines.md`) draw what the code
//! does: every arrow is a move the code makes and every move is an arrow,
//! `[*] -->` the states rows are created in, `--> [*]` the states the code
//! never leaves. (Their states and names against the schema and the protos
//! are `cargo xtask check`.)
//!
//! The code's machines: orders and payments from the status rules
//! themselves (`order_service::domain::status::transition`,
//! `payment::payment_transition`), reservations by driving a real catalog
//! through every sequence of up to three calls and reading the state each
//! call leaves; where rows start, by reading what CreateOrder inserts while
//! its reservation's answer is held back.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use order_service::domain::{
    OrderStatus, PaymentStatus, StatusChange, payment::payment_transition, status::transition,
};
use tests::{
    catalog::{CatalogClient, catalog_database, commit, create_product, release, reserve},
    order::{ProxyMode, World, create_order, orders_database, world_with},
};
use xtask::diagrams::{EXPECTED, Machine, Model, all_diagrams, find, machine_errors};

fn moves(pairs: impl Iterator<Item = (&'static str, &'static str)>) -> BTreeSet<(String, String)> {
    pairs.map(|(f, t)| (f.to_owned(), t.to_owned())).collect()
}

/// Every pair of order statuses the status rules change (not "unchanged").
fn order_status_moves() -> BTreeSet<(String, String)> {
    let all = OrderStatus::ALL;
    moves(all.iter().flat_map(|&from| {
        all.iter()
            .filter(move |&&to| matches!(transition(from, to), Ok(StatusChange::Changed(_))))
            .map(move |to| (from.as_str(), to.as_str()))
    }))
}

/// Every pair of payment statuses the payment rules change.
fn payment_status_moves() -> BTreeSet<(String, String)> {
    let all = PaymentStatus::ALL;
    moves(all.iter().flat_map(|&from| {
        all.iter()
            .filter(move |&&to| payment_transition(from, to) == Ok(true))
            .map(move |to| (from.as_str(), to.as_str()))
    }))
}

/// `(status, payment_status)` of an order as CreateOrder first stores it,
/// read while its reservation's answer is held back.
async fn order_row_at_creation(w: &mut World) -> (String, String) {
    let product = create_product(&mut w.catalog_client, "Watched", "1.00", 10).await;
    let warm = create_order(&mut w.client, 1, &[(&product.id, 1)], None)
        .await
        .expect("the channel is warm");
    w.proxy.set(ProxyMode::Stall);
    let mut client = w.client.clone();
    let saga =
        tokio::spawn(async move { create_order(&mut client, 1, &[(&product.id, 1)], None).await });
    let mut db = orders_database(&w.orders.service).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let row = loop {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT status, payment_status FROM orders WHERE id <> $1::uuid")
                .bind(&warm.id)
                .fetch_optional(&mut db)
                .await
                .unwrap();
        if let Some(row) = row {
            break row;
        }
        assert!(Instant::now() < deadline, "CreateOrder stored no order");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    w.proxy.set(ProxyMode::Up);
    saga.await.unwrap().expect("the order goes through");
    row
}

/// The calls a reservation can get.
#[derive(Debug, Clone, Copy)]
enum Call {
    Reserve,
    /// More than the stock: refused.
    ReserveTooMuch,
    Release,
    Commit,
}

impl Call {
    const ALL: [Call; 4] = [
        Call::Reserve,
        Call::ReserveTooMuch,
        Call::Release,
        Call::Commit,
    ];

    /// Sends the call; its answer does not matter, only the state it leaves.
    async fn send(self, client: &mut CatalogClient, id: &str, product: &str) {
        let _ = match self {
            Call::Reserve => reserve(client, id, &[(product, 1)]).await.map(|_| true),
            Call::ReserveTooMuch => reserve(client, id, &[(product, 1_000_000)])
                .await
                .map(|_| true),
            Call::Release => release(client, id).await,
            Call::Commit => commit(client, id).await,
        };
    }
}

/// The reservation's stored state, if it has a row.
async fn stored_state(db: &mut sqlx::PgConnection, id: &str) -> Option<String> {
    let state = sqlx::query_scalar("SELECT state FROM reservations WHERE id = $1::uuid").bind(id);
    state
        .fetch_optional(db)
        .await
        .expect("reservations readable")
}

/// The catalog's reservation machine, as observed: every sequence of up to
/// three calls on a new reservation id, the stored state read after each.
async fn reservation_machine(w: &mut World) -> Machine {
    let product = create_product(&mut w.catalog_client, "Explored", "1.00", 1_000).await;
    let mut db = catalog_database(&w.catalog).await;
    // Every sequence of three calls (its prefixes are observed on the way).
    let mut sequences: Vec<Vec<Call>> = vec![Vec::new()];
    for _ in 0..3 {
        sequences = sequences
            .iter()
            .flat_map(|sequence| Call::ALL.map(|call| [sequence.as_slice(), &[call]].concat()))
            .collect();
    }
    let mut machine = Machine::default();
    for sequence in &sequences {
        let id = uuid::Uuid::new_v4().to_string();
        let mut before: Option<String> = None;
        for call in sequence {
            call.send(&mut w.catalog_client, &id, &product.id).await;
            let after = stored_state(&mut db, &id).await;
            match (&before, &after) {
                (None, Some(state)) => {
                    machine.initial.insert(state.clone());
                }
                (Some(from), Some(to)) if from != to => {
                    machine.moves.insert((from.clone(), to.clone()));
                }
                (Some(from), None) => panic!("{sequence:?}: a {from} reservation disappeared"),
                _ => {}
            }
            before = after;
        }
    }
    machine
}

#[tokio::test]
async fn every_state_diagram_draws_the_moves_the_code_makes() {
    let root = xtask::workspace_root();
    let model = Model::load(&root).expect("the protos and migrations read");
    let diagrams = all_diagrams(&root).expect("the diagrams read");
    // A long deadline: the order's reservation waits for its held answer.
    let mut w = world_with(|config| config.grpc_timeout = std::time::Duration::from_secs(10)).await;
    let (status, payment_status) = order_row_at_creation(&mut w).await;

    let mut errors = Vec::new();
    for expected in EXPECTED {
        let Some(table_column) = expected.states_of else {
            continue;
        };
        let code = match table_column {
            "orders.status" => Machine {
                initial: BTreeSet::from([status.clone()]),
                moves: order_status_moves(),
            },
            "orders.payment_status" => Machine {
                initial: BTreeSet::from([payment_status.clone()]),
                moves: payment_status_moves(),
            },
            "reservations.state" => reservation_machine(&mut w).await,
            other => panic!("no code machine known for {other}: observe it here"),
        };
        assert!(
            !code.initial.is_empty() && !code.moves.is_empty(),
            "{table_column}: nothing observed: {code:?}"
        );
        let diagram =
            find(&diagrams, expected.id).unwrap_or_else(|| panic!("no diagram {}", expected.id));
        errors.extend(machine_errors(
            diagram,
            &model.stored_values[table_column],
            &code,
        ));
    }
    assert!(
        errors.is_empty(),
        "{} problem(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}
