//! A definite refusal ([`Refusal`]) on the wire: read from the catalog's
//! `tonic::Status` (code, message, `ErrorInfo` / `BadRequest` details), and
//! written back as the status this service answers, with the same code,
//! message and details.
//!
//! The details are encoded here, attributes sorted, so one refusal always
//! gives the same bytes: the first answer and every idempotent replay of it
//! are identical. (`tonic_types` encodes `ErrorInfo` attributes from a
//! `HashMap`, in an order that changes from one encoding to the next.)

use std::collections::{BTreeMap, HashMap};

use proto::errors::{self, meta, reason};
use tonic::{Code, Status, codegen::Bytes};
use uuid::Uuid;

use crate::domain::{Refusal, RefusalKind, RefusalReason, Violation};

/// The refusal a status stands for, or `None` when its code is no definite
/// refusal (the outcome of the call is then unknown). A named reason is used
/// only when it gives back exactly this status; anything else is kept whole
/// as [`RefusalReason::Other`].
pub fn from_status(status: &Status) -> Option<Refusal> {
    let kind = kind_of(status.code())?;
    let info = errors::error_info(status);
    let violations: Vec<Violation> = errors::violations(status)
        .into_iter()
        .map(|v| Violation::new(v.field, v.message))
        .collect();
    let message = status.message().to_owned();
    let named = match &info {
        Some((name, attributes)) => named_reason(name, attributes),
        None if kind == RefusalKind::Invalid && !violations.is_empty() => {
            Some(RefusalReason::InvalidRequest {
                violations: violations.clone(),
            })
        }
        None => None,
    };
    let named = named
        .map(|reason| Refusal {
            reason,
            message: message.clone(),
        })
        .filter(|refusal| says_the_same(&to_status(refusal), status));
    Some(named.unwrap_or_else(|| {
        let (reason, attributes) = info.unzip();
        Refusal {
            reason: RefusalReason::Other {
                kind,
                reason,
                attributes: attributes.unwrap_or_default().into_iter().collect(),
                violations,
            },
            message,
        }
    }))
}

/// A refusal as stored by earlier versions (the status its caller got:
/// code, message, details bytes). `None` when that status was no definite
/// refusal (an abandoned order, stored as UNAVAILABLE).
pub fn from_stored_status(code: i32, message: String, details: Vec<u8>) -> Option<Refusal> {
    from_status(&Status::with_details(
        Code::from(code),
        message,
        Bytes::from(details),
    ))
}

/// The status a refusal is answered with.
pub fn to_status(refusal: &Refusal) -> Status {
    let code = code_of(refusal.reason.kind());
    let (info, violations) = details_of(&refusal.reason);
    let mut details = Vec::new();
    if let Some((reason, metadata)) = info {
        details.push(wire::Any::pack(
            "type.googleapis.com/google.rpc.ErrorInfo",
            &wire::ErrorInfo {
                reason,
                domain: errors::DOMAIN.to_owned(),
                metadata,
            },
        ));
    }
    if !violations.is_empty() {
        details.push(wire::Any::pack(
            "type.googleapis.com/google.rpc.BadRequest",
            &wire::BadRequest {
                field_violations: violations
                    .iter()
                    .map(|v| wire::FieldViolation {
                        field: v.field.clone(),
                        description: v.message.clone(),
                    })
                    .collect(),
            },
        ));
    }
    if details.is_empty() {
        return Status::new(code, refusal.message.clone());
    }
    let encoded = prost::Message::encode_to_vec(&wire::RpcStatus {
        code: code as i32,
        message: refusal.message.clone(),
        details,
    });
    Status::with_details(code, refusal.message.clone(), Bytes::from(encoded))
}

/// The refusal's reason as metrics label it: its `ErrorInfo` reason, or the
/// name of its code when it has none.
pub fn label(refusal: &Refusal) -> String {
    match details_of(&refusal.reason).0 {
        Some((reason, _)) => reason,
        None => format!("{:?}", code_of(refusal.reason.kind())),
    }
}

/// The kind of refusal a code means; `None` for the codes that leave the
/// outcome of a call unknown (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ...).
pub fn kind_of(code: Code) -> Option<RefusalKind> {
    [
        RefusalKind::NotFound,
        RefusalKind::Precondition,
        RefusalKind::Invalid,
        RefusalKind::Conflict,
    ]
    .into_iter()
    .find(|kind| code_of(*kind) == code)
}

fn code_of(kind: RefusalKind) -> Code {
    match kind {
        RefusalKind::NotFound => Code::NotFound,
        RefusalKind::Precondition => Code::FailedPrecondition,
        RefusalKind::Invalid => Code::InvalidArgument,
        RefusalKind::Conflict => Code::AlreadyExists,
    }
}

