//! Reservations: normalising a request (one line per product, in product id
//! order, which is also the order rows are locked in, so two reservations
//! never deadlock), judging it against current stock (all or nothing; a batch
//! of requests one after the other on a [`StockLedger`]), and recognising a
//! repeated request.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use uuid::Uuid;

use super::{Refusal, Violation};

/// The state of a stored reservation, spelled as stored (`held`,
/// `released`, `committed`); any other spelling does not parse, never a
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString)]
#[strum(serialize_all = "lowercase")]
pub enum ReservationState {
    Held,
    Released,
    Committed,
}

/// A reservation names at least one line.
pub fn some_lines(field: &str, lines: usize) -> Result<(), Violation> {
    if lines == 0 {
        return Err(Violation::new(field, "must contain at least one item"));
    }
    Ok(())
}

/// A line reserves at least one unit.
pub fn line_quantity(field: &str, quantity: i32) -> Result<i32, Violation> {
    if quantity <= 0 {
        return Err(Violation::new(field, "must be greater than 0"));
    }
    Ok(quantity)
}

/// One product of a reservation request, after lines of the same product were
/// summed. The sum is kept as i64: two lines of i32::MAX do not overflow, they
/// simply exceed any stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestedLine {
    pub product_id: Uuid,
    pub quantity: i64,
}

/// A validated reservation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRequest {
    pub id: Uuid,
    /// One line per product, ordered by product id.
    pub lines: Vec<RequestedLine>,
    /// Product ids as the caller listed them (deduplicated), so that errors
    /// name products in the caller's order.
    pub request_order: Vec<Uuid>,
}

impl ReservationRequest {
    /// `items` must be non-empty with positive quantities ([`some_lines`],
    /// [`line_quantity`]).
    pub fn new(id: Uuid, items: impl IntoIterator<Item = (Uuid, i32)>) -> Self {
        let mut summed: BTreeMap<Uuid, i64> = BTreeMap::new();
        let mut request_order = Vec::new();
        for (product_id, quantity) in items {
            let entry = summed.entry(product_id).or_insert_with(|| {
                request_order.push(product_id);
                0
            });
            *entry += i64::from(quantity);
        }
        Self {
            id,
            lines: summed
                .into_iter()
                .map(|(product_id, quantity)| RequestedLine {
                    product_id,
                    quantity,
                })
                .collect(),
            request_order,
        }
    }
}

/// A product as a reservation sees it (its row locked while it is judged).
#[derive(Debug, Clone, PartialEq)]
pub struct StockRow {
    pub id: Uuid,
    pub name: String,
    pub price: Decimal,
    pub quantity: i32,
}

/// One line of stock taken: what the reservation stores and returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedLine {
    pub product_id: Uuid,
    pub product_name: String,
    pub quantity: i32,
    pub unit_price: Decimal,
}

/// What a reservation call got: its lines, and whether they were stored
/// earlier (the same request again: no stock moved this time).
#[derive(Debug, Clone, PartialEq)]
pub struct Reserved {
    pub lines: Vec<ReservedLine>,
    pub replayed: bool,
}

/// Decides a new reservation against the locked rows of its products: every
/// line gets its stock or none does. Missing products are reported first, all
/// of them; then the first line (in product id order) that lacks stock.
pub fn judge(
    request: &ReservationRequest,
    rows: &[StockRow],
) -> Result<Vec<ReservedLine>, Refusal> {
    StockLedger::new(rows.iter().cloned()).take(request)
}

/// The stock of a set of locked product rows while a batch of reservations
/// is decided in one transaction (group commit): each request is judged, all
/// or nothing, on the stock the requests before it left, exactly as if they
/// had run one after the other.
#[derive(Debug, Clone, Default)]
pub struct StockLedger {
    rows: BTreeMap<Uuid, StockRow>,
    /// Units taken so far per product (what the stock UPDATE subtracts).
    taken: BTreeMap<Uuid, i64>,
}

impl StockLedger {
    pub fn new(rows: impl IntoIterator<Item = StockRow>) -> Self {
        Self {
            rows: rows.into_iter().map(|row| (row.id, row)).collect(),
            taken: BTreeMap::new(),
        }
    }

