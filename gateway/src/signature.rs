//! Payment webhook signatures: HMAC-SHA256 over the exact bytes received,
//! checked before the body is parsed, compared in constant time.
//!
//! Three forms are accepted:
//! - original: `X-Signature: <hex of HMAC(secret, body)>`;
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

/// Reads `webhook-signature`: space-separated `<version>,<base64>` entries.
/// Entries of other versions (`v1a`, future schemes) are ignored, as are
/// `v1` entries that are not base64 of a MAC (they could never match); at
/// least one well-formed `v1` is needed. Public for the fuzz target; never
/// panics, whatever the bytes.
pub fn parse_standard_signatures(header: &[u8]) -> Result<Vec<[u8; MAC_LEN]>, SignatureError> {
    let signatures: Vec<[u8; MAC_LEN]> = header
        .split(u8::is_ascii_whitespace)
        .filter_map(|entry| entry.strip_prefix(b"v1,"))
        .filter_map(|encoded| b64::decode(encoded)?.try_into().ok())
        .collect();
    if signatures.is_empty() {
        return Err(SignatureError::MalformedStandardSignature);
    }
    Ok(signatures)
}

/// HMAC-SHA256 of `message` under `secret`.
pub fn mac(secret: &[u8], message: &[u8]) -> [u8; MAC_LEN] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The original header value for `body`: lowercase hex of the MAC.
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

/// An `X-Signature` value, read but not yet checked against any secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureHeader<'a> {
    /// The original form: `<hex>`.
    Plain([u8; MAC_LEN]),
    /// `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`.
    Timestamped {
        timestamp: i64,
        /// The digits exactly as sent: the signed message uses them verbatim.
        timestamp_text: &'a [u8],
        signatures: Vec<[u8; MAC_LEN]>,
    },
}

/// Reads an `X-Signature` value (surrounding whitespace ignored) in either
/// form. Public so that the property tests and fuzz targets reach it; it
/// never panics, whatever the bytes.
pub fn parse_header(header: &[u8]) -> Result<SignatureHeader<'_>, SignatureError> {
    let header = header.trim_ascii();
    if header.is_empty() {
        return Err(SignatureError::Missing);
    }
    if looks_timestamped(header) {
        let parsed = parse_timestamped(header)?;
        Ok(SignatureHeader::Timestamped {
            timestamp: parsed.timestamp,
            timestamp_text: parsed.timestamp_text,
            signatures: parsed.signatures,
        })
    } else {
        decode_mac(header)
            .map(SignatureHeader::Plain)
            .ok_or(SignatureError::Malformed)
    }
}

/// The timestamped form starts with a `key=` pair; hex never contains `=`.
fn looks_timestamped(header: &[u8]) -> bool {
    header.contains(&b'=')
}

struct Timestamped<'a> {
    timestamp: i64,
    timestamp_text: &'a [u8],
    signatures: Vec<[u8; MAC_LEN]>,
}

/// Parses `t=<digits>,v1=<hex>[,v1=<hex>]`; other keys (future schemes) are
/// ignored, but exactly one `t` and at least one well-formed `v1` are needed.
fn parse_timestamped(header: &[u8]) -> Result<Timestamped<'_>, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(|&b| b == b',') {
        let part = part.trim_ascii();
        let Some(eq) = part.iter().position(|&b| b == b'=') else {
            return Err(SignatureError::MalformedTimestamped);
        };
        let (key, value) = (&part[..eq], &part[eq + 1..]);
        match key {
            b"t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::MalformedTimestamped);
                }
                timestamp = Some((parse_unix_seconds(value)?, value));
            }
            b"v1" => signatures.push(decode_mac(value).ok_or(SignatureError::Malformed)?),
            _ => {}
        }
    }
    let (timestamp, timestamp_text) = timestamp.ok_or(SignatureError::MalformedTimestamped)?;
    if signatures.is_empty() {
        return Err(SignatureError::MalformedTimestamped);
    }
    Ok(Timestamped {
        timestamp,
        timestamp_text,
        signatures,
    })
}