/// An `ErrorInfo`'s reason and attributes.
type Info = (String, BTreeMap<String, String>);

/// The details a reason is written with.
fn details_of(refusal: &RefusalReason) -> (Option<Info>, &[Violation]) {
    let info = |name: &str, attributes: Vec<(&str, String)>| -> Option<Info> {
        let attributes = attributes
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        Some((name.to_owned(), attributes))
    };
    match refusal {
        RefusalReason::ProductsNotFound { product_ids } => {
            let ids: Vec<String> = product_ids.iter().map(Uuid::to_string).collect();
            let ids = ids.join(",");
            (
                info(reason::PRODUCTS_NOT_FOUND, vec![(meta::PRODUCT_IDS, ids)]),
                &[],
            )
        }
        RefusalReason::InsufficientStock {
            product_id,
            product_name,
            available,
            requested,
        } => {
            let attributes = vec![
                (meta::PRODUCT_ID, product_id.to_string()),
                (meta::PRODUCT_NAME, product_name.clone()),
                (meta::AVAILABLE, available.to_string()),
                (meta::REQUESTED, requested.to_string()),
            ];
            (info(reason::INSUFFICIENT_STOCK, attributes), &[])
        }
        RefusalReason::ReservationReleased { reservation_id } => {
            let id = vec![(meta::ID, reservation_id.to_string())];
            (info(reason::RESERVATION_RELEASED, id), &[])
        }
        RefusalReason::ReservationMismatch { reservation_id } => {
            let id = vec![(meta::ID, reservation_id.to_string())];
            (info(reason::RESERVATION_MISMATCH, id), &[])
        }
        RefusalReason::InvalidRequest { violations } => (None, violations),
        RefusalReason::Other {
            reason,
            attributes,
            violations,
            ..
        } => (
            reason.clone().map(|reason| (reason, attributes.clone())),
            violations,
        ),
    }
}

/// The named reason an `ErrorInfo` stands for, if it is one and its
/// attributes read as that reason's.
fn named_reason(name: &str, attributes: &HashMap<String, String>) -> Option<RefusalReason> {
    let text = |key: &str| attributes.get(key);
    let id = |key: &str| text(key)?.parse::<Uuid>().ok();
    let number = |key: &str| text(key)?.parse::<i64>().ok();
    Some(match name {
        reason::PRODUCTS_NOT_FOUND => RefusalReason::ProductsNotFound {
            product_ids: text(meta::PRODUCT_IDS)?
                .split(',')
                .map(|id| id.parse().ok())
                .collect::<Option<_>>()?,
        },
        reason::INSUFFICIENT_STOCK => RefusalReason::InsufficientStock {
            product_id: id(meta::PRODUCT_ID)?,
            product_name: text(meta::PRODUCT_NAME)?.clone(),
            available: number(meta::AVAILABLE)?,
            requested: number(meta::REQUESTED)?,
        },
        reason::RESERVATION_RELEASED => RefusalReason::ReservationReleased {
            reservation_id: id(meta::ID)?,
        },
        reason::RESERVATION_MISMATCH => RefusalReason::ReservationMismatch {
            reservation_id: id(meta::ID)?,
        },
        _ => return None,
    })
}

/// Whether two statuses tell a caller the same: code, message, `ErrorInfo`
/// and field violations.
fn says_the_same(one: &Status, other: &Status) -> bool {
    one.code() == other.code()
        && one.message() == other.message()
        && errors::error_info(one) == errors::error_info(other)
        && errors::violations(one) == errors::violations(other)
}

