//! Decimal literals as Postgres `numeric` reads and writes them: which literals it takes, how
//! many digits they have on each side of the point, and the text it gives back (no exponent,
//! no leading zeros, no negative zero, as many decimal places as the column's scale or, without
//! one, as the literal wrote). The export checks a value against the first two and compares it
//! with the third, so that `19.5` sent to `numeric(10,2)` is known to come back as `19.50`.

/// The most digits `numeric` keeps before and after the point (Postgres's documented limits).
const MAX_INT_DIGITS: i64 = 131_072;
const MAX_FRAC_DIGITS: i64 = 16_383;

/// A decimal literal: `[+-]digits[.digits][e[+-]digits]`, or NaN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decimal<'a> {
    NaN,
    Number {
        negative: bool,
        int: &'a str,
        frac: &'a str,
        exponent: i32,
    },
}

impl<'a> Decimal<'a> {
    /// The literal `text` is, or `None` when `numeric` would not take it.
    pub fn parse(text: &'a str) -> Option<Decimal<'a>> {
        let negative = text.starts_with('-');
        let body = text.strip_prefix(['+', '-']).unwrap_or(text);
        if body.eq_ignore_ascii_case("nan") {
            return Some(Decimal::NaN);
        }
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
            None => (body, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit());
        let decimal = Decimal::Number {
            negative,
            int,
            frac,
            exponent,
        };
        let in_range =
            decimal.int_digits() <= MAX_INT_DIGITS && decimal.written_scale() <= MAX_FRAC_DIGITS;
        (digits && !(int.is_empty() && frac.is_empty()) && in_range).then_some(decimal)
    }

    /// Significant digits before the point, once the exponent is applied.
    pub fn int_digits(&self) -> i64 {
        match *self {
            Decimal::NaN => 0,
            Decimal::Number { int, exponent, .. } => {
                int.trim_start_matches('0').len() as i64 + i64::from(exponent)
            }
        }
    }

    /// Significant digits after the point (trailing zeros do not count), once the exponent is
    /// applied.
    pub fn frac_digits(&self) -> i64 {
        match *self {
            Decimal::NaN => 0,
            Decimal::Number { frac, exponent, .. } => {
                frac.trim_end_matches('0').len() as i64 - i64::from(exponent)
            }
        }
    }

    /// Decimal places as written (trailing zeros count), which `numeric` without a scale keeps.
    fn written_scale(&self) -> i64 {
        match *self {
            Decimal::NaN => 0,
            Decimal::Number { frac, exponent, .. } => {
                (frac.len() as i64 - i64::from(exponent)).max(0)
            }
        }
    }

    /// The text Postgres gives back for this literal in a `numeric` column of `scale` (`None`:
    /// unconstrained). Only for literals that fit the scale (no rounding happens here).
    pub fn postgres_text(&self, scale: Option<u32>) -> String {
        let Decimal::Number {
            negative,
            int,
            frac,
            exponent,
        } = *self
        else {
            return "NaN".into();
        };
        let scale = scale.map_or(self.written_scale(), i64::from) as usize;
        // All the digits, and where the point falls among them.
        let digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
        let point = int.len() as i64 + i64::from(exponent);
        let digit_at = |i: i64| -> u8 {
            usize::try_from(i)
                .ok()
                .and_then(|i| digits.get(i).copied())
                .unwrap_or(b'0')
        };
        let mut whole: String = (0..point.max(0)).map(|i| digit_at(i) as char).collect();
        let whole_trimmed = whole.trim_start_matches('0');
        whole = if whole_trimmed.is_empty() {
            "0".into()
        } else {
            whole_trimmed.into()
        };
        let fraction: String = (0..scale as i64)
            .map(|i| digit_at(point + i) as char)
            .collect();
        let zero = whole == "0" && fraction.bytes().all(|b| b == b'0');
        let mut text = String::with_capacity(whole.len() + fraction.len() + 2);
        if negative && !zero {
            text.push('-');
        }
        text.push_str(&whole);
        if !fraction.is_empty() {
            text.push('.');
            text.push_str(&fraction);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each literal with the text `SELECT literal::numeric[(p,s)]` gives on PostgreSQL 15.
    #[test]
    fn text_as_postgres_gives_it_back() {
        for (literal, scale, expected) in [
            ("1e3", None, "1000"),
            ("-0.00", None, "0.00"),
            (".5", None, "0.5"),
            ("5.", None, "5"),
            ("19.5", Some(2), "19.50"),
            ("1.50e1", None, "15.0"),
            ("1.50e1", Some(2), "15.00"),
            ("nan", None, "NaN"),
            ("007", None, "7"),
            ("+12.30", None, "12.30"),
            ("1e-2", None, "0.01"),
            ("-1.5e-3", Some(5), "-0.00150"),
            ("123.40", Some(2), "123.40"),
            ("-0", Some(2), "0.00"),
        ] {
            let decimal = Decimal::parse(literal).unwrap();
            assert_eq!(
                decimal.postgres_text(scale),
                expected,
                "{literal} {scale:?}"
            );
        }
    }

    #[test]
    fn literals_numeric_refuses() {
        for literal in [
            "", ".", "1.2.3", "1e", "e5", "12a", " 1", "1e999999", "1e-99999",
        ] {
            assert_eq!(Decimal::parse(literal), None, "{literal}");
        }
    }

    #[test]
    fn digits_on_each_side() {
        let d = Decimal::parse("0012.3400e1").unwrap();
        assert_eq!((d.int_digits(), d.frac_digits()), (3, 1));
    }
}
