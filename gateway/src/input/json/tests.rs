//! Reading bodies field by field: what each parser accepts, and how every
//! violation is named.

use super::*;

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap()
}

#[test]
fn tells_body_problems_apart() {
    assert!(matches!(Fields::from_body(b""), Err(BodyError::Empty)));
    assert!(matches!(Fields::from_body(b"  \n"), Err(BodyError::Empty)));
    assert!(matches!(
        Fields::from_body(b"{\"a\":"),
        Err(BodyError::Syntax(_))
    ));
    assert!(matches!(
        Fields::from_body(b"{} x"),
        Err(BodyError::Syntax(_))
    ));
    assert!(matches!(
        Fields::from_body(b"NaN"),
        Err(BodyError::Syntax(_))
    ));
    assert!(matches!(
        Fields::from_body(b"[1]"),
        Err(BodyError::NotAnObject(Kind::Array))
    ));
    assert!(matches!(
        Fields::from_body(b"null"),
        Err(BodyError::NotAnObject(Kind::Null))
    ));
    assert!(matches!(
        Fields::from_body(b"\xff"),
        Err(BodyError::Syntax(_))
    ));
    assert!(Fields::from_body(b" {} ").is_ok());
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    // Inside a member, the raw text is skipped without recursion, then
    // refused by the field's parser like any other wrong type.
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let fields = Fields::from_body(deep.as_bytes()).unwrap();
    let mut errors = Violations::default();
    assert_eq!(fields.required(&mut errors, "a", &string), None);
    let read = |f: &Fields<'_>, e: &mut Violations| f.required(e, "q", &string);
    assert_eq!(fields.required_objects(&mut errors, "a", read), None);
    assert_eq!(errors.into_vec().len(), 2);
    // At the top, serde_json's recursion limit answers.
    let top = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(Fields::from_body(top.as_bytes()).is_err());
}

#[test]
fn refuses_duplicate_keys() {
    let fields = Fields::from_body(br#"{"a":1,"b":2,"a":3,"a":4}"#).unwrap();
    let mut errors = Violations::default();
    fields.check_duplicates(&mut errors);
    assert_eq!(
        errors.into_vec(),
        vec![Violation::new(
            "a",
            "duplicate key: the field is given more than once"
        )]
    );
}

#[test]
fn tells_absent_null_and_value_apart() {
    let fields = Fields::from_body(br#"{"n":null,"v":"x"}"#).unwrap();
    let mut errors = Violations::default();
    assert_eq!(
        fields.patch(&mut errors, "missing", &string),
        Some(Patch::Unchanged)
    );
    assert_eq!(fields.patch(&mut errors, "n", &string), Some(Patch::Clear));
    assert_eq!(
        fields.patch(&mut errors, "v", &string),
        Some(Patch::Set("x".into()))
    );
    assert_eq!(
        fields.value(&mut errors, "missing", Presence::Optional, &string),
        Some(None)
    );
    assert!(errors.is_empty());
    assert_eq!(
        fields.value(&mut errors, "n", Presence::Optional, &string),
        None
    );
    assert_eq!(fields.required(&mut errors, "missing", &string), None);
    let messages: Vec<_> = errors
        .into_vec()
        .into_iter()
        .map(|v| (v.field, v.message))
        .collect();
    assert_eq!(
        messages,
        vec![
            ("n".into(), "must not be null".into()),
            ("missing".into(), "field required".into())
        ]
    );
}

#[test]
fn nested_arrays_name_each_element() {
    let fields = Fields::from_body(br#"{"items":[{"q":1},{"q":"x"},3]}"#).unwrap();
    let mut errors = Violations::default();
    let read = |f: &Fields<'_>, e: &mut Violations| f.required(e, "q", &integer(1, 10));
    assert_eq!(fields.required_objects(&mut errors, "items", read), None);
    let fields_named: Vec<_> = errors.into_vec().into_iter().map(|v| v.field).collect();
    assert_eq!(fields_named, vec!["items[1].q", "items[2]"]);
}

#[test]
fn strings_refuse_other_types_and_nul() {
    assert_eq!(string(&raw(r#""a\u00e9""#)), Ok("aé".into()));
    assert!(string(&raw("1")).unwrap_err().contains("a number"));
    assert!(string(&raw(r#""a\u0000b""#)).unwrap_err().contains("NUL"));
    assert!(string(&raw(r#""\ud800""#)).is_err());
    let name = string_of_length(1, 3);
    assert!(name(&raw(r#""""#)).is_err());
    assert_eq!(name(&raw(r#""äöü""#)), Ok("äöü".into()));
    assert!(name(&raw(r#""abcd""#)).is_err());
}

#[test]
fn integers_are_exact_and_bounded() {
    let quantity = integer(0, i64::from(i32::MAX));
    assert_eq!(quantity(&raw("5")), Ok(5));
    assert_eq!(quantity(&raw("2147483647")), Ok(2_147_483_647));
    assert!(quantity(&raw("2147483648")).is_err());
    assert!(quantity(&raw("-1")).is_err());
    assert!(quantity(&raw("1.5")).is_err());
    assert!(quantity(&raw("\"5\"")).is_err());
    assert!(quantity(&raw("true")).is_err());
    assert!(quantity(&raw("1e400")).is_err());
}

#[test]
fn prices_from_numbers_and_strings() {
    use std::str::FromStr;
    let d = |s| rust_decimal::Decimal::from_str(s).unwrap();
    assert_eq!(price(&raw("999.99")), Ok(d("999.99")));
    assert_eq!(price(&raw("\"999.99\"")), Ok(d("999.99")));
    assert!(price(&raw("\"NaN\"")).is_err());
    assert!(price(&raw("true")).is_err());
    assert!(price(&raw("[1]")).is_err());
    assert!(
        price(&raw("0.001"))
            .unwrap_err()
            .contains("two decimal places")
    );
}

#[test]
fn enums_and_uuids() {
    let status = one_of(&["paid", "failed"]);
    assert_eq!(status(&raw("\"paid\"")), Ok("paid"));
    assert!(status(&raw("\"PAID\"")).is_err());
    assert!(status(&raw("1")).is_err());
    assert!(uuid(&raw("\"not-a-uuid\"")).is_err());
    assert!(uuid(&raw("\"7d6f0c1e-3f43-4c38-9d1c-6a5f2f0e2c11\"")).is_ok());
}
