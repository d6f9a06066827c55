//! `X-Signature` parsing and verification on arbitrary bytes: never a
//! panic, and nothing but a correct signature is ever accepted.
//!
//! Input layout: the first byte splits the rest into header and body.

#![no_main]

use std::{sync::LazyLock, time::Duration};

use gateway::{
    config::Config,
    security::signature::{self, SignatureHeader, Verifier},
};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret";
const NOW: i64 = 1_790_000_000;

/// Built once: parsing the configuration on every input would be most of
/// the work.
static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    let mut config = Config::for_services(
        "http://127.0.0.1:1",
        "http://127.0.0.1:1",
        ([127, 0, 0, 1], 0).into(),
    );
    config.webhook_secret = Some(SECRET.to_owned());
    Verifier::new(
        config.webhook_secrets().expect("a valid secret"),
        false,
        Duration::from_secs(300),
    )
});

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (header, body) = rest.split_at(split);

    let parsed = signature::parse_header(header);
    let verified = VERIFIER.verify(Some(header), body, NOW);
    match parsed {
        // Unreadable is never accepted.
        Err(_) => assert!(verified.is_err()),
        Ok(SignatureHeader::Plain(mac)) => {
            // Accepted exactly when it is the body's MAC.
            let expected = signature::mac(SECRET.as_bytes(), body);
            assert_eq!(verified.is_ok(), mac == expected);
        }
        Ok(SignatureHeader::Timestamped {
            timestamp,
            timestamp_text,
            signatures,
        }) => {
            assert!(timestamp >= 0);
            assert!(timestamp_text.iter().all(u8::is_ascii_digit));
            assert!(!signatures.is_empty());
            if verified.is_ok() {
                let mut signed = timestamp_text.to_vec();
                signed.push(b'.');
                signed.extend_from_slice(body);
                let expected = signature::mac(SECRET.as_bytes(), &signed);
                assert!(signatures.contains(&expected));
                assert!(NOW.abs_diff(timestamp) <= 300);
            }
        }
    }
});
