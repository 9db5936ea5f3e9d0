//! SQLite values -> binary COPY fields for a Postgres column type, or the reason a value cannot
//! go there unchanged.

use super::datetime::{self, DateTime};
use super::decimal::Decimal;
use super::PgType;
use crate::sqlite::Value;

/// The binary COPY header and trailer.
pub const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
pub const COPY_TRAILER: &[u8] = &(-1i16).to_be_bytes();

/// Starts a tuple of `fields` fields.
pub fn begin_row(out: &mut Vec<u8>, fields: usize) {
    out.extend_from_slice(&(fields as i16).to_be_bytes());
}

/// Appends one binary COPY field for `value` in a column of type `ty`. `Err` says why the value
/// cannot go there unchanged.
pub fn encode(ty: PgType, value: Value, out: &mut Vec<u8>) -> Result<(), String> {
    match value {
        Value::Null => {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            Ok(())
        }
        Value::Integer(i) => encode_integer(ty, i, out),
        Value::Real(r) => encode_real(ty, r, out),
        Value::Text(t) => encode_text(ty, t, out),
        Value::Blob(b) => match ty {
            PgType::Bytea => {
                field(out, b);
                Ok(())
            }
            PgType::Uuid if b.len() == 16 => {
                field(out, b);
                Ok(())
            }
            _ => Err(format!("a blob cannot become {}", ty.sql())),
        },
    }
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Writes a field whose bytes are produced by `write`, patching its length afterwards.
fn field_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    write(out);
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn encode_integer(ty: PgType, i: i64, out: &mut Vec<u8>) -> Result<(), String> {
    let out_of_range = || format!("integer {i} is out of range for {}", ty.sql());
    match ty {
        PgType::BigInt => field(out, &i.to_be_bytes()),
        PgType::Integer => field(
            out,
            &i32::try_from(i).map_err(|_| out_of_range())?.to_be_bytes(),
        ),
        PgType::SmallInt => field(
            out,
            &i16::try_from(i).map_err(|_| out_of_range())?.to_be_bytes(),
        ),
        PgType::Double if i.unsigned_abs() <= 1 << 53 => field(out, &(i as f64).to_be_bytes()),
        PgType::Real if i.unsigned_abs() <= 1 << 24 => field(out, &(i as f32).to_be_bytes()),
        PgType::Double | PgType::Real => {
            return Err(format!("integer {i} would lose digits in {}", ty.sql()))
        }
        PgType::Boolean if i == 0 || i == 1 => field(out, &[i as u8]),
        PgType::Boolean => return Err(format!("integer {i} is not a boolean (0 or 1)")),
        PgType::Text | PgType::Varchar(_) | PgType::Json | PgType::Jsonb => {
            let text = i.to_string();
            return encode_text(ty, text.as_bytes(), out);
        }
        PgType::Numeric(limits) => {
            let text = i.to_string();
            check_numeric(&text, limits)?;
            field(out, text.as_bytes());
        }
        _ => return Err(format!("an integer cannot become {}", ty.sql())),
    }
    Ok(())
}

fn encode_real(ty: PgType, r: f64, out: &mut Vec<u8>) -> Result<(), String> {
    match ty {
        PgType::Double => field(out, &r.to_be_bytes()),
        PgType::Real if r.is_nan() || (r as f32) as f64 == r => {
            field(out, &(r as f32).to_be_bytes())
        }
        PgType::Real => return Err(format!("real {r} would lose digits in real (float4)")),
        PgType::BigInt | PgType::Integer | PgType::SmallInt => {
            let exact = r.fract() == 0.0
                && !(r == 0.0 && r.is_sign_negative())
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&r);
            if !exact {
                return Err(format!(
                    "real {r} is not a whole number that {} can hold",
                    ty.sql()
                ));
            }
            return encode_integer(ty, r as i64, out);
        }
        PgType::Numeric(limits) => {
            if !r.is_finite() {
                return Err(format!("real {r} cannot become numeric"));
            }
            let text = r.to_string();
            check_numeric(&text, limits)?;
            field(out, text.as_bytes());
        }
        PgType::Text | PgType::Varchar(_) | PgType::Json | PgType::Jsonb if r.is_finite() => {
            let text = r.to_string();
            return encode_text(ty, text.as_bytes(), out);
        }
        _ => return Err(format!("a real cannot become {}", ty.sql())),
    }
    Ok(())
}

