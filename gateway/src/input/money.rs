//! Exact numbers from request text. A JSON number is read from its characters
//! (never through `f64`), so `0.1` is exactly one tenth, `19.999999999999999`
//! is refused as sub-cent instead of being rounded to `20.00`, and `1e400` is
//! "too large" instead of infinity.

use rust_decimal::{Decimal, prelude::ToPrimitive};

/// Largest price the contract allows: 99999999.99, i.e. 9_999_999_999 cents,
/// split into the 32-bit words `from_parts` takes (2 * 2^32 + 1_410_065_407).
pub const MAX_PRICE: Decimal = Decimal::from_parts(1_410_065_407, 2, 0, false, 2);

/// rust_decimal keeps at most 28 significant digits.
const MAX_DIGITS: usize = 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("not a number")]
    NotANumber,
    #[error("too large")]
    TooLarge,
    #[error("too many fractional digits")]
    TooPrecise,
}

/// Parses JSON number syntax (`-? int frac? exp?`) exactly. The same grammar
/// applies to money sent as a string, so `"NaN"`, `"Infinity"`, `" 1"`,
/// `"0x10"` and `"1,5"` are all refused.
pub fn parse_exact(text: &str) -> Result<Decimal, NumberError> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    let negative = bytes.first() == Some(&b'-');
    if negative {
        pos += 1;
    }
    let int_start = pos;
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    let int_digits = &text[int_start..pos];
    // JSON: at least one digit, and no leading zero unless the part is "0".
    if int_digits.is_empty() || (int_digits.len() > 1 && int_digits.starts_with('0')) {
        return Err(NumberError::NotANumber);
    }
    let mut frac_digits = "";
    if bytes.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        frac_digits = &text[start..pos];
        if frac_digits.is_empty() {
            return Err(NumberError::NotANumber);
        }
    }
    let mut exponent: i64 = 0;
    if matches!(bytes.get(pos), Some(b'e' | b'E')) {
        pos += 1;
        let exp_negative = match bytes.get(pos) {
            Some(b'-') => {
                pos += 1;
                true
            }
            Some(b'+') => {
                pos += 1;
                false
            }
            _ => false,
        };
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            // Saturate: anything beyond a million digits of shift is out of
            // range either way, and this keeps the arithmetic small.
            exponent = (exponent * 10 + i64::from(bytes[pos] - b'0')).min(1_000_000);
            pos += 1;
        }
        if pos == start {
            return Err(NumberError::NotANumber);
        }
        if exp_negative {
            exponent = -exponent;
        }
    }
    if pos != bytes.len() {
        return Err(NumberError::NotANumber);
    }

    // value = digits * 10^-scale
    let mut digits: String = format!("{int_digits}{frac_digits}");
    let mut scale = frac_digits.len() as i64 - exponent;
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Ok(Decimal::ZERO);
    }
    digits = significant.to_owned();
    // Trailing zeros after the point carry no value: drop them first, so
    // "10.000" is ten, not "three fractional digits".
    while scale > 0 && digits.ends_with('0') {
        digits.pop();
        scale -= 1;
    }
    if scale < 0 {
        let zeros = usize::try_from(-scale).map_err(|_| NumberError::TooLarge)?;
        if digits.len() + zeros > MAX_DIGITS {
            return Err(NumberError::TooLarge);
        }
        digits.push_str(&"0".repeat(zeros));
        scale = 0;
    }
    if scale > MAX_DIGITS as i64 {
        return Err(NumberError::TooPrecise);
    }
    if digits.len() > MAX_DIGITS {
        // The integer part alone has too many digits, or the fraction does.
        let integer_digits = digits.len() as i64 - scale;
        return Err(if integer_digits > MAX_DIGITS as i64 - 2 {
            NumberError::TooLarge
        } else {
            NumberError::TooPrecise
        });
    }
    let mantissa: i128 = digits.parse().map_err(|_| NumberError::NotANumber)?;
    let mantissa = if negative { -mantissa } else { mantissa };
    let scale = u32::try_from(scale).map_err(|_| NumberError::TooPrecise)?;
    Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|_| NumberError::TooLarge)
}

/// An integer from number text: `5`, `5.0` and `5e0` are five (the value
/// counts, not its spelling); `5.5` is not an integer.
pub fn parse_integer(text: &str) -> Result<i64, IntegerError> {
    let value = parse_exact(text).map_err(|error| match error {
        NumberError::NotANumber => IntegerError::NotAnInteger,
        NumberError::TooLarge => IntegerError::OutOfRange,
        NumberError::TooPrecise => IntegerError::NotAnInteger,
    })?;
    if !value.fract().is_zero() {
        return Err(IntegerError::NotAnInteger);
    }
    value.to_i64().ok_or(IntegerError::OutOfRange)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegerError {
    NotAnInteger,
    OutOfRange,
}

/// Why a price is refused; `Display` is the message a client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("must be a decimal number (a JSON number or a string such as \"999.99\")")]
    NotANumber,
    #[error("must be greater than 0")]
    NotPositive,
    #[error("must have at most two decimal places")]
    SubCent,
    #[error("must be at most 99999999.99")]
    TooLarge,
}

