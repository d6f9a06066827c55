//! Payment webhook signatures: HMAC-SHA256 over the exact bytes received,
//! checked before the body is parsed, compared in constant time.
//!
//! Three forms are accepted:
//! - plain: `X-Signature: <hex of HMAC(secret, body)>`;
//! - timestamped: `X-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`,
//!   signing `"<t>." + body`, refused outside the tolerance window, so a
//!   captured request cannot be replayed later. Several `v1` entries let a
//!   sender sign with an old and a new secret during rotation.
//! - Standard Webhooks (<https://www.standardwebhooks.com>): `webhook-id`,
//!   `webhook-timestamp` and `webhook-signature: v1,<base64>[ v1,<base64>...]`,
//!   signing `"<id>.<timestamp>." + body`, with the same tolerance window.
//!   Unlike the two forms above, the event id is part of what is signed, so
//!   it cannot be swapped on a captured delivery.
//!
//! Every configured secret is tried (rotation on the receiving side), and all
//! candidates are compared without an early exit, so timing tells an attacker
//! nothing about which part matched.
//!
//! Keys: the two `X-Signature` forms use each configured secret's bytes as
//! they are (unchanged, so existing senders keep working). The Standard
//! Webhooks form follows that specification: a secret written
//! `whsec_<base64>` stands for its decoded bytes, any other secret for its
//! own bytes.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use crate::config::WebhookSecrets;

mod b64;
mod header;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use header::{SignatureHeader, parse_header, parse_standard_signatures};
use header::{looks_timestamped, parse_unix_seconds};

type HmacSha256 = Hmac<Sha256>;

/// Bytes in a SHA-256 MAC; its hex form is twice as long.
pub const MAC_LEN: usize = 32;

/// Why a signature was refused. Callers answer 401 for each; the variants
/// exist for logs and tests, never for the response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Signature header (or an empty one)")]
    Missing,
    #[error("the signature is not {} hex digits", MAC_LEN * 2)]
    Malformed,
    #[error("the timestamped header is malformed")]
    MalformedTimestamped,
    #[error("only the timestamped form is accepted")]
    TimestampRequired,
    #[error("the signature's timestamp is outside the tolerance window")]
    Expired,
    #[error("no configured secret produces this signature")]
    Mismatch,
    /// `webhook-signature` came without one of the other Standard Webhooks
    /// headers (named here), or it is itself empty.
    #[error("no {0} header (or an empty one) in a Standard Webhooks delivery")]
    MissingStandardHeader(&'static str),
    #[error("the webhook-timestamp header is not unix seconds")]
    MalformedStandardTimestamp,
    #[error("the webhook-signature header holds no well-formed v1 signature")]
    MalformedStandardSignature,
    /// A header that must be single was sent more than once: which one to
    /// trust is ambiguous, so none is.
    #[error("several {0} headers")]
    Duplicate(&'static str),
}

impl SignatureError {
    /// A short stable name, for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::MalformedTimestamped => "malformed_timestamped",
            Self::TimestampRequired => "timestamp_required",
            Self::Expired => "expired",
            Self::Mismatch => "mismatch",
            Self::MissingStandardHeader(_) => "missing_standard_header",
            Self::MalformedStandardTimestamp => "malformed_standard_timestamp",
            Self::MalformedStandardSignature => "malformed_standard_signature",
            Self::Duplicate(_) => "duplicate_header",
        }
    }
}

/// The Standard Webhooks headers of one delivery, as received (`None` when
/// absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardHeaders<'a> {
    pub id: Option<&'a [u8]>,
    pub timestamp: Option<&'a [u8]>,
    pub signature: Option<&'a [u8]>,
}

/// A configured secret that starts with `whsec_` but whose rest is not
/// base64 of at least one byte. Names the entry by position only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "WEBHOOK_SECRET entry {position} starts with `whsec_` but the rest is not base64 \
     of a non-empty key"
)]
pub struct InvalidStandardSecret {
    /// 1-based position in WEBHOOK_SECRET.
    pub position: usize,
}

/// Checks webhook signatures against the configured secrets.
#[derive(Clone)]
pub struct Verifier {
    /// Keys of the two `X-Signature` forms: each secret's bytes.
    secrets: WebhookSecrets,
    /// Keys of the Standard Webhooks form (see the module header).
    standard_keys: Vec<Vec<u8>>,
    require_timestamp: bool,
    tolerance: Duration,
}

