//! The catalog's rules as plain types and functions: no I/O, so every rule is
//! unit-tested without a database.
//!
//! - [`product`]: what a valid product, product change and page request are.
//! - [`reservation`]: how a reservation request is normalised and judged
//!   against current stock (all or nothing), and how a repeated request is
//!   recognised.

pub mod product;
pub mod reservation;