fn encode_text(ty: PgType, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    if ty == PgType::Bytea {
        field(out, bytes);
        return Ok(());
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "text is not valid UTF-8, which Postgres text cannot hold".to_string())?;
    if text.contains('\0') {
        return Err("text holds a NUL byte, which Postgres text cannot hold".into());
    }
    match ty {
        PgType::Text | PgType::Json => {}
        PgType::Varchar(Some(limit)) => {
            let chars = text.chars().count();
            if chars > limit as usize {
                return Err(format!(
                    "text of {chars} characters is longer than varchar({limit})"
                ));
            }
        }
        PgType::Varchar(None) => {}
        PgType::Jsonb => {}
        PgType::Boolean => {
            let value = match text.to_ascii_lowercase().as_str() {
                "true" | "t" => 1,
                "false" | "f" => 0,
                _ => return Err("text is not a boolean (true/false/t/f)".into()),
            };
            field(out, &[value]);
            return Ok(());
        }
        PgType::Uuid => {
            let uuid = parse_uuid(text).ok_or("text is not a UUID")?;
            field(out, &uuid);
            return Ok(());
        }
        PgType::Numeric(limits) => check_numeric(text, limits)?,
        PgType::Date => {
            datetime::parse_date(text)?;
        }
        PgType::Timestamp(precision) => check_timestamp(text, precision, false)?,
        PgType::Timestamptz(precision) => check_timestamp(text, precision, true)?,
        _ => return Err(format!("text cannot become {}", ty.sql())),
    }
    if matches!(ty, PgType::Json | PgType::Jsonb) {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|_| format!("text is not valid JSON for {}", ty.sql()))?;
        if ty == PgType::Jsonb && text.contains("\\u0000") {
            return Err("JSON text holds \\u0000, which jsonb cannot hold".into());
        }
    }
    if ty == PgType::Jsonb {
        // jsonb's binary form: a version byte, then the text.
        field_with(out, |out| {
            out.push(1);
            out.extend_from_slice(text.as_bytes());
        });
    } else {
        field(out, text.as_bytes());
    }
    Ok(())
}

pub(super) fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: String = match text.len() {
        36 if [8, 13, 18, 23].iter().all(|&i| text.as_bytes()[i] == b'-') => text.replace('-', ""),
        32 => text.to_string(),
        _ => return None,
    };
    let mut uuid = [0u8; 16];
    for (i, byte) in uuid.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(uuid)
}

/// A decimal literal that `numeric(precision, scale)` keeps exactly (no rounding).
fn check_numeric(text: &str, limits: Option<(u32, u32)>) -> Result<(), String> {
    let decimal = Decimal::parse(text).ok_or("text is not a decimal number")?;
    if let Some((precision, scale)) = limits {
        if decimal.frac_digits() > i64::from(scale) {
            return Err(format!(
                "{text} has more decimal places than numeric({precision},{scale}) keeps"
            ));
        }
        if decimal.int_digits() > i64::from(precision) - i64::from(scale) {
            return Err(format!(
                "{text} is too large for numeric({precision},{scale})"
            ));
        }
    }
    Ok(())
}

