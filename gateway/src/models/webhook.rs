//! The payment processor's webhook on the wire.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::orders::PaymentStatus;
use crate::input::{
    FromBody,
    json::{self, Fields, Violations},
};

/// Longest event id kept for de-duplication.
pub const EVENT_ID_MAX_CHARS: usize = 255;

/// What a payment result may say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentResult {
    Paid,
    Failed,
}

impl PaymentResult {
    pub const WORDS: &'static [&'static str] = &["paid", "failed"];

    pub fn as_status(self) -> PaymentStatus {
        match self {
            Self::Paid => PaymentStatus::Paid,
            Self::Failed => PaymentStatus::Failed,
        }
    }
}

/// `POST /api/payment-webhook` body, signed (see the operation). Unknown
/// fields are ignored; a key given twice is refused (400).
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"order_id": "7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11", "payment_status": "paid"}))]
pub struct PaymentWebhook {
    pub order_id: Uuid,
    pub payment_status: PaymentResult,
    /// The processor's event id: an event delivered twice is applied once.
    /// The `Webhook-Id` header, when present, takes precedence.
    #[schema(max_length = 255)]
    pub event_id: Option<String>,
}

impl FromBody for PaymentWebhook {
    fn read(fields: &Fields<'_>, errors: &mut Violations) -> Option<Self> {
        let order_id = fields.required(errors, "order_id", &json::uuid);
        let payment_status = fields.required(
            errors,
            "payment_status",
            &json::one_of(PaymentResult::WORDS),
        );
        // Null is the same as absent here: processors differ in how they say "none".
        let event_id = fields.patch(
            errors,
            "event_id",
            &json::string_of_length(1, EVENT_ID_MAX_CHARS),
        );
        Some(Self {
            order_id: order_id?,
            payment_status: match payment_status? {
                "paid" => PaymentResult::Paid,
                _ => PaymentResult::Failed,
            },
            event_id: event_id?.into_option(),
        })
    }
}

/// The webhook's success answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAck {
    #[schema(example = "Payment status updated successfully")]
    pub message: &'static str,
    pub order_id: Uuid,
    /// The order's payment status after the update.
    pub payment_status: PaymentStatus,
}
