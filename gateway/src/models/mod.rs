//! The REST contract's request and response types. Request types are what
//! handlers receive after validation (read with [`crate::input`], so numbers
//! stay exact and every violation names its field); response types serialise
//! the contract's wire format. The OpenAPI document is generated from these
//! same types.

pub mod common;
pub mod orders;
pub mod products;
pub mod webhook;

pub use common::*;
pub use orders::*;
pub use products::*;
pub use webhook::*;
