use super::*;
use crate::{assert_reported, workspace_root};

fn strings(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|v| v.to_string()).collect()
}

fn diagram(id: &str, source: &str) -> Diagram {
    Diagram {
        file: "test.md".into(),
        line: 1,
        id: Some(id.into()),
        source: source.into(),
    }
}

/// A schema and a contract small enough to read at a glance.
fn small_model() -> Model {
    let mut model = Model::default();
    model.add_proto(
        "service Shop {\n  rpc PlaceOrder(PlaceOrderRequest) returns (Ack);\n}\n\
         message PlaceOrderRequest {\n  string item_id = 1; // a comment = 3;\n}\n\
         message Ack {}\nenum Kind {\n  KIND_SMALL = 0;\n}\n",
    );
    model
        .add_migration(
            "shop",
            "-- CREATE TABLE commented_out (x int);\n\
             CREATE TABLE orders (\n    id uuid PRIMARY KEY,\n    status text NOT NULL,\n    \
             paid_state text NOT NULL DEFAULT 'unpaid',\n    \
             CONSTRAINT s CHECK (status IN ('open', 'closed'))\n);\n\
             ALTER TABLE orders ADD COLUMN note_text text;\n\
             ALTER TABLE orders ADD CONSTRAINT p CHECK (paid_state IN ('unpaid', 'paid'));\n",
        )
        .expect("the migration parses");
    model
}

fn find_mut<'a>(diagrams: &'a mut [Diagram], id: &str) -> &'a mut Diagram {
    let found = diagrams.iter_mut().find(|d| d.id.as_deref() == Some(id));
    found.unwrap_or_else(|| panic!("a diagram {id}"))
}

#[test]
fn protos_and_migrations_give_names_states_and_defaults() {
    let model = small_model();
    assert_eq!(model.rpcs, strings(&["PlaceOrder"]));
    assert_eq!(
        model.types,
        strings(&["Shop", "PlaceOrderRequest", "Ack", "Kind"])
    );
    assert_eq!(model.fields, strings(&["item_id"]));
    assert_eq!(model.enum_values, strings(&["KIND_SMALL"]));
    assert_eq!(model.tables_by_database["shop"], strings(&["orders"]));
    assert_eq!(
        model.columns,
        strings(&["id", "status", "paid_state", "note_text"])
    );
    assert_eq!(
        model.stored_values["orders.status"],
        strings(&["open", "closed"])
    );
    assert_eq!(
        model.stored_values["orders.paid_state"],
        strings(&["unpaid", "paid"])
    );
    assert_eq!(model.defaults["orders.paid_state"], "unpaid");
    assert!(!model.defaults.contains_key("orders.status"));
}

#[test]
fn a_diagram_naming_what_does_not_exist_is_reported() {
    let model = small_model();
    let root = Path::new("/nonexistent");
    let good = diagram(
        "good",
        "a->>b: PlaceOrder(item_id), KIND_SMALL, NOT_FOUND\n\
         b->>db: INSERT INTO orders status = 'open', paid_state, ErrorInfo",
    );
    assert_eq!(unknown_names(&good, &model, root), Vec::<String>::new());

    let bad = diagram(
        "bad",
        "a->>b: PlaceOrders(item_ids)\n\
         b->>db: INSERT INTO order_rows status = 'shipped'\n\
         b->>db: KIND_HUGE, see deploy/missing.md",
    );
    let errors = unknown_names(&bad, &model, root).join("\n");
    assert_reported(
        &errors,
        &[
            "test.md:1 bad (test.md:1): `PlaceOrders` is no RPC, service or message",
            "test.md:1 bad (test.md:1): `item_ids` is no table, column or proto field",
            "test.md:2 bad (test.md:1): `order_rows` (after INTO/UPDATE/FROM) is no table",
            "'shipped' is not a stored value of `status`",
            "test.md:3 bad (test.md:1): `KIND_HUGE` is no proto enum value",
            "`deploy/missing.md` does not exist",
        ],
    );
}

#[test]
fn a_state_machine_must_draw_exactly_the_stored_states_and_start_at_the_default() {
    let model = small_model();
    let right = diagram(
        "paid",
        "stateDiagram-v2\n    [*] --> unpaid\n    unpaid --> paid: pay\n    paid --> [*]",
    );
    assert_eq!(
        state_errors(&right, "orders.paid_state", &model),
        Vec::<String>::new()
    );
    let wrong = diagram(
        "paid",
        "stateDiagram-v2\n    [*] --> paid\n    paid --> refunded\n    note right of lost: x",
    );
    let errors = state_errors(&wrong, "orders.paid_state", &model).join("\n");
    assert_reported(
        &errors,
        &[
            "state `unpaid` of orders.paid_state is missing",
            "`refunded` is no state of orders.paid_state",
            "`lost` is no state of orders.paid_state",
            "starts in {\"paid\"}; every row starts in orders.paid_state's default 'unpaid'",
        ],
    );
}

