//! A CreateOrder request, validated and normalised, and the hash that an
//! idempotency key is checked against.
//!
//! The number of lines is bounded (`MAX_ORDER_LINES`): every line costs a
//! locked product row in the catalog's reservation, an order_items row and
//! its share of every later read of the order, so one request must not be
//! able to ask for an unbounded amount of that work. This rule is the
//! authority; the gateway's body limit only keeps absurd bodies from
//! reaching it.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Violation;

/// Longest idempotency key accepted (the column allows the same).
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// Most lines one order may have unless configured otherwise
/// (`MAX_ORDER_LINES`).
pub const DEFAULT_MAX_ORDER_LINES: usize = 100;

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
    /// as the caller spelled them (`items[1].quantity`). At most `max_lines`
    /// lines, counted as sent (before lines of one product are merged): more
    /// is refused on `items`, naming the limit, and the lines themselves are
    /// then not examined, so the refusal stays small.
    pub fn parse(
        customer_id: i64,
        items: &[RawItem],
        idempotency_key: Option<String>,
        max_lines: usize,
    ) -> Result<Self, Vec<Violation>> {
        let mut violations = Vec::new();
        if customer_id <= 0 {
            violations.push(Violation::new("customer_id", "must be greater than 0"));
        }
        if items.is_empty() {
            violations.push(Violation::new("items", "must contain at least one item"));
        }
        let too_many = items.len() > max_lines;
        if too_many {
            violations.push(Violation::new(
                "items",
                format!(
                    "must have at most {max_lines} lines (got {}); split the order",
                    items.len()
                ),
            ));
        }
        let mut merged: BTreeMap<Uuid, i32> = BTreeMap::new();
        let examined = if too_many { &[][..] } else { items };
        for (index, item) in examined.iter().enumerate() {
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

    /// With the default line limit.
    fn parse(
        customer_id: i64,
        items: &[RawItem],
        idempotency_key: Option<String>,
    ) -> Result<NewOrder, Vec<Violation>> {
        NewOrder::parse(customer_id, items, idempotency_key, DEFAULT_MAX_ORDER_LINES)
    }

    #[test]
    fn a_valid_request_is_normalised() {
        let order = parse(7, &[item(B, 1), item(A, 2), item(B, 3)], Some("k".into())).unwrap();
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
        let violations = parse(
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
        let violations = parse(-5, &[], None).unwrap_err();
        assert_eq!(fields(&violations), vec!["customer_id", "items"]);
    }

    #[test]
    fn idempotency_keys_are_limited_to_255_characters() {
        let ok = "é".repeat(255);
        assert!(parse(1, &[item(A, 1)], Some(ok)).is_ok());
        let too_long = "k".repeat(256);
        let violations = parse(1, &[item(A, 1)], Some(too_long)).unwrap_err();
        assert_eq!(fields(&violations), vec!["idempotency_key"]);
    }

    #[test]
    fn quantities_that_overflow_when_summed_are_refused() {
        let violations = parse(1, &[item(A, i32::MAX), item(A, 1)], None).unwrap_err();
        assert_eq!(fields(&violations), vec!["items[1].quantity"]);
    }

    #[test]
    fn upper_case_uuids_are_the_same_product() {
        let lower = parse(1, &[item(A, 1)], None).unwrap();
        let upper = parse(1, &[item(&A.to_uppercase(), 1)], None).unwrap();
        assert_eq!(lower.request_hash(), upper.request_hash());
    }

    #[test]
    fn the_hash_ignores_line_order_splitting_and_the_key() {
        let one = parse(1, &[item(A, 2), item(B, 1)], Some("x".into())).unwrap();
        let two = parse(1, &[item(B, 1), item(A, 1), item(A, 1)], Some("y".into())).unwrap();
        assert_eq!(one.request_hash(), two.request_hash());
        assert_eq!(one.request_hash().len(), 64);
    }

    #[test]
    fn the_hash_tells_different_requests_apart() {
        let base = parse(1, &[item(A, 2)], None).unwrap().request_hash();
        for other in [
            parse(2, &[item(A, 2)], None).unwrap(),
            parse(1, &[item(A, 3)], None).unwrap(),
            parse(1, &[item(B, 2)], None).unwrap(),
            parse(1, &[item(A, 2), item(B, 1)], None).unwrap(),
        ] {
            assert_ne!(other.request_hash(), base, "{other:?}");
        }
    }

    #[test]
    fn at_most_the_configured_number_of_lines() {
        let distinct = |n: usize| -> Vec<RawItem> {
            (0..n)
                .map(|i| item(&Uuid::from_u128(i as u128 + 1).to_string(), 1))
                .collect()
        };
        let order = parse(1, &distinct(100), None).unwrap();
        assert_eq!(order.items.len(), 100);
        for n in [101, 1_000] {
            let violations = parse(1, &distinct(n), None).unwrap_err();
            assert_eq!(fields(&violations), vec!["items"], "{n} lines");
            let message = &violations[0].message;
            assert!(message.contains("at most 100 lines"), "{message}");
            assert!(message.contains(&format!("got {n}")), "{message}");
        }
        // Lines are counted as sent: repeating one product does not get round it.
        let same: Vec<RawItem> = (0..101).map(|_| item(A, 1)).collect();
        assert_eq!(fields(&parse(1, &same, None).unwrap_err()), vec!["items"]);
        // Over the limit, the lines are not examined (the answer stays small),
        // other fields still are.
        let bad: Vec<RawItem> = (0..500).map(|_| item("not-a-uuid", 0)).collect();
        let violations = NewOrder::parse(0, &bad, None, 3).unwrap_err();
        assert_eq!(fields(&violations), vec!["customer_id", "items"]);
        assert!(violations[1].message.contains("at most 3 lines"));
        assert!(NewOrder::parse(1, &distinct(3), None, 3).is_ok());
    }
}