/// The `google.rpc` messages a refusal's details are made of, with the field
/// numbers of `google/rpc/status.proto` and `error_details.proto`.
mod wire {
    use std::collections::BTreeMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RpcStatus {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    impl Any {
        pub fn pack(type_url: &str, message: &impl prost::Message) -> Self {
            Self {
                type_url: type_url.to_owned(),
                value: message.encode_to_vec(),
            }
        }
    }

    /// A `BTreeMap`, so attributes are always encoded in the same order.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ErrorInfo {
        #[prost(string, tag = "1")]
        pub reason: String,
        #[prost(string, tag = "2")]
        pub domain: String,
        #[prost(btree_map = "string, string", tag = "3")]
        pub metadata: BTreeMap<String, String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BadRequest {
        #[prost(message, repeated, tag = "1")]
        pub field_violations: Vec<FieldViolation>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FieldViolation {
        #[prost(string, tag = "1")]
        pub field: String,
        #[prost(string, tag = "2")]
        pub description: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ReserveInventory refusals, written as the catalog writes them.
    fn catalog_refusals() -> Vec<Status> {
        let id = Uuid::from_u128(7).to_string();
        let ids = format!("{id},{}", Uuid::from_u128(3));
        vec![
            errors::with_info(
                Code::FailedPrecondition,
                "Insufficient stock for product 'Laptop'. Available: 1, Requested: 2",
                reason::INSUFFICIENT_STOCK,
                [
                    (meta::PRODUCT_ID, id.clone()),
                    (meta::PRODUCT_NAME, "Laptop".to_owned()),
                    (meta::AVAILABLE, "1".to_owned()),
                    (meta::REQUESTED, "2".to_owned()),
                ],
            ),
            errors::with_info(
                Code::NotFound,
                "Products not found: [...]",
                reason::PRODUCTS_NOT_FOUND,
                [(meta::PRODUCT_IDS, ids)],
            ),
            errors::with_info(
                Code::FailedPrecondition,
                "Reservation was released",
                reason::RESERVATION_RELEASED,
                [(meta::ID, id.clone())],
            ),
            errors::with_info(
                Code::AlreadyExists,
                "Reservation already exists with different items",
                reason::RESERVATION_MISMATCH,
                [(meta::ID, id)],
            ),
            errors::invalid_argument(&[errors::Violation::new("items", "must not be empty")]),
        ]
    }

    #[test]
    fn catalog_refusals_have_names_and_are_answered_the_same() {
        for status in catalog_refusals() {
            let refusal = from_status(&status).unwrap();
            assert!(
                !matches!(refusal.reason, RefusalReason::Other { .. }),
                "{refusal:?}"
            );
            assert!(says_the_same(&to_status(&refusal), &status), "{status:?}");
        }
    }

    #[test]
    fn one_refusal_always_encodes_to_the_same_bytes() {
        for status in catalog_refusals() {
            let refusal = from_status(&status).unwrap();
            let first = to_status(&refusal);
            for _ in 0..20 {
                assert_eq!(to_status(&refusal).details(), first.details());
            }
        }
    }

    #[test]
    fn a_refusal_without_a_name_is_kept_whole() {
        let unknown = errors::with_info(
            Code::FailedPrecondition,
            "Catalog closed for inventory",
            "CATALOG_CLOSED",
            [("until", "monday".to_owned())],
        );
        let mut extra = catalog_refusals().remove(0);
        let (_, mut metadata) = errors::error_info(&extra).unwrap();
        metadata.insert("warehouse".to_owned(), "north".to_owned());
        extra = errors::with_info(
            extra.code(),
            extra.message(),
            reason::INSUFFICIENT_STOCK,
            metadata.iter().map(|(k, v)| (k.as_str(), v.clone())),
        );
        let bare = Status::already_exists("exists");
        for status in [unknown, extra, bare] {
            let refusal = from_status(&status).unwrap();
            assert!(
                matches!(refusal.reason, RefusalReason::Other { .. }),
                "{refusal:?}"
            );
            let answered = to_status(&refusal);
            assert!(says_the_same(&answered, &status), "{status:?}");
        }
        assert!(
            to_status(&from_status(&Status::already_exists("exists")).unwrap())
                .details()
                .is_empty()
        );
    }

    #[test]
    fn only_definite_refusals_are_refusals() {
        for status in [
            Status::unavailable("down"),
            Status::deadline_exceeded("slow"),
            Status::internal("broken"),
            Status::cancelled("gone"),
        ] {
            assert_eq!(from_status(&status), None, "{status:?}");
        }
    }

    #[test]
    fn refusals_stored_as_statuses_read_as_refusals() {
        for status in catalog_refusals() {
            let stored = from_stored_status(
                status.code() as i32,
                status.message().to_owned(),
                status.details().to_vec(),
            );
            assert_eq!(stored, from_status(&status));
        }
        let abandoned = Status::unavailable("the catalog service is unavailable");
        assert_eq!(
            from_stored_status(abandoned.code() as i32, String::new(), Vec::new()),
            None
        );
    }

    #[test]
    fn labels_are_the_reason_or_the_code() {
        let labels: Vec<String> = catalog_refusals()
            .iter()
            .map(|status| label(&from_status(status).unwrap()))
            .collect();
        assert_eq!(
            labels,
            [
                "INSUFFICIENT_STOCK",
                "PRODUCTS_NOT_FOUND",
                "RESERVATION_RELEASED",
                "RESERVATION_MISMATCH",
                "InvalidArgument"
            ]
        );
    }
}
