//! Who may do what: API keys and the rights they hold ([`api_keys`]), the
//! access rule of every operation and the guard enforcing it ([`access`]),
//! and payment webhook signatures ([`signature`] for the algorithms,
//! [`webhook`] for reading them off a delivery).

pub mod access;
pub mod api_keys;
pub mod signature;
pub mod webhook;