    /// Judges `request` on the stock left now; on success the lines are taken
    /// from the ledger, on refusal nothing is.
    pub fn take(&mut self, request: &ReservationRequest) -> Result<Vec<ReservedLine>, Refusal> {
        let missing: Vec<Uuid> = request
            .request_order
            .iter()
            .filter(|id| !self.rows.contains_key(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::ProductsNotFound(missing));
        }
        let lines = request
            .lines
            .iter()
            .map(|line| {
                let row = &self.rows[&line.product_id];
                // `quantity` fits i32 whenever it does not exceed the stock.
                match i32::try_from(line.quantity) {
                    Ok(quantity) if i64::from(row.quantity) >= line.quantity => Ok(ReservedLine {
                        product_id: row.id,
                        product_name: row.name.clone(),
                        quantity,
                        unit_price: row.price,
                    }),
                    _ => Err(Refusal::InsufficientStock {
                        product_id: row.id,
                        product_name: row.name.clone(),
                        available: row.quantity,
                        requested: line.quantity,
                    }),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        for line in &lines {
            let row = self.rows.get_mut(&line.product_id).expect("judged above");
            row.quantity -= line.quantity;
            *self.taken.entry(line.product_id).or_default() += i64::from(line.quantity);
        }
        Ok(lines)
    }

    /// Units taken per product by the accepted requests, in product id order.
    pub fn taken(&self) -> impl Iterator<Item = (Uuid, i64)> + '_ {
        self.taken.iter().map(|(id, units)| (*id, *units))
    }
}

/// Answers a reservation id that already exists: the stored result when the
/// request is the same one again, a refusal otherwise.
pub fn replay(
    request: &ReservationRequest,
    state: ReservationState,
    stored: Vec<ReservedLine>,
) -> Result<Vec<ReservedLine>, Refusal> {
    if state == ReservationState::Released {
        // Also a tombstone (released before any reserve arrived): never take stock again.
        return Err(Refusal::ReservationReleased(request.id));
    }
    let same_items = stored.len() == request.lines.len()
        && stored
            .iter()
            .zip(&request.lines)
            .all(|(s, r)| s.product_id == r.product_id && i64::from(s.quantity) == r.quantity);
    if same_items {
        Ok(stored)
    } else {
        Err(Refusal::ReservationMismatch(request.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn row(n: u128, quantity: i32) -> StockRow {
        StockRow {
            id: id(n),
            name: format!("p{n}"),
            price: Decimal::new(1999, 2),
            quantity,
        }
    }

    #[test]
    fn lines_of_one_product_are_summed_and_sorted_by_id() {
        let request = ReservationRequest::new(id(9), [(id(2), 1), (id(1), 2), (id(2), 3)]);
        assert_eq!(
            request.lines,
            vec![
                RequestedLine {
                    product_id: id(1),
                    quantity: 2
                },
                RequestedLine {
                    product_id: id(2),
                    quantity: 4
                }
            ]
        );
        assert_eq!(request.request_order, vec![id(2), id(1)]);
    }

    #[test]
    fn sums_beyond_i32_do_not_overflow() {
        let request = ReservationRequest::new(id(9), [(id(1), i32::MAX), (id(1), i32::MAX)]);
        assert_eq!(request.lines[0].quantity, 2 * i64::from(i32::MAX));
        let err = judge(&request, &[row(1, i32::MAX)]).unwrap_err();
        assert!(
            matches!(err, Refusal::InsufficientStock { requested, .. } if requested == 2 * i64::from(i32::MAX))
        );
    }

    #[test]
    fn every_missing_product_is_named_in_request_order() {
        let request = ReservationRequest::new(id(9), [(id(3), 1), (id(1), 1), (id(2), 1)]);
        let err = judge(&request, &[row(1, 5)]).unwrap_err();
        assert_eq!(err, Refusal::ProductsNotFound(vec![id(3), id(2)]));
    }

    #[test]
    fn one_short_line_refuses_the_whole_reservation() {
        let request = ReservationRequest::new(id(9), [(id(1), 1), (id(2), 6)]);
        let err = judge(&request, &[row(1, 5), row(2, 5)]).unwrap_err();
        assert_eq!(
            err,
            Refusal::InsufficientStock {
                product_id: id(2),
                product_name: "p2".into(),
                available: 5,
                requested: 6
            }
        );
    }

    #[test]
    fn enough_stock_takes_every_line_at_its_price() {
        let request = ReservationRequest::new(id(9), [(id(1), 5)]);
        let lines = judge(&request, &[row(1, 5)]).unwrap();
        assert_eq!(lines[0].quantity, 5);
        assert_eq!(lines[0].unit_price, Decimal::new(1999, 2));
    }

    #[test]
    fn a_repeated_request_replays_and_a_different_one_is_refused() {
        let request = ReservationRequest::new(id(9), [(id(1), 2)]);
        let stored = judge(&request, &[row(1, 5)]).unwrap();
        assert_eq!(
            replay(&request, ReservationState::Held, stored.clone()).unwrap(),
            stored
        );
        assert_eq!(
            replay(&request, ReservationState::Committed, stored.clone()).unwrap(),
            stored
        );
        let other = ReservationRequest::new(id(9), [(id(1), 3)]);
        assert_eq!(
            replay(&other, ReservationState::Held, stored.clone()),
            Err(Refusal::ReservationMismatch(id(9)))
        );
        assert_eq!(
            replay(&request, ReservationState::Released, vec![]),
            Err(Refusal::ReservationReleased(id(9)))
        );
    }

    #[test]
    fn a_ledger_judges_each_request_on_the_stock_left_by_the_ones_before() {
        let mut ledger = StockLedger::new([row(1, 3), row(2, 1)]);
        let two = ReservationRequest::new(id(10), [(id(1), 2)]);
        let two_more = ReservationRequest::new(id(11), [(id(1), 2), (id(2), 1)]);
        let one_each = ReservationRequest::new(id(12), [(id(2), 1), (id(1), 1)]);
        let last_one = ReservationRequest::new(id(13), [(id(1), 1)]);

        assert_eq!(ledger.take(&two).unwrap()[0].quantity, 2);
        // Only 1 of product 1 is left: refused whole, product 2 keeps its unit.
        assert_eq!(
            ledger.take(&two_more).unwrap_err(),
            Refusal::InsufficientStock {
                product_id: id(1),
                product_name: "p1".into(),
                available: 1,
                requested: 2
            }
        );
        assert_eq!(ledger.take(&one_each).unwrap().len(), 2);
        assert!(matches!(
            ledger.take(&last_one),
            Err(Refusal::InsufficientStock { available: 0, .. })
        ));
        assert_eq!(
            ledger.taken().collect::<Vec<_>>(),
            vec![(id(1), 3), (id(2), 1)]
        );
    }

    #[test]
    fn a_ledger_reports_missing_products_without_taking_anything() {
        let mut ledger = StockLedger::new([row(1, 3)]);
        let request = ReservationRequest::new(id(10), [(id(1), 1), (id(2), 1)]);
        assert_eq!(
            ledger.take(&request).unwrap_err(),
            Refusal::ProductsNotFound(vec![id(2)])
        );
        assert_eq!(ledger.taken().count(), 0);
    }

    #[test]
    fn states_parse_as_stored_and_unknown_ones_are_errors() {
        assert_eq!("held".parse(), Ok(ReservationState::Held));
        assert_eq!("released".parse(), Ok(ReservationState::Released));
        assert_eq!("committed".parse(), Ok(ReservationState::Committed));
        assert!("HELD".parse::<ReservationState>().is_err());
    }

    #[test]
    fn a_reservation_takes_at_least_one_unit_of_at_least_one_line() {
        assert!(some_lines("items", 0).is_err());
        assert!(some_lines("items", 1).is_ok());
        assert_eq!(
            line_quantity("items[0].quantity", 0).unwrap_err().field,
            "items[0].quantity"
        );
        assert_eq!(line_quantity("items[0].quantity", 1), Ok(1));
    }
}