/// ISO-8601 date-times that Postgres takes as they are: a zone on a timestamp without time
/// zone would be silently dropped, so it is a problem; fractions beyond the column's precision
/// would be rounded.
fn check_timestamp(text: &str, precision: Option<u32>, with_zone: bool) -> Result<(), String> {
    let parsed = DateTime::parse(text)?;
    if parsed.offset_minutes.is_some() && !with_zone {
        return Err("text carries a time zone, which timestamp without time zone drops".into());
    }
    let kept = precision.unwrap_or(6) as usize;
    if parsed.fraction_digits() > kept {
        return Err(format!(
            "text has more fractional-second digits than the column keeps ({kept})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ty: PgType, v: Value) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        encode(ty, v, &mut out).map(|()| out)
    }

    #[test]
    fn binary_encodings() {
        assert_eq!(
            enc(PgType::BigInt, Value::Integer(i64::MIN)).unwrap()[4..],
            i64::MIN.to_be_bytes()
        );
        assert_eq!(
            enc(PgType::Double, Value::Real(-0.0)).unwrap()[4..],
            (-0.0f64).to_be_bytes()
        );
        assert_eq!(
            enc(PgType::Double, Value::Real(f64::INFINITY)).unwrap()[4..],
            f64::INFINITY.to_be_bytes()
        );
        assert_eq!(
            enc(PgType::Text, Value::Null).unwrap(),
            (-1i32).to_be_bytes()
        );
        assert_eq!(
            enc(PgType::Boolean, Value::Integer(1)).unwrap(),
            [0, 0, 0, 1, 1]
        );
        assert_eq!(
            enc(PgType::Jsonb, Value::Text(b"{}")).unwrap(),
            [0, 0, 0, 3, 1, b'{', b'}']
        );
        let uuid = enc(
            PgType::Uuid,
            Value::Text(b"123E4567-e89b-12d3-a456-426614174000"),
        )
        .unwrap();
        assert_eq!(&uuid[..6], &[0, 0, 0, 16, 0x12, 0x3e]);
        assert_eq!(
            enc(PgType::Numeric(None), Value::Real(0.1)).unwrap()[4..],
            *b"0.1"
        );
        assert_eq!(
            enc(PgType::Text, Value::Text("é😀".as_bytes())).unwrap()[4..],
            *"é😀".as_bytes()
        );
    }

    #[test]
    fn values_that_would_change_are_problems() {
        let cases: Vec<(PgType, Value, &str)> = vec![
            (
                PgType::BigInt,
                Value::Text(b"abc"),
                "text cannot become bigint",
            ),
            (PgType::Text, Value::Text(b"a\0b"), "NUL byte"),
            (PgType::Text, Value::Text(&[0xff, 0xfe]), "not valid UTF-8"),
            (PgType::Text, Value::Blob(b"x"), "a blob cannot become text"),
            (
                PgType::Integer,
                Value::Integer(1 << 40),
                "out of range for integer",
            ),
            (
                PgType::Double,
                Value::Integer(i64::MAX),
                "would lose digits",
            ),
            (PgType::Real, Value::Real(0.1), "would lose digits in real"),
            (PgType::BigInt, Value::Real(1.5), "not a whole number"),
            (PgType::BigInt, Value::Real(-0.0), "not a whole number"),
            (PgType::Boolean, Value::Integer(2), "not a boolean"),
            (
                PgType::Varchar(Some(3)),
                Value::Text(b"abcd"),
                "longer than varchar(3)",
            ),
            (PgType::Jsonb, Value::Text(br#"{"a":"\u0000"}"#), "\\u0000"),
            (PgType::Json, Value::Text(b"{nope"), "not valid JSON"),
            (
                PgType::Numeric(Some((5, 2))),
                Value::Text(b"1.234"),
                "more decimal places",
            ),
            (
                PgType::Numeric(Some((5, 2))),
                Value::Integer(12345),
                "too large",
            ),
            (
                PgType::Numeric(None),
                Value::Real(f64::NAN),
                "cannot become numeric",
            ),
            (PgType::Uuid, Value::Text(b"not-a-uuid"), "not a UUID"),
            (PgType::Date, Value::Text(b"2024/01/02"), "YYYY-MM-DD"),
            (
                PgType::Timestamp(None),
                Value::Text(b"2024-01-02T03:04:05Z"),
                "drops",
            ),
            (
                PgType::Timestamptz(Some(0)),
                Value::Text(b"2024-01-02 03:04:05.5"),
                "fractional-second",
            ),
            (
                PgType::Timestamptz(None),
                Value::Integer(1_700_000_000),
                "cannot become timestamp",
            ),
        ];
        for (ty, value, expected) in cases {
            let message = enc(ty, value).unwrap_err();
            assert!(message.contains(expected), "{ty:?} {value:?}: {message}");
        }
        for ok in [
            "2024-01-02 03:04:05",
            "2024-01-02T03:04:05.123456+02:00",
            "2024-01-02T03:04Z",
        ] {
            assert!(
                enc(PgType::Timestamptz(None), Value::Text(ok.as_bytes())).is_ok(),
                "{ok}"
            );
        }
        assert!(enc(PgType::Numeric(Some((5, 2))), Value::Text(b"123.40")).is_ok());
        assert!(enc(PgType::Numeric(None), Value::Text(b"-1.5e300")).is_ok());
    }
}
