//! Reading the signature headers (`X-Signature` in both forms,
//! `webhook-signature`) into MACs, before any secret is involved. Never
//! panics, whatever the bytes: the property tests and fuzz targets hold it
//! to that.

use super::{MAC_LEN, SignatureError, b64};

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

/// An `X-Signature` value, read but not yet checked against any secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureHeader<'a> {
    /// The plain form: `<hex>`.
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
        parse_timestamped(header)
    } else {
        decode_mac(header)
            .map(SignatureHeader::Plain)
            .ok_or(SignatureError::Malformed)
    }
}

/// The timestamped form starts with a `key=` pair; hex never contains `=`.
pub(super) fn looks_timestamped(header: &[u8]) -> bool {
    header.contains(&b'=')
}

/// Parses `t=<digits>,v1=<hex>[,v1=<hex>]`; other keys (future schemes) are
/// ignored, but exactly one `t` and at least one well-formed `v1` are needed.
fn parse_timestamped(header: &[u8]) -> Result<SignatureHeader<'_>, SignatureError> {
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
    Ok(SignatureHeader::Timestamped {
        timestamp,
        timestamp_text,
        signatures,
    })
}

/// Plain decimal digits only (no sign, no spaces), at most 12 of them.
pub(super) fn parse_unix_seconds(value: &[u8]) -> Result<i64, SignatureError> {
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
