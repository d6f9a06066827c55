//! Payment webhook signatures: HMAC-SHA256 over the exact bytes received,
//! checked before the body is parsed, compared in constant time.
//!
//! Two header forms are accepted:
//! - original: `X-Signature: <hex of HMAC(secret, body)>`;
//! - timestamped: `X-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`,
//!   signing `"<t>." + body`, refused outside the tolerance window, so a
//!   captured request cannot be replayed later. Several `v1` entries let a
//!   sender sign with an old and a new secret during rotation.
//!
//! Every configured secret is tried (rotation on the receiving side), and all
//! candidates are compared without an early exit, so timing tells an attacker
//! nothing about which part matched.

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
        }
    }
}

/// Checks webhook signatures against the configured secrets.
#[derive(Clone, Debug)]
pub struct Verifier {
    secrets: WebhookSecrets,
    require_timestamp: bool,
    tolerance: Duration,
}

impl Verifier {
    pub fn new(secrets: WebhookSecrets, require_timestamp: bool, tolerance: Duration) -> Self {
        Self {
            secrets,
            require_timestamp,
            tolerance,
        }
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
                self.check_any(&signatures, &signed)
            }
            SignatureHeader::Plain(signature) => self.check_any(&[signature], body),
        }
    }

    /// True when any (secret, signature) pair matches; every pair is computed
    /// and compared, whatever matched first.
    fn check_any(
        &self,
        signatures: &[[u8; MAC_LEN]],
        message: &[u8],
    ) -> Result<(), SignatureError> {
        let mut matched = Choice::from(0);
        for secret in self.secrets.as_slices() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use clap::Parser;

    const NOW: i64 = 1_790_000_000;
    const BODY: &[u8] =
        br#"{"order_id":"7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11","payment_status":"paid"}"#;

    fn verifier(secrets: &str, require_timestamp: bool) -> Verifier {
        let mut config = Config::parse_from(["gateway"]);
        config.webhook_secret = Some(secrets.to_owned());
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
}

#[cfg(test)]
mod proptests {
    //! Generated inputs: the parser never panics, a header built from valid
    //! parts reads back exactly, and no change to a signature's value passes.

    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"proptest-secret";

    fn verifier() -> Verifier {
        let mut config = <crate::config::Config as clap::Parser>::parse_from(["gateway"]);
        config.webhook_secret = Some(String::from_utf8(SECRET.to_vec()).unwrap());
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
    }
}
