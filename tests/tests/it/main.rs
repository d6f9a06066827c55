//! The integration tests, one binary: every module is an area (`api_*`: the
//! gateway over HTTP; `catalog_*`, `order_*`: the services over gRPC; `ops_*`,
//! `fault_*`, `chaos_*`: the real binaries as processes; `db_*`: the database
//! plumbing; `docs_*`: the documentation against the running code). One
//! binary links the workspace once instead of once per file; nextest still
//! runs every test in a process of its own. Pick an area with
//! `-E 'test(/^chaos_cancel::/)'`. What needs no running code (the diagrams'
//! names, the dashboard's structure) is `cargo xtask check`.

mod api_auth;
mod api_bounds;
mod api_fail_closed;
mod api_load_shedding;
mod api_malformed;
mod api_orders;
mod api_problem_types;
mod api_product_cache;
mod api_product_etags;
mod api_products;
mod api_service;
mod api_webhook;
mod catalog_group_commit;
mod catalog_products;
mod catalog_reservations;
mod catalog_versions;
mod chaos_cancel;
mod db_release_guard;
mod db_tls;
mod docs_api;
mod docs_state_machines;
mod fault_recovery;
mod grpc_mtls;
mod grpc_reflection;
mod ops_balancing;
mod ops_binaries;
mod ops_dashboard;
mod ops_drain;
mod ops_metrics;
mod ops_semconv;
mod ops_tracing;
mod order_events;
mod order_expiry;
mod order_failures;
mod order_idempotency;
mod order_lifecycle;
mod order_payments;
mod order_races;
mod secrets_in_logs;