// Keys must never reach a log line: counts only.
impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.secrets)
            .field("standard_keys", &self.standard_keys.len())
            .field("require_timestamp", &self.require_timestamp)
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Verifier {
    /// A verifier for these secrets. A `whsec_` secret that does not decode
    /// is logged and left out of the Standard Webhooks form (it signs
    /// nothing there: failing closed); [`Verifier::try_new`] refuses it
    /// instead.
    pub fn new(secrets: WebhookSecrets, require_timestamp: bool, tolerance: Duration) -> Self {
        let mut standard_keys = Vec::new();
        for (index, secret) in secrets.as_slices().enumerate() {
            match standard_key(secret) {
                Some(key) => standard_keys.push(key),
                None => tracing::error!(
                    error = %InvalidStandardSecret { position: index + 1 },
                    "Standard Webhooks deliveries signed with this secret will be refused"
                ),
            }
        }
        Self {
            secrets,
            standard_keys,
            require_timestamp,
            tolerance,
        }
    }

    /// As [`Verifier::new`], but a `whsec_` secret that does not decode is an
    /// error (for callers that would rather refuse to start).
    pub fn try_new(
        secrets: WebhookSecrets,
        require_timestamp: bool,
        tolerance: Duration,
    ) -> Result<Self, InvalidStandardSecret> {
        if let Some(index) = secrets
            .as_slices()
            .position(|secret| standard_key(secret).is_none())
        {
            return Err(InvalidStandardSecret {
                position: index + 1,
            });
        }
        Ok(Self::new(secrets, require_timestamp, tolerance))
    }

    /// Verifies `header` (the `X-Signature` value, `None` when absent) over
    /// `body`, with `now` as unix seconds.
    pub fn verify(
        &self,
        header: Option<&[u8]>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let header = header.unwrap_or_default();
        if self.require_timestamp && !looks_timestamped(header.trim_ascii()) {
            // Refused by its form, before even reading it (unless absent).
            parse_header(header)?;
            return Err(SignatureError::TimestampRequired);
        }
        match parse_header(header)? {
            SignatureHeader::Timestamped {
                timestamp,
                timestamp_text,
                signatures,
            } => {
                let age = now.abs_diff(timestamp);
                if age > self.tolerance.as_secs() {
                    return Err(SignatureError::Expired);
                }
                let mut signed = Vec::with_capacity(body.len() + 21);
                signed.extend_from_slice(timestamp_text);
                signed.push(b'.');
                signed.extend_from_slice(body);
                check_any(self.secrets.as_slices(), &signatures, &signed)
            }
            SignatureHeader::Plain(signature) => {
                check_any(self.secrets.as_slices(), &[signature], body)
            }
        }
    }

    /// Verifies a Standard Webhooks delivery: `headers` over `body`, with
    /// `now` as unix seconds. The id and timestamp are signed as sent (their
    /// exact bytes), and the timestamp must be within the tolerance window.
    pub fn verify_standard(
        &self,
        headers: StandardHeaders<'_>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        fn present<'h>(
            value: Option<&'h [u8]>,
            name: &'static str,
        ) -> Result<&'h [u8], SignatureError> {
            value
                .filter(|v| !v.trim_ascii().is_empty())
                .ok_or(SignatureError::MissingStandardHeader(name))
        }
        let signature = present(headers.signature, "webhook-signature")?;
        let id = present(headers.id, "webhook-id")?;
        let timestamp_text = present(headers.timestamp, "webhook-timestamp")?.trim_ascii();
        let timestamp = parse_unix_seconds(timestamp_text)
            .map_err(|_| SignatureError::MalformedStandardTimestamp)?;
        let signatures = parse_standard_signatures(signature)?;
        if now.abs_diff(timestamp) > self.tolerance.as_secs() {
            return Err(SignatureError::Expired);
        }
        let mut signed = Vec::with_capacity(id.len() + body.len() + 22);
        signed.extend_from_slice(id);
        signed.push(b'.');
        signed.extend_from_slice(timestamp_text);
        signed.push(b'.');
        signed.extend_from_slice(body);
        check_any(
            self.standard_keys.iter().map(Vec::as_slice),
            &signatures,
            &signed,
        )
    }
}

/// True when any (key, signature) pair matches; every pair is computed and
/// compared, whatever matched first.
fn check_any<'k>(
    keys: impl Iterator<Item = &'k [u8]>,
    signatures: &[[u8; MAC_LEN]],
    message: &[u8],
) -> Result<(), SignatureError> {
    let mut matched = Choice::from(0);
    for secret in keys {
        let expected = mac(secret, message);
        for signature in signatures {
            matched |= expected.as_slice().ct_eq(signature.as_slice());
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The HMAC key a configured secret stands for in the Standard Webhooks
/// form: `whsec_<base64>` is the decoded bytes (`None` when they do not
/// decode, or decode to nothing: an empty key would let anyone sign), any
/// other secret its own bytes.
pub fn standard_key(secret: &[u8]) -> Option<Vec<u8>> {
    match secret.strip_prefix(b"whsec_") {
        Some(encoded) => b64::decode(encoded).filter(|key| !key.is_empty()),
        None => Some(secret.to_vec()),
    }
}

/// HMAC-SHA256 of `message` under `secret`.
pub fn mac(secret: &[u8], message: &[u8]) -> [u8; MAC_LEN] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The plain `X-Signature` value for `body`: lowercase hex of the MAC.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    hex::encode(mac(secret, body))
}

/// The timestamped header value for `body` at `timestamp` (unix seconds).
pub fn sign_timestamped(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!("t={timestamp},v1={}", hex::encode(mac(secret, &signed)))
}

/// The three Standard Webhooks header values for `body`, signed with
/// `secret` (written as configured: `whsec_<base64>` or raw) at `timestamp`:
/// `(webhook-id, webhook-timestamp, webhook-signature)`. `None` when a
/// `whsec_` secret does not decode.
pub fn sign_standard(
    secret: &[u8],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<(String, String, String)> {
    let key = standard_key(secret)?;
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let signature = format!("v1,{}", b64::encode(&mac(&key, &signed)));
    Some((id.to_owned(), timestamp.to_string(), signature))
}