/// A price from its text (the JSON number's characters, or the string's
/// content), checked against the contract: > 0, at most two fractional
/// digits, at most 99999999.99.
pub fn parse_price(text: &str) -> Result<Decimal, PriceError> {
    let value = parse_exact(text).map_err(|error| match error {
        NumberError::NotANumber => PriceError::NotANumber,
        NumberError::TooLarge => PriceError::TooLarge,
        NumberError::TooPrecise => PriceError::SubCent,
    })?;
    if value <= Decimal::ZERO {
        return Err(PriceError::NotPositive);
    }
    if value.normalize().scale() > 2 {
        return Err(PriceError::SubCent);
    }
    if value > MAX_PRICE {
        return Err(PriceError::TooLarge);
    }
    Ok(value.normalize())
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_exact("0.1"), Ok(dec("0.1")));
        assert_eq!(parse_exact("999.99"), Ok(dec("999.99")));
        assert_eq!(parse_exact("-12.5"), Ok(dec("-12.5")));
        assert_eq!(parse_exact("0"), Ok(Decimal::ZERO));
        assert_eq!(parse_exact("-0.000"), Ok(Decimal::ZERO));
        assert_eq!(parse_exact("1e2"), Ok(dec("100")));
        assert_eq!(parse_exact("1.5E+1"), Ok(dec("15")));
        assert_eq!(parse_exact("25e-1"), Ok(dec("2.5")));
        assert_eq!(parse_exact("10.000"), Ok(dec("10")));
        assert_eq!(
            parse_exact("1234567890123456789012345678"),
            Ok(dec("1234567890123456789012345678"))
        );
    }

    #[test]
    fn does_not_round_what_a_float_would() {
        // As f64 this is 20.0; exactly it has 15 fractional digits.
        assert_eq!(
            parse_exact("19.999999999999999"),
            Ok(dec("19.999999999999999"))
        );
        assert_eq!(parse_price("19.999999999999999"), Err(PriceError::SubCent));
        // 0.1 + 0.2 style values stay exact.
        assert_eq!(parse_price("0.3"), Ok(dec("0.3")));
    }

    #[test]
    fn refuses_what_is_not_json_number_syntax() {
        for text in [
            "",
            "-",
            "NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "inf",
            " 1",
            "1 ",
            "+1",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "0x10",
            "1,5",
            "1_000",
            "١",
            "1.2.3",
            "--1",
            "1e5.5",
            "true",
        ] {
            assert_eq!(parse_exact(text), Err(NumberError::NotANumber), "{text:?}");
        }
    }

    #[test]
    fn refuses_what_does_not_fit() {
        assert_eq!(parse_exact("1e400"), Err(NumberError::TooLarge));
        assert_eq!(
            parse_exact("1e999999999999999999999"),
            Err(NumberError::TooLarge)
        );
        assert_eq!(
            parse_exact("99999999999999999999999999999"),
            Err(NumberError::TooLarge)
        );
        assert_eq!(parse_exact("1e-400"), Err(NumberError::TooPrecise));
        assert_eq!(
            parse_exact("0.00000000000000000000000000001"),
            Err(NumberError::TooPrecise)
        );
        // Zero with any exponent is still zero.
        assert_eq!(parse_exact("0e999999"), Ok(Decimal::ZERO));
    }

    #[test]
    fn max_price_is_the_contracts() {
        assert_eq!(MAX_PRICE, dec("99999999.99"));
    }

    #[test]
    fn prices_follow_the_contract() {
        assert_eq!(parse_price("999.99"), Ok(dec("999.99")));
        assert_eq!(parse_price("0.01"), Ok(dec("0.01")));
        assert_eq!(parse_price("99999999.99"), Ok(dec("99999999.99")));
        assert_eq!(parse_price("5"), Ok(dec("5")));
        assert_eq!(parse_price("1.50"), Ok(dec("1.5")));
        assert_eq!(parse_price("0"), Err(PriceError::NotPositive));
        assert_eq!(parse_price("-1"), Err(PriceError::NotPositive));
        assert_eq!(parse_price("0.001"), Err(PriceError::SubCent));
        assert_eq!(parse_price("10.005"), Err(PriceError::SubCent));
        assert_eq!(parse_price("100000000"), Err(PriceError::TooLarge));
        assert_eq!(parse_price("99999999.991"), Err(PriceError::SubCent));
        assert_eq!(parse_price("1e400"), Err(PriceError::TooLarge));
        assert_eq!(parse_price("1e-400"), Err(PriceError::SubCent));
        assert_eq!(parse_price("NaN"), Err(PriceError::NotANumber));
        assert_eq!(parse_price("Infinity"), Err(PriceError::NotANumber));
        assert_eq!(parse_price("ten"), Err(PriceError::NotANumber));
    }

    #[test]
    fn integers_by_value() {
        assert_eq!(parse_integer("5"), Ok(5));
        assert_eq!(parse_integer("5.0"), Ok(5));
        assert_eq!(parse_integer("5e2"), Ok(500));
        assert_eq!(parse_integer("-3"), Ok(-3));
        assert_eq!(parse_integer("5.5"), Err(IntegerError::NotAnInteger));
        assert_eq!(parse_integer("1e-400"), Err(IntegerError::NotAnInteger));
        assert_eq!(
            parse_integer("9223372036854775808"),
            Err(IntegerError::OutOfRange)
        );
        assert_eq!(parse_integer("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_integer("1e30"), Err(IntegerError::OutOfRange));
        assert_eq!(parse_integer("1e400"), Err(IntegerError::OutOfRange));
        assert_eq!(parse_integer("abc"), Err(IntegerError::NotAnInteger));
    }
}

#[cfg(test)]
mod proptests {
    //! Generated amounts: every price with at most two decimals in range
    //! reads back exactly, whatever its spelling; everything else is refused
    //! for the right reason; nothing goes through a float.

    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;

    /// Largest price in cents.
    const MAX_CENTS: i64 = 9_999_999_999;

    /// The spellings a client may use for `cents / 100`.
    fn spellings(cents: i64) -> Vec<String> {
        let amount = Decimal::new(cents, 2);
        let (units, fraction) = (cents / 100, cents % 100);
        vec![
            proto::money::format_2dp(amount),
            amount.normalize().to_string(),
            format!("{units}.{fraction:02}000"),
            format!("{cents}e-2"),
            format!("{cents}E-2"),
            format!("{}e-3", cents * 10),
            format!("0.{cents:0>12}e+10"),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn every_price_in_range_round_trips(cents in 1..=MAX_CENTS) {
            let amount = Decimal::new(cents, 2);
            for text in spellings(cents) {
                let parsed = parse_price(&text);
                prop_assert_eq!(parsed, Ok(amount.normalize()), "{}", text);
                // Formatting gives back the contract's text, two decimals.
                prop_assert_eq!(
                    proto::money::format_2dp(parsed.unwrap()),
                    format!("{}.{:02}", cents / 100, cents % 100)
                );
            }
            // And the wire form (units + nanos) holds it exactly too.
            let wire = proto::money::from_decimal(amount, "USD").unwrap();
            prop_assert_eq!(proto::money::to_decimal(&wire).unwrap(), amount);
        }

        #[test]
        fn sub_cent_amounts_are_refused(cents in 0..=MAX_CENTS, extra in 1u32..=9, zeros in 0usize..20) {
            let text = format!("{}.{:02}{}{extra}", cents / 100, cents % 100, "0".repeat(zeros));
            prop_assert_eq!(parse_price(&text), Err(PriceError::SubCent), "{}", text);
        }

        #[test]
        fn amounts_over_the_maximum_are_refused(
            cents in (MAX_CENTS + 1)..=i64::MAX / 10,
            shift in 0u32..40,
        ) {
            let text = format!("{}.{:02}", cents / 100, cents % 100);
            prop_assert_eq!(parse_price(&text), Err(PriceError::TooLarge), "{}", text);
            let text = format!("{cents}e{shift}");
            prop_assert_eq!(parse_price(&text), Err(PriceError::TooLarge), "{}", text);
        }

        #[test]
        fn zero_and_negative_amounts_are_refused(cents in 0..=i64::MAX / 10) {
            let text = format!("-{}.{:02}", cents / 100, cents % 100);
            prop_assert_eq!(parse_price(&text), Err(PriceError::NotPositive), "{}", text);
        }

        #[test]
        fn exact_parsing_agrees_with_decimal_arithmetic(
            mantissa in -(10i128.pow(26))..10i128.pow(26),
            scale in 0u32..=26,
        ) {
            // Any decimal rust_decimal holds, written out, reads back as
            // itself: digits are never rounded through a binary float.
            let value = Decimal::from_i128_with_scale(mantissa, scale);
            let text = value.to_string();
            prop_assert_eq!(parse_exact(&text), Ok(value.normalize()), "{}", text);
            prop_assert_eq!(Decimal::from_str(&text).unwrap(), value);
        }

        #[test]
        fn never_panics_on_any_text(text in "\\PC{0,40}") {
            let _ = parse_exact(&text);
            let _ = parse_price(&text);
            let _ = parse_integer(&text);
        }

        #[test]
        fn never_panics_on_number_like_text(text in "[-+0-9.eE]{0,40}") {
            if let Ok(value) = parse_price(&text) {
                // Whatever is accepted is within the contract.
                prop_assert!(value > Decimal::ZERO && value <= MAX_PRICE && value.scale() <= 2);
            }
            let _ = parse_integer(&text);
        }
    }
}