#[test]
fn arrows_are_compared_with_the_codes_moves_starts_and_final_states() {
    let states = strings(&["open", "closed", "void"]);
    let code = Machine {
        initial: strings(&["open"]),
        moves: [("open", "closed"), ("open", "void")]
            .map(|(f, t)| (f.to_owned(), t.to_owned()))
            .into(),
    };
    let right = diagram(
        "m",
        "    [*] --> open: created\n    open --> closed: done\n    open --> void\n\
         \x20   closed --> [*]\n    void --> [*]",
    );
    assert_eq!(machine_errors(&right, &states, &code), Vec::<String>::new());
    let wrong = diagram(
        "m",
        "    [*] --> closed\n    open --> closed\n    closed --> open\n    closed --> [*]",
    );
    let errors = machine_errors(&wrong, &states, &code).join("\n");
    assert_reported(
        &errors,
        &[
            "draws closed --> open, which the code never does",
            "lacks open --> void, which the code does",
            "starts drawn {\"closed\"}, the code creates rows in {\"open\"}",
            "final states drawn {\"closed\"}, the code's are {\"closed\", \"void\"}",
        ],
    );
}

#[test]
fn the_repository_model_reads_the_protos_and_migrations() {
    let model = Model::load(&workspace_root()).expect("the repository's model loads");
    for rpc in [
        "CreateOrder",
        "ApplyPayment",
        "ReserveInventory",
        "ReleaseInventory",
        "CommitInventory",
        "ListProducts",
        "WatchOrderEvents",
    ] {
        assert!(model.rpcs.contains(rpc), "{rpc} in {:?}", model.rpcs);
    }
    assert_eq!(model.rpcs.len(), 15, "{:?}", model.rpcs);
    assert!(model.enum_values.contains("ORDER_STATUS_CANCELED"));
    assert!(model.fields.contains("idempotency_key"));
    assert_eq!(
        model.stored_values["orders.status"],
        strings(&["reserving", "pending", "completed", "canceled", "rejected"])
    );
    assert_eq!(
        model.stored_values["orders.payment_status"],
        strings(&["unpaid", "paid", "failed"])
    );
    assert_eq!(model.defaults["orders.payment_status"], "unpaid");
    assert_eq!(
        model.stored_values["reservations.state"],
        strings(&["held", "released", "committed"])
    );
    assert_eq!(
        model.tables_by_database["order"],
        strings(&[
            "orders",
            "order_items",
            "outbox",
            "idempotency_keys",
            "payment_events",
            "order_events",
            "order_event_sequencer"
        ])
    );
    assert_eq!(
        model.tables_by_database["catalog"],
        strings(&["products", "reservations", "reservation_lines"])
    );
    assert!(model.columns.contains("price_at_purchase"));
    assert!(model.settings.contains("RECONCILE_INTERVAL"));
}

/// The repository's own diagrams, each broken once: every break is found.
#[test]
fn the_checker_finds_wrong_names_and_states_in_the_repositorys_diagrams() {
    let root = workspace_root();
    let model = Model::load(&root).expect("the repository's model loads");
    let mut diagrams = all_diagrams(&root).expect("the diagrams read");
    // Each edit changes the first diagram with its id (the README's, for
    // the architecture).
    let edits = [
        // An RPC that does not exist, a table that does not, a state
        // that does not.
        ("order-create", "ReserveInventory(", "ReserveStock("),
        (
            "order-cancel",
            "INSERT INTO outbox",
            "INSERT INTO outbox_rows",
        ),
        ("order-recovery", "status = 'rejected'", "status = 'failed'"),
        // State machines: a state dropped, one invented, the wrong start.
        ("order-status", "    rejected --> [*]\n", ""),
        (
            "order-status",
            "reserving --> rejected",
            "reserving --> shipped",
        ),
        ("payment-status", "[*] --> unpaid", "[*] --> failed"),
        // The architecture without one RPC.
        ("architecture", "ApplyPayment", "Payment"),
    ];
    for (id, from, to) in edits {
        let d = find_mut(&mut diagrams, id);
        assert!(d.source.contains(from), "{id} contains {from:?}");
        d.source = d.source.replacen(from, to, 1);
    }
    let errors = check(&diagrams, &model, &root).join("\n");
    assert_reported(
        &errors,
        &[
            "`ReserveStock` is no RPC",
            "`outbox_rows` (after INTO/UPDATE/FROM) is no table",
            "'failed' is not a stored value of `status`",
            "`shipped` is no state of orders.status",
            "state `rejected` of orders.status is missing",
            "every row starts in orders.payment_status's default 'unpaid'",
            "RPC `ApplyPayment` is missing",
            "diagram `architecture` differs between",
        ],
    );
}
