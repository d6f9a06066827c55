//! A CreateOrder request, validated and normalised, and the hash that an
//! idempotency key is checked against.

use std::collections::BTreeMap;

use proto::errors::Violation;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Longest idempotency key accepted (the column allows the same).
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// One line as the caller sent it, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawItem {
    pub product_id: String,
    pub quantity: i32,
}

/// One product of a valid request: lines of the same product are summed, as
/// the catalog does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrderItem {
    pub product_id: Uuid,
    pub quantity: i32,
}

/// A valid CreateOrder request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub customer_id: i64,
    /// One item per product, ordered by product id.
    pub items: Vec<NewOrderItem>,
    pub idempotency_key: Option<String>,
}

impl NewOrder {
    /// Checks every field and reports every problem at once, with field names
    /// as the caller spelled them (`items[1].quantity`).
    pub fn parse(
        customer_id: i64,
        items: &[RawItem],
        idempotency_key: Option<String>,
    ) -> Result<Self, Vec<Violation>> {
        let mut violations = Vec::new();
        if customer_id <= 0 {
            violations.push(Violation::new("customer_id", "must be greater than 0"));
        }
        if items.is_empty() {
            violations.push(Violation::new("items", "must contain at least one item"));
        }
        let mut merged: BTreeMap<Uuid, i32> = BTreeMap::new();
        for (index, item) in items.iter().enumerate() {
            let product_id = match Uuid::try_parse(&item.product_id) {
                Ok(id) => Some(id),
                Err(_) => {
                    violations.push(Violation::new(
                        format!("items[{index}].product_id"),
                        "must be a UUID",
                    ));
                    None
                }
            };
            if item.quantity <= 0 {
                violations.push(Violation::new(
                    format!("items[{index}].quantity"),
                    "must be greater than 0",
                ));
                continue;
            }
            if let Some(product_id) = product_id {
                let total = merged.entry(product_id).or_insert(0);
                match total.checked_add(item.quantity) {
                    Some(sum) => *total = sum,
                    None => violations.push(Violation::new(
                        format!("items[{index}].quantity"),
                        "the total quantity of this product is too large",
                    )),
                }
            }
        }
        if let Some(key) = &idempotency_key {
            let chars = key.chars().count();
            if chars == 0 || chars > MAX_IDEMPOTENCY_KEY_CHARS {
                violations.push(Violation::new(
                    "idempotency_key",
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
                ));
            }
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(Self {
            customer_id,
            items: merged
                .into_iter()
                .map(|(product_id, quantity)| NewOrderItem {
                    product_id,
                    quantity,
                })
                .collect(),
            idempotency_key,
        })
    }

    /// A digest of what the request asks for (customer and normalised items,
    /// not the key), so that "the same request again" means the same order
    /// whatever the line order or splitting, and anything else is a mismatch.
    pub fn request_hash(&self) -> String {
        let mut hasher = Sha256::new();
        // Versioned, so the canonical form can change without false matches.
        hasher.update(b"create-order/v1\n");
        hasher.update(self.customer_id.to_string().as_bytes());
        for item in &self.items {
            hasher
                .update(format!("\n{}:{}", item.product_id.hyphenated(), item.quantity).as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0190a0b0-0000-7000-8000-00000000000a";
    const B: &str = "0190a0b0-0000-7000-8000-00000000000b";

    fn item(product_id: &str, quantity: i32) -> RawItem {
        RawItem {
            product_id: product_id.to_owned(),
            quantity,
        }
    }

    fn fields(violations: &[Violation]) -> Vec<&str> {
        violations.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn a_valid_request_is_normalised() {
        let order =
            NewOrder::parse(7, &[item(B, 1), item(A, 2), item(B, 3)], Some("k".into())).unwrap();
        assert_eq!(order.customer_id, 7);
        assert_eq!(
            order.items,
            vec![
                NewOrderItem {
                    product_id: A.parse().unwrap(),
                    quantity: 2
                },
                NewOrderItem {
                    product_id: B.parse().unwrap(),
                    quantity: 4
                },
            ]
        );
        assert_eq!(order.idempotency_key.as_deref(), Some("k"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let violations = NewOrder::parse(
            0,
            &[item("not-a-uuid", 1), item(A, 0), item(B, -1)],
            Some(String::new()),
        )
        .unwrap_err();
        assert_eq!(
            fields(&violations),
            vec![
                "customer_id",
                "items[0].product_id",
                "items[1].quantity",
                "items[2].quantity",
                "idempotency_key"
            ]
        );
    }

    #[test]
    fn no_items_and_negative_customers_are_refused() {
        let violations = NewOrder::parse(-5, &[], None).unwrap_err();
        assert_eq!(fields(&violations), vec!["customer_id", "items"]);
    }

    #[test]
    fn idempotency_keys_are_limited_to_255_characters() {
        let ok = "é".repeat(255);
        assert!(NewOrder::parse(1, &[item(A, 1)], Some(ok)).is_ok());
        let too_long = "k".repeat(256);
        let violations = NewOrder::parse(1, &[item(A, 1)], Some(too_long)).unwrap_err();
        assert_eq!(fields(&violations), vec!["idempotency_key"]);
    }

    #[test]
    fn quantities_that_overflow_when_summed_are_refused() {
        let violations = NewOrder::parse(1, &[item(A, i32::MAX), item(A, 1)], None).unwrap_err();
        assert_eq!(fields(&violations), vec!["items[1].quantity"]);
    }

    #[test]
    fn upper_case_uuids_are_the_same_product() {
        let lower = NewOrder::parse(1, &[item(A, 1)], None).unwrap();
        let upper = NewOrder::parse(1, &[item(&A.to_uppercase(), 1)], None).unwrap();
        assert_eq!(lower.request_hash(), upper.request_hash());
    }

    #[test]
    fn the_hash_ignores_line_order_splitting_and_the_key() {
        let one = NewOrder::parse(1, &[item(A, 2), item(B, 1)], Some("x".into())).unwrap();
        let two =
            NewOrder::parse(1, &[item(B, 1), item(A, 1), item(A, 1)], Some("y".into())).unwrap();
        assert_eq!(one.request_hash(), two.request_hash());
        assert_eq!(one.request_hash().len(), 64);
    }

    #[test]
    fn the_hash_tells_different_requests_apart() {
        let base = NewOrder::parse(1, &[item(A, 2)], None)
            .unwrap()
            .request_hash();
        for other in [
            NewOrder::parse(2, &[item(A, 2)], None).unwrap(),
            NewOrder::parse(1, &[item(A, 3)], None).unwrap(),
            NewOrder::parse(1, &[item(B, 2)], None).unwrap(),
            NewOrder::parse(1, &[item(A, 2), item(B, 1)], None).unwrap(),
        ] {
            assert_ne!(other.request_hash(), base, "{other:?}");
        }
    }
}