/// Plain decimal digits only (no sign, no spaces), at most 12 of them.
fn parse_unix_seconds(value: &[u8]) -> Result<i64, SignatureError> {
    if value.is_empty() || value.len() > 12 || !value.iter().all(u8::is_ascii_digit) {
        return Err(SignatureError::MalformedTimestamped);
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(SignatureError::MalformedTimestamped)
}

/// Exactly 64 hex digits (either case) -> 32 bytes; anything else is `None`.
fn decode_mac(value: &[u8]) -> Option<[u8; MAC_LEN]> {
    if value.len() != MAC_LEN * 2 {
        return None;
    }
    let mut out = [0u8; MAC_LEN];
    hex::decode_to_slice(value, &mut out).ok()?;
    Some(out)
}

/// Base64, standard alphabet (RFC 4648 section 4), as Standard Webhooks
/// writes signatures and `whsec_` secrets: padding written on output and
/// optional on input; anything else (whitespace, the URL alphabet, non-zero
/// trailing bits) refused.
mod b64 {
    use base64::{
        Engine, alphabet,
        engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    };

    const STANDARD: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );

    pub fn encode(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    /// `None` for anything that is not canonical base64.
    pub fn decode(text: &[u8]) -> Option<Vec<u8>> {
        STANDARD.decode(text).ok()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn rfc_4648_vectors_round_trip() {
            for (plain, encoded) in [
                ("", ""),
                ("f", "Zg=="),
                ("fo", "Zm8="),
                ("foo", "Zm9v"),
                ("foob", "Zm9vYg=="),
                ("fooba", "Zm9vYmE="),
                ("foobar", "Zm9vYmFy"),
            ] {
                assert_eq!(encode(plain.as_bytes()), encoded);
                assert_eq!(decode(encoded.as_bytes()).unwrap(), plain.as_bytes());
                let unpadded = encoded.trim_end_matches('=');
                assert_eq!(decode(unpadded.as_bytes()).unwrap(), plain.as_bytes());
            }
            let all: Vec<u8> = (0..=255).collect();
            assert_eq!(decode(encode(&all).as_bytes()).unwrap(), all);
        }

        #[test]
        fn refuses_what_is_not_canonical_base64() {
            for bad in [
                "Z", "Zg===", "Zh==", "Zm9=", "Zm9v=", "=", "==", "Zm 9v", "Zm9v\n", "Zm-v",
                "Zm_v", "Zm9vY", "Zg==Zg==",
            ] {
                assert_eq!(decode(bad.as_bytes()), None, "{bad:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const NOW: i64 = 1_790_000_000;
    const BODY: &[u8] =
        br#"{"order_id":"7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11","payment_status":"paid"}"#;

    /// The configuration tests use (`for_services`: whatever mode lets short
    /// test secrets through), with these secrets.
    pub(super) fn config_with(secrets: &str) -> Config {
        let mut config = Config::for_services(
            "http://127.0.0.1:1",
            "http://127.0.0.1:1",
            ([127, 0, 0, 1], 0).into(),
        );
        config.webhook_secret = Some(secrets.to_owned());
        config
    }

    fn verifier(secrets: &str, require_timestamp: bool) -> Verifier {
        let config = config_with(secrets);
        Verifier::new(
            config.webhook_secrets().unwrap(),
            require_timestamp,
            Duration::from_secs(300),
        )
    }

    fn check(v: &Verifier, header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
        v.verify(header.map(str::as_bytes), body, NOW)
    }

    #[test]
    fn accepts_the_original_form() {
        let v = verifier("secret", false);
        assert_eq!(check(&v, Some(&sign(b"secret", BODY)), BODY), Ok(()));
        // Uppercase hex and surrounding spaces are the same signature.
        let upper = format!("  {}  ", sign(b"secret", BODY).to_uppercase());
        assert_eq!(check(&v, Some(&upper), BODY), Ok(()));
    }

    #[test]
    fn accepts_the_timestamped_form() {
        let v = verifier("secret", false);
        let header = sign_timestamped(b"secret", NOW - 10, BODY);
        assert_eq!(check(&v, Some(&header), BODY), Ok(()));
    }

    #[test]
    fn accepts_any_of_several_v1_signatures() {
        let v = verifier("new", false);
        let old = sign_timestamped(b"old", NOW, BODY);
        let new = sign_timestamped(b"new", NOW, BODY);
        let new_hex = new.split("v1=").nth(1).unwrap();
        let header = format!("{old},v1={new_hex}");
        assert_eq!(check(&v, Some(&header), BODY), Ok(()));
    }

    #[test]
    fn accepts_each_rotated_secret() {
        let v = verifier("old-secret,new-secret", false);
        assert_eq!(check(&v, Some(&sign(b"old-secret", BODY)), BODY), Ok(()));
        assert_eq!(check(&v, Some(&sign(b"new-secret", BODY)), BODY), Ok(()));
        let ts = sign_timestamped(b"old-secret", NOW, BODY);
        assert_eq!(check(&v, Some(&ts), BODY), Ok(()));
        assert_eq!(
            check(&v, Some(&sign(b"other-secret", BODY)), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn refuses_a_missing_or_empty_header() {
        let v = verifier("secret", false);
        assert_eq!(check(&v, None, BODY), Err(SignatureError::Missing));
        assert_eq!(check(&v, Some(""), BODY), Err(SignatureError::Missing));
        assert_eq!(check(&v, Some("   "), BODY), Err(SignatureError::Missing));
    }

    #[test]
    fn refuses_malformed_signatures() {
        let v = verifier("secret", false);
        let good = sign(b"secret", BODY);
        let cases = [
            ("short", good[..10].to_owned()),
            ("odd length", good[..63].to_owned()),
            ("non-hex", format!("{}zz", &good[..62])),
            ("too long", format!("{good}00")),
            ("wrong length, valid hex", "ab".repeat(31)),
            ("a single char", "a".to_owned()),
        ];
        for (what, header) in cases {
            assert_eq!(
                check(&v, Some(&header), BODY),
                Err(SignatureError::Malformed),
                "{what}"
            );
        }
    }

    #[test]
    fn refuses_a_valid_signature_over_another_body() {
        let v = verifier("secret", false);
        let other = sign(
            b"secret",
            b"{\"order_id\":\"x\",\"payment_status\":\"failed\"}",
        );
        assert_eq!(check(&v, Some(&other), BODY), Err(SignatureError::Mismatch));
        let ts = sign_timestamped(b"secret", NOW, b"{}");
        assert_eq!(check(&v, Some(&ts), BODY), Err(SignatureError::Mismatch));
    }

    #[test]
    fn refuses_an_expired_or_future_timestamp() {
        let v = verifier("secret", false);
        let old = sign_timestamped(b"secret", NOW - 301, BODY);
        assert_eq!(check(&v, Some(&old), BODY), Err(SignatureError::Expired));
        let future = sign_timestamped(b"secret", NOW + 301, BODY);
        assert_eq!(check(&v, Some(&future), BODY), Err(SignatureError::Expired));
        let edge = sign_timestamped(b"secret", NOW - 300, BODY);
        assert_eq!(check(&v, Some(&edge), BODY), Ok(()));
    }

    #[test]
    fn the_timestamp_is_part_of_what_is_signed() {
        let v = verifier("secret", false);
        // A signature made for t=NOW-10, presented with t=NOW, must fail.
        let header = sign_timestamped(b"secret", NOW - 10, BODY);
        let hex = header.split("v1=").nth(1).unwrap();
        assert_eq!(
            check(&v, Some(&format!("t={NOW},v1={hex}")), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn refuses_malformed_timestamped_headers() {
        let v = verifier("secret", false);
        let hex = sign(b"secret", BODY);
        for header in [
            format!("v1={hex}"),
            format!("t={NOW}"),
            format!("t=,v1={hex}"),
            format!("t=-5,v1={hex}"),
            format!("t=12x,v1={hex}"),
            format!("t={NOW},t={NOW},v1={hex}"),
            format!("t={NOW},junk,v1={hex}"),
            format!("t=9999999999999999999,v1={hex}"),
        ] {
            assert_eq!(
                check(&v, Some(&header), BODY),
                Err(SignatureError::MalformedTimestamped),
                "{header}"
            );
        }
        assert_eq!(
            check(&v, Some(&format!("t={NOW},v1=abc")), BODY),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn require_timestamp_refuses_the_original_form() {
        let v = verifier("secret", true);
        assert_eq!(
            check(&v, Some(&sign(b"secret", BODY)), BODY),
            Err(SignatureError::TimestampRequired)
        );
        let ts = sign_timestamped(b"secret", NOW, BODY);
        assert_eq!(check(&v, Some(&ts), BODY), Ok(()));
    }

    #[test]
    fn signs_the_exact_bytes() {
        let v = verifier("secret", false);
        // Same JSON meaning, different bytes: refused.
        let reformatted =
            br#"{ "order_id":"7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11","payment_status":"paid"}"#;
        assert_eq!(
            check(&v, Some(&sign(b"secret", BODY)), reformatted),
            Err(SignatureError::Mismatch)
        );
    }

    // ---- Standard Webhooks ---------------------------------------------------

    /// The example of the Standard Webhooks specification and its reference
    /// libraries: checks this implementation against a value computed
    /// elsewhere.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn standard<'a>(id: &'a str, timestamp: &'a str, signature: &'a str) -> StandardHeaders<'a> {
        StandardHeaders {
            id: Some(id.as_bytes()),
            timestamp: Some(timestamp.as_bytes()),
            signature: Some(signature.as_bytes()),
        }
    }

    /// A delivery of `BODY` with id `evt_1` at `NOW`, signed with `secret`.
    fn signed_standard(secret: &str) -> (String, String, String) {
        sign_standard(secret.as_bytes(), "evt_1", NOW, BODY).unwrap()
    }

    fn check_standard(
        v: &Verifier,
        (id, timestamp, signature): &(String, String, String),
        body: &[u8],
    ) -> Result<(), SignatureError> {
        v.verify_standard(standard(id, timestamp, signature), body, NOW)
    }

    #[test]
    fn standard_matches_the_specification_example() {
        let v = verifier(SPEC_SECRET, false);
        let headers = standard(SPEC_ID, "1614265330", SPEC_SIGNATURE);
        assert_eq!(
            v.verify_standard(headers, SPEC_BODY, SPEC_TIMESTAMP),
            Ok(())
        );
        let (_, _, ours) =
            sign_standard(SPEC_SECRET.as_bytes(), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY).unwrap();
        assert_eq!(ours, SPEC_SIGNATURE);
    }

    #[test]
    fn standard_accepts_raw_and_whsec_secrets_and_every_rotated_one() {
        let v = verifier(&format!("plain-secret, {SPEC_SECRET}"), false);
        for secret in ["plain-secret", SPEC_SECRET] {
            assert_eq!(check_standard(&v, &signed_standard(secret), BODY), Ok(()));
        }
        // A whsec_ secret's key is the decoded bytes, not the text.
        let (id, t, _) = signed_standard(SPEC_SECRET);
        let mut message = format!("{id}.{t}.").into_bytes();
        message.extend_from_slice(BODY);
        let with_text_key = format!("v1,{}", b64::encode(&mac(SPEC_SECRET.as_bytes(), &message)));
        assert_eq!(
            check_standard(&v, &(id, t, with_text_key), BODY),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check_standard(&v, &signed_standard("another-secret"), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn standard_accepts_any_valid_one_of_several_and_ignores_other_versions() {
        let v = verifier("new", false);
        let (id, t, old) = signed_standard("old");
        let (_, _, new) = signed_standard("new");
        for header in [
            format!("{old} {new}"),
            format!("{new} {old}"),
            format!("v1a,c29tZSBlZDI1NTE5IHNpZ25hdHVyZQ== {new}"),
            format!("v2,{} {new}", &new[3..]),
            format!("v1,not-base64 {new}  "),
            format!("v1,{} {new}", b64::encode(b"short")),
        ] {
            assert_eq!(
                check_standard(&v, &(id.clone(), t.clone(), header.clone()), BODY),
                Ok(()),
                "{header}"
            );
        }
        assert_eq!(
            check_standard(
                &v,
                &(id.clone(), t.clone(), format!("{old} v2,{}", &new[3..])),
                BODY
            ),
            Err(SignatureError::Mismatch),
            "a valid MAC under an unknown version is not a v1 signature"
        );
    }

    #[test]
    fn standard_signs_the_id_the_timestamp_and_the_exact_body() {
        let v = verifier("secret", false);
        let (id, t, signature) = signed_standard("secret");
        assert_eq!(
            check_standard(&v, &(id.clone(), t.clone(), signature.clone()), BODY),
            Ok(())
        );
        let tampered = [
            (
                "another id",
                ("evt_2".to_owned(), t.clone(), signature.clone()),
                BODY,
            ),
            (
                "another timestamp",
                (id.clone(), (NOW - 1).to_string(), signature.clone()),
                BODY,
            ),
            (
                "a leading zero",
                (id.clone(), format!("0{t}"), signature.clone()),
                BODY,
            ),
            (
                "another body",
                (id.clone(), t.clone(), signature.clone()),
                b"{}".as_slice(),
            ),
        ];
        for (what, headers, body) in tampered {
            assert_eq!(
                check_standard(&v, &headers, body),
                Err(SignatureError::Mismatch),
                "{what}"
            );
        }
    }

    #[test]
    fn standard_refuses_an_expired_or_future_timestamp() {
        let v = verifier("secret", false);
        for (at, expected) in [
            (NOW - 301, Err(SignatureError::Expired)),
            (NOW + 301, Err(SignatureError::Expired)),
            (NOW - 300, Ok(())),
        ] {
            let headers = sign_standard(b"secret", "evt_1", at, BODY).unwrap();
            assert_eq!(check_standard(&v, &headers, BODY), expected, "{at}");
        }
    }

    #[test]
    fn standard_refuses_missing_or_malformed_headers() {
        let v = verifier("secret", false);
        let (id, t, signature) = signed_standard("secret");
        let full = standard(&id, &t, &signature);
        let cases = [
            (
                StandardHeaders { id: None, ..full },
                SignatureError::MissingStandardHeader("webhook-id"),
            ),
            (
                StandardHeaders {
                    id: Some(b" "),
                    ..full
                },
                SignatureError::MissingStandardHeader("webhook-id"),
            ),
            (
                StandardHeaders {
                    timestamp: None,
                    ..full
                },
                SignatureError::MissingStandardHeader("webhook-timestamp"),
            ),
            (
                StandardHeaders {
                    signature: Some(b""),
                    ..full
                },
                SignatureError::MissingStandardHeader("webhook-signature"),
            ),
            (
                StandardHeaders {
                    timestamp: Some(b"-5"),
                    ..full
                },
                SignatureError::MalformedStandardTimestamp,
            ),
            (
                StandardHeaders {
                    timestamp: Some(b"2024-01-01T00:00:00Z"),
                    ..full
                },
                SignatureError::MalformedStandardTimestamp,
            ),
            (
                StandardHeaders {
                    signature: Some(b"v1a,abc v2,def"),
                    ..full
                },
                SignatureError::MalformedStandardSignature,
            ),
            (
                StandardHeaders {
                    signature: Some(&signature.as_bytes()[3..]),
                    ..full
                },
                SignatureError::MalformedStandardSignature,
            ),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                v.verify_standard(headers, BODY, NOW),
                Err(expected.clone()),
                "{expected}"
            );
        }
    }

    #[test]
    fn a_whsec_secret_that_does_not_decode_signs_nothing() {
        for bad in ["whsec_", "whsec_not base64!", "whsec_Zh=="] {
            let secrets = config_with(&format!("good, {bad}"))
                .webhook_secrets()
                .unwrap();
            assert_eq!(
                Verifier::try_new(secrets.clone(), false, Duration::from_secs(300)).unwrap_err(),
                InvalidStandardSecret { position: 2 },
                "{bad}"
            );
            let v = Verifier::new(secrets, false, Duration::from_secs(300));
            // Refused for the Standard form whatever key an attacker guesses
            // (an empty key above all); the other secret still works.
            let mut message = format!("evt_1.{NOW}.").into_bytes();
            message.extend_from_slice(BODY);
            let empty_key = format!("v1,{}", b64::encode(&mac(b"", &message)));
            assert_eq!(
                check_standard(&v, &("evt_1".into(), NOW.to_string(), empty_key), BODY),
                Err(SignatureError::Mismatch),
                "{bad}"
            );
            assert_eq!(check_standard(&v, &signed_standard("good"), BODY), Ok(()));
        }
    }

    #[test]
    fn the_x_signature_forms_keep_using_each_secret_as_written() {
        // Unchanged for existing senders: a secret that happens to start with
        // whsec_ is its own bytes in the two older forms.
        let v = verifier(SPEC_SECRET, true);
        let header = sign_timestamped(SPEC_SECRET.as_bytes(), NOW, BODY);
        assert_eq!(check(&v, Some(&header), BODY), Ok(()));
        // And the Standard form is timestamped, so WEBHOOK_REQUIRE_TIMESTAMP
        // accepts it.
        assert_eq!(
            check_standard(&v, &signed_standard(SPEC_SECRET), BODY),
            Ok(())
        );
    }

    #[test]
    fn debug_never_shows_keys() {
        let v = verifier(&format!("raw-secret-value, {SPEC_SECRET}"), false);
        let shown = format!("{v:?}");
        assert!(!shown.contains("raw-secret-value"), "{shown}");
        assert!(!shown.contains("MfKQ9r8G"), "{shown}");
        let key = standard_key(SPEC_SECRET.as_bytes()).unwrap();
        assert!(
            !shown.contains(&format!("{:?}", &key[..4])[1..8]),
            "{shown}"
        );
    }
}

#[cfg(test)]
mod proptests {
    //! Generated inputs: the parser never panics, a header built from valid
    //! parts reads back exactly, and no change to a signature's value passes.

    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"proptest-secret";

    fn verifier() -> Verifier {
        let config = super::tests::config_with(std::str::from_utf8(SECRET).unwrap());
        Verifier::new(
            config.webhook_secrets().unwrap(),
            false,
            Duration::from_secs(300),
        )
    }

    /// Hex of `bytes`, each digit in upper or lower case as `upper` says.
    fn hex_in_cases(bytes: &[u8], upper: &[bool]) -> String {
        hex::encode(bytes)
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
            .collect()
    }

    /// Text that looks like a header: the characters the grammar uses.
    fn header_like() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[tv1=, 0-9a-fA-F\\-+xg]{0,160}").unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics_on_any_bytes(header in proptest::collection::vec(any::<u8>(), 0..200),
                                     body in proptest::collection::vec(any::<u8>(), 0..64),
                                     now in any::<i64>()) {
            let _ = parse_header(&header);
            let _ = verifier().verify(Some(&header), &body, now);
        }

        #[test]
        fn never_panics_on_header_like_text(header in header_like(), now in any::<i64>()) {
            let parsed = parse_header(header.as_bytes());
            let verified = verifier().verify(Some(header.as_bytes()), b"{}", now);
            // Whatever is not even readable is never accepted.
            if parsed.is_err() {
                prop_assert!(verified.is_err());
            }
        }

        #[test]
        fn a_timestamped_header_reads_back_exactly(
            timestamp in 0i64..=999_999_999_999,
            signatures in proptest::collection::vec(proptest::array::uniform32(any::<u8>()), 1..4),
            upper in proptest::collection::vec(any::<bool>(), 1..64),
            spaces in 0usize..3,
            other_key in proptest::option::of("[a-su-z][a-z0-9]{0,4}=[a-z0-9]{0,8}"),
        ) {
            let pad = " ".repeat(spaces);
            let mut parts = vec![format!("t={timestamp}")];
            for signature in &signatures {
                parts.push(format!("{pad}v1={}", hex_in_cases(signature, &upper)));
            }
            if let Some(other) = other_key.filter(|o| !o.starts_with("v1=")) {
                parts.insert(1, other);
            }
            let header = format!("{pad}{}{pad}", parts.join(","));
            let parsed = parse_header(header.as_bytes());
            let timestamp_text = timestamp.to_string();
            prop_assert_eq!(
                parsed,
                Ok(SignatureHeader::Timestamped {
                    timestamp,
                    timestamp_text: timestamp_text.as_bytes(),
                    signatures: signatures.clone(),
                })
            );
        }

        #[test]
        fn a_plain_header_reads_back_exactly(
            signature in proptest::array::uniform32(any::<u8>()),
            upper in proptest::collection::vec(any::<bool>(), 1..64),
        ) {
            let header = hex_in_cases(&signature, &upper);
            prop_assert_eq!(parse_header(header.as_bytes()), Ok(SignatureHeader::Plain(signature)));
        }

        #[test]
        fn a_valid_signature_passes_and_any_changed_hex_digit_is_refused(
            body in proptest::collection::vec(any::<u8>(), 0..128),
            position in 0usize..MAC_LEN * 2,
            delta in 1u8..16,
            upper in any::<bool>(),
            timestamped in any::<bool>(),
        ) {
            let now = 1_790_000_000;
            let v = verifier();
            let good = if timestamped {
                sign_timestamped(SECRET, now, &body)
            } else {
                sign(SECRET, &body)
            };
            prop_assert_eq!(v.verify(Some(good.as_bytes()), &body, now), Ok(()));

            // Change one hex digit to another value (either case).
            let start = good.len() - MAC_LEN * 2;
            let mut bytes = good.into_bytes();
            let old = u8::from_str_radix(std::str::from_utf8(&bytes[start + position..=start + position]).unwrap(), 16).unwrap();
            let new = (old + delta) % 16;
            let digit = char::from_digit(u32::from(new), 16).unwrap();
            bytes[start + position] = if upper { digit.to_ascii_uppercase() } else { digit } as u8;
            prop_assert_eq!(v.verify(Some(&bytes), &body, now), Err(SignatureError::Mismatch));

            // A non-hex character in its place is malformed, never accepted.
            bytes[start + position] = b'g';
            prop_assert_eq!(v.verify(Some(&bytes), &body, now), Err(SignatureError::Malformed));
        }

        #[test]
        fn the_standard_form_never_panics_and_never_accepts_the_unreadable(
            id in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            timestamp in proptest::option::of("[0-9 -]{0,14}"),
            signature in proptest::option::of("[v1a2, A-Za-z0-9+/=]{0,120}"),
            body in proptest::collection::vec(any::<u8>(), 0..64),
            now in any::<i64>(),
        ) {
            let headers = StandardHeaders {
                id: id.as_deref(),
                timestamp: timestamp.as_deref().map(str::as_bytes),
                signature: signature.as_deref().map(str::as_bytes),
            };
            let verified = verifier().verify_standard(headers, &body, now);
            let readable = signature
                .as_deref()
                .is_some_and(|s| parse_standard_signatures(s.as_bytes()).is_ok());
            if !readable {
                prop_assert!(verified.is_err());
            }
        }

        #[test]
        fn a_standard_signature_passes_and_any_changed_character_is_refused(
            body in proptest::collection::vec(any::<u8>(), 0..128),
            id in "[A-Za-z0-9_]{1,32}",
            position in 0usize..44,
            replacement in proptest::sample::select(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=".to_vec()),
        ) {
            let now = 1_790_000_000;
            let v = verifier();
            let (id, timestamp, signature) = sign_standard(SECRET, &id, now, &body).unwrap();
            let check = |signature: &[u8]| {
                let headers = StandardHeaders {
                    id: Some(id.as_bytes()),
                    timestamp: Some(timestamp.as_bytes()),
                    signature: Some(signature),
                };
                v.verify_standard(headers, &body, now)
            };
            prop_assert_eq!(check(signature.as_bytes()), Ok(()));
            let mut changed = signature.clone().into_bytes();
            let at = 3 + position; // after "v1,"
            prop_assume!(changed[at] != replacement);
            changed[at] = replacement;
            prop_assert!(check(&changed).is_err());
        }
    }
}
