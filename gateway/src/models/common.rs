//! Pieces every endpoint shares: money on the wire, pages of results, and
//! the service endpoints' small bodies.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        RefOr, Schema,
        schema::{ObjectBuilder, OneOfBuilder, Type},
    },
};

/// The documented form of money sent as a string: > 0, at most 8 integer
/// digits, at most two fractional digits that are not trailing zeros.
/// (The gateway also reads exponents, `"1e2"`; the document keeps to the
/// plain form.)
pub const MONEY_STRING_PATTERN: &str =
    r"^([1-9][0-9]{0,7}(\.[0-9]{1,2}0*)?|0\.(0[1-9]|[1-9][0-9]?)0*)$";

/// Money as requests may send it: a JSON number or a string holding one
/// (`999.99` or `"999.99"`), read exactly, never through a binary float.
/// Greater than 0, at most two fractional digits, at most 99999999.99.
/// Only documents the wire format; handlers receive a `Decimal`.
pub struct MoneyInput;

impl PartialSchema for MoneyInput {
    fn schema() -> RefOr<Schema> {
        let description = "An exact decimal amount, > 0, at most two fractional digits \
                           (trailing zeros do not count), at most 99999999.99; sent as a \
                           JSON number or a string. Read exactly: never through a binary float.";
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .exclusive_minimum(Some(0))
                    .maximum(Some(99_999_999.99))
                    // Whole cents; validators may check this in binary
                    // floating point, the gateway never does.
                    .multiple_of(Some(0.01))
                    .description(Some("As a JSON number (its digits are read exactly).")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    // > 0, at most 8 integer digits, at most two fractional
                    // digits that are not trailing zeros.
                    .pattern(Some(MONEY_STRING_PATTERN))
                    .description(Some("As a string holding a decimal number."))
                    .examples([serde_json::json!("999.99")]),
            )
            .description(Some(description))
            .into()
    }
}

impl ToSchema for MoneyInput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("MoneyInput")
    }
}

/// Money as responses write it: a string with exactly two decimals.
pub struct MoneyOutput;

impl PartialSchema for MoneyOutput {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^-?[0-9]+\.[0-9]{2}$"))
            .description(Some(
                "An exact decimal amount written with exactly two fractional digits.",
            ))
            .examples([serde_json::json!("999.99")])
            .into()
    }
}

impl ToSchema for MoneyOutput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Money")
    }
}

/// Defines a page of results: the items, and where they stand among all
/// that match the query (whose `page` and `page_size` it answers). The doc
/// comments given become the schema's descriptions (of the page, then of
/// `total`).
macro_rules! page {
    ($(#[$doc:meta])* $page:ident of $item:ident for $query:ident, $(#[$total_doc:meta])*) => {
        $(#[$doc])*
        #[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
        pub struct $page {
            pub items: Vec<$item>,
            $(#[$total_doc])*
            #[schema(example = 57)]
            pub total: u64,
            #[schema(example = 1)]
            pub page: u32,
            #[schema(example = 20)]
            pub page_size: u32,
            /// ceil(total / page_size); 0 when total is 0.
            #[schema(example = 3)]
            pub total_pages: u64,
        }

        impl $page {
            /// The page `query` asked for, from the service's answer: its
            /// items (each converted; a malformed one is a 500) and the total.
            pub fn from_wire<W>(
                items: Vec<W>,
                total: u64,
                query: &$query,
            ) -> Result<Self, crate::http::error::ApiError>
            where
                $item: TryFrom<W, Error = crate::http::error::ApiError>,
            {
                let (page, page_size) = (query.page, query.page_size);
                Ok(Self {
                    items: items
                        .into_iter()
                        .map($item::try_from)
                        .collect::<Result<_, _>>()?,
                    total,
                    page,
                    page_size,
                    total_pages: proto::paging::total_pages(total, page_size),
                })
            }
        }
    };
}
pub(crate) use page;

/// The contract's money text: `"999.90"`.
pub fn money_text(amount: Decimal) -> String {
    proto::money::format_2dp(amount)
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "healthy")]
    pub status: &'static str,
}

/// `GET /ready` while this gateway serves (it is not draining), whatever
/// its services' state: a service that is down takes only the operations
/// that need it off (503 `BACKEND_UNAVAILABLE`), never the whole gateway.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "backends": {"catalog": "up", "order": "down"}}))]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Each service's state: `up` when it answers SERVING on
    /// `grpc.health.v1`, `down` otherwise (unreachable, not serving, or no
    /// answer within a second).
    pub backends: std::collections::BTreeMap<&'static str, BackendState>,
}

/// A service's state as `/ready` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendState {
    Up,
    Down,
}

/// `GET /`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceInfo {
    #[schema(example = "E-commerce API")]
    pub name: &'static str,
    #[schema(example = "0.1.0")]
    pub version: &'static str,
    #[schema(example = "running")]
    pub status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::money;

    proptest::proptest! {
        #[test]
        fn every_documented_money_string_is_accepted(
            text in proptest::string::string_regex(
                MONEY_STRING_PATTERN.trim_start_matches('^').trim_end_matches('$'),
            ).unwrap(),
        ) {
            proptest::prop_assert!(money::parse_price(&text).is_ok(), "{}", text);
        }
    }
}
