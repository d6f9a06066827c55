//! Each signature form against known values: what is accepted, what is
//! refused and why, and that keys never reach `Debug`.

use super::*;
use crate::config::Config;
use SignatureError::*;

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

/// `header` over `BODY`.
fn verdict(v: &Verifier, header: &str) -> Result<(), SignatureError> {
    check(v, Some(header), BODY)
}

#[test]
fn accepts_the_plain_form() {
    let v = verifier("secret", false);
    assert_eq!(verdict(&v, &sign(b"secret", BODY)), Ok(()));
    // Uppercase hex and surrounding spaces are the same signature.
    let upper = format!("  {}  ", sign(b"secret", BODY).to_uppercase());
    assert_eq!(verdict(&v, &upper), Ok(()));
}

#[test]
fn accepts_the_timestamped_form() {
    let v = verifier("secret", false);
    let header = sign_timestamped(b"secret", NOW - 10, BODY);
    assert_eq!(verdict(&v, &header), Ok(()));
}

#[test]
fn accepts_any_of_several_v1_signatures() {
    let v = verifier("new", false);
    let old = sign_timestamped(b"old", NOW, BODY);
    let new = sign_timestamped(b"new", NOW, BODY);
    let new_hex = new.split("v1=").nth(1).unwrap();
    let header = format!("{old},v1={new_hex}");
    assert_eq!(verdict(&v, &header), Ok(()));
}

#[test]
fn accepts_each_rotated_secret() {
    let v = verifier("old-secret,new-secret", false);
    assert_eq!(verdict(&v, &sign(b"old-secret", BODY)), Ok(()));
    assert_eq!(verdict(&v, &sign(b"new-secret", BODY)), Ok(()));
    let ts = sign_timestamped(b"old-secret", NOW, BODY);
    assert_eq!(verdict(&v, &ts), Ok(()));
    assert_eq!(verdict(&v, &sign(b"other-secret", BODY)), Err(Mismatch));
}

#[test]
fn refuses_a_missing_or_empty_header() {
    let v = verifier("secret", false);
    assert_eq!(check(&v, None, BODY), Err(Missing));
    assert_eq!(verdict(&v, ""), Err(Missing));
    assert_eq!(verdict(&v, "   "), Err(Missing));
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
        assert_eq!(verdict(&v, &header), Err(Malformed), "{what}");
    }
}

#[test]
fn refuses_a_valid_signature_over_another_body() {
    let v = verifier("secret", false);
    let other = sign(
        b"secret",
        b"{\"order_id\":\"x\",\"payment_status\":\"failed\"}",
    );
    assert_eq!(verdict(&v, &other), Err(Mismatch));
    let ts = sign_timestamped(b"secret", NOW, b"{}");
    assert_eq!(verdict(&v, &ts), Err(Mismatch));
}

#[test]
fn refuses_an_expired_or_future_timestamp() {
    let v = verifier("secret", false);
    let old = sign_timestamped(b"secret", NOW - 301, BODY);
    assert_eq!(verdict(&v, &old), Err(Expired));
    let future = sign_timestamped(b"secret", NOW + 301, BODY);
    assert_eq!(verdict(&v, &future), Err(Expired));
    let edge = sign_timestamped(b"secret", NOW - 300, BODY);
    assert_eq!(verdict(&v, &edge), Ok(()));
}

#[test]
fn the_timestamp_is_part_of_what_is_signed() {
    let v = verifier("secret", false);
    // A signature made for t=NOW-10, presented with t=NOW, must fail.
    let header = sign_timestamped(b"secret", NOW - 10, BODY);
    let hex = header.split("v1=").nth(1).unwrap();
    assert_eq!(verdict(&v, &format!("t={NOW},v1={hex}")), Err(Mismatch));
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
        assert_eq!(verdict(&v, &header), Err(MalformedTimestamped), "{header}");
    }
    assert_eq!(verdict(&v, &format!("t={NOW},v1=abc")), Err(Malformed));
}

#[test]
fn require_timestamp_refuses_the_plain_form() {
    let v = verifier("secret", true);
    assert_eq!(verdict(&v, &sign(b"secret", BODY)), Err(TimestampRequired));
    let ts = sign_timestamped(b"secret", NOW, BODY);
    assert_eq!(verdict(&v, &ts), Ok(()));
}

#[test]
fn signs_the_exact_bytes() {
    let v = verifier("secret", false);
    // Same JSON meaning, different bytes: refused.
    let reformatted =
        br#"{ "order_id":"7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11","payment_status":"paid"}"#;
    assert_eq!(
        check(&v, Some(&sign(b"secret", BODY)), reformatted),
        Err(Mismatch)
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
        Err(Mismatch)
    );
    assert_eq!(
        check_standard(&v, &signed_standard("another-secret"), BODY),
        Err(Mismatch)
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
        Err(Mismatch),
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
        assert_eq!(check_standard(&v, &headers, body), Err(Mismatch), "{what}");
    }
}

#[test]
fn standard_refuses_an_expired_or_future_timestamp() {
    let v = verifier("secret", false);
    for (at, expected) in [
        (NOW - 301, Err(Expired)),
        (NOW + 301, Err(Expired)),
        (NOW - 300, Ok(())),
    ] {
        let headers = sign_standard(b"secret", "evt_1", at, BODY).unwrap();
        assert_eq!(check_standard(&v, &headers, BODY), expected, "{at}");
    }
}

#[test]
fn standard_refuses_missing_or_malformed_headers() {
    use SignatureError::{
        MalformedStandardSignature as BadSignature, MalformedStandardTimestamp as BadTimestamp,
        MissingStandardHeader as Missing,
    };
    let v = verifier("secret", false);
    let (id, t, signature) = signed_standard("secret");
    let truncated = &signature.as_bytes()[3..];
    let (id, t, sig) = (
        Some(id.as_bytes()),
        Some(t.as_bytes()),
        Some(signature.as_bytes()),
    );
    let cases = [
        (None, t, sig, Missing("webhook-id")),
        (Some(b" ".as_slice()), t, sig, Missing("webhook-id")),
        (id, None, sig, Missing("webhook-timestamp")),
        (id, t, Some(b"".as_slice()), Missing("webhook-signature")),
        (id, Some(b"-5".as_slice()), sig, BadTimestamp),
        (
            id,
            Some(b"2024-01-01T00:00:00Z".as_slice()),
            sig,
            BadTimestamp,
        ),
        (id, t, Some(b"v1a,abc v2,def".as_slice()), BadSignature),
        (id, t, Some(truncated), BadSignature),
    ];
    for (id, timestamp, signature, expected) in cases {
        let headers = StandardHeaders {
            id,
            timestamp,
            signature,
        };
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
            Err(Mismatch),
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
    assert_eq!(verdict(&v, &header), Ok(()));
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
