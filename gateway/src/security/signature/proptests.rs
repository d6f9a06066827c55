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
