//! Column DEFAULTs both ways: only constants cross, and only where the other side stores the
//! same value from them. A default is read as a `Constant` from the side that has it, then
//! written for the column type of the table created on the other side; what does not translate
//! exactly is a reason (`Err`) that the caller lists as a "not created" note.
//!
//! `CURRENT_TIMESTAMP`, `CURRENT_DATE`, `CURRENT_TIME` and every other expression stay behind:
//! SQLite's give UTC text to the second, Postgres's the transaction's start, to the microsecond,
//! in the column's type, so the same insert stores different values on the two sides.

use super::pg_type::PgType;
use super::Affinity;
use crate::sql_text::sql_literal;

/// A constant default, as the side that has it wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constant {
    /// A number literal as written (`-5`, `19.50`, `1e3`).
    Number(String),
    Text(String),
    Bool(bool),
}

impl Constant {
    /// SQLite's `dflt_value` (the default's text as written); `Ok(None)` for `NULL`.
    pub fn from_sqlite(written: &str) -> Result<Option<Constant>, String> {
        let text = unparenthesized(written);
        if text.eq_ignore_ascii_case("NULL") {
            return Ok(None);
        }
        if text.eq_ignore_ascii_case("TRUE") || text.eq_ignore_ascii_case("FALSE") {
            return Ok(Some(Constant::Bool(text.eq_ignore_ascii_case("TRUE"))));
        }
        if let Some(string) = quoted_string(text) {
            return Ok(Some(Constant::Text(string)));
        }
        if is_decimal_number(text) {
            return Ok(Some(Constant::Number(text.to_string())));
        }
        Err(not_translated(written))
    }

    /// Postgres's `pg_get_expr()` of a column default: `5`, `'-5'::integer`, `'a''b'::text`,
    /// `true`, `NULL::text`; `Ok(None)` for `NULL`.
    pub fn from_postgres(written: &str) -> Result<Option<Constant>, String> {
        let text = unparenthesized(written);
        let value = match text.rsplit_once("::") {
            Some((value, cast)) if !cast.contains('\'') => unparenthesized(value),
            _ => text,
        };
        if value.eq_ignore_ascii_case("NULL") {
            return Ok(None);
        }
        if value == "true" || value == "false" {
            return Ok(Some(Constant::Bool(value == "true")));
        }
        if is_decimal_number(value) {
            return Ok(Some(Constant::Number(value.to_string())));
        }
        match quoted_string(value) {
            // '-5'::integer: Postgres writes negative numbers of a numeric column as strings.
            Some(string) if value != text && is_decimal_number(&string) => {
                let numeric_cast = text.rsplit_once("::").is_some_and(|(_, cast)| {
                    PgType::parse(cast).is_some_and(|t| {
                        matches!(
                            t,
                            PgType::SmallInt
                                | PgType::Integer
                                | PgType::BigInt
                                | PgType::Real
                                | PgType::Double
                                | PgType::Numeric(_)
                        )
                    })
                });
                Ok(Some(if numeric_cast {
                    Constant::Number(string)
                } else {
                    Constant::Text(string)
                }))
            }
            Some(string) => Ok(Some(Constant::Text(string))),
            None => Err(not_translated(written)),
        }
    }

    /// The default clause's expression for a Postgres column of type `ty`.
    pub fn for_postgres(&self, ty: PgType) -> Result<String, String> {
        use PgType::*;
        let literal = match (self, ty) {
            (Constant::Number(n), SmallInt | Integer | BigInt) if is_integer(n) && fits(n, ty) => {
                n.clone()
            }
            (Constant::Text(t), SmallInt | Integer | BigInt) if is_integer(t) && fits(t, ty) => {
                t.clone()
            }
            (Constant::Bool(b), SmallInt | Integer | BigInt) => u8::from(*b).to_string(),
            (Constant::Number(n), Real | Double | Numeric(_)) if fits(n, ty) => n.clone(),
            (Constant::Text(t), Real | Double | Numeric(_))
                if is_decimal_number(t) && fits(t, ty) =>
            {
                t.clone()
            }
            (Constant::Bool(b), Real | Double | Numeric(_)) => u8::from(*b).to_string(),
            (Constant::Bool(b), Boolean) => b.to_string(),
            (Constant::Number(n), Boolean) if n == "0" || n == "1" => (n == "1").to_string(),
            (Constant::Text(t), Text | Varchar(None)) => sql_literal(t),
            (Constant::Text(t), Varchar(Some(n))) if t.chars().count() <= n as usize => {
                sql_literal(t)
            }
            // SQLite keeps an integer written into a TEXT column as its digits.
            (Constant::Number(n), Text | Varchar(None)) if is_integer(n) => sql_literal(n),
            _ => {
                return Err(format!(
                    "DEFAULT {}: not a constant that a {} column stores alike",
                    self.written(),
                    ty.sql()
                ))
            }
        };
        Ok(literal)
    }

    /// The default clause's expression for a SQLite column of `affinity`, from the remote type
    /// `ty` it is imported from (booleans come back as 0 and 1).
    pub fn for_sqlite(&self, ty: Option<PgType>, affinity: Affinity) -> Result<String, String> {
        use PgType::*;
        match (self, ty) {
            (Constant::Bool(b), Some(Boolean)) => Ok(u8::from(*b).to_string()),
            (
                Constant::Number(n),
                Some(SmallInt | Integer | BigInt | Real | Double | Numeric(_)),
            ) if affinity != Affinity::Text && affinity != Affinity::Blob => Ok(n.clone()),
            (Constant::Text(t), Some(Text | Varchar(_))) if affinity == Affinity::Text => {
                Ok(sql_literal(t))
            }
            _ => Err(format!(
                "DEFAULT {}: not a constant that the local column stores alike",
                self.written()
            )),
        }
    }

    fn written(&self) -> String {
        match self {
            Constant::Number(n) => n.clone(),
            Constant::Text(t) => sql_literal(t),
            Constant::Bool(b) => b.to_string().to_ascii_uppercase(),
        }
    }
}

/// Why the default `written` stays behind: it is not a constant both sides read alike.
fn not_translated(written: &str) -> String {
    format!("DEFAULT {written}: only number, string and boolean constants are translated")
}

/// Whether the number `n` is in the range of `ty`, so that Postgres takes it as a default
/// (SQLite would have stored a REAL for an integer beyond int64).
fn fits(n: &str, ty: PgType) -> bool {
    match ty {
        PgType::SmallInt => n.parse::<i16>().is_ok(),
        PgType::Integer => n.parse::<i32>().is_ok(),
        PgType::BigInt => n.parse::<i64>().is_ok(),
        PgType::Real => n.parse::<f32>().is_ok_and(f32::is_finite),
        PgType::Double => n.parse::<f64>().is_ok_and(f64::is_finite),
        _ => true,
    }
}

/// `text` without the parentheses that wrap all of it: `((0))` -> `0`.
fn unparenthesized(text: &str) -> &str {
    let mut text = text.trim();
    while let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        // `(a) + (b)` is not wrapped as a whole.
        let mut depth = 0i32;
        let balanced = inner.chars().all(|c| {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            depth >= 0
        });
        if !balanced {
            break;
        }
        text = inner.trim();
    }
    text
}

/// The string a `'...'` literal (quotes doubled inside) stands for.
fn quoted_string(text: &str) -> Option<String> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    (!inner.replace("''", "").contains('\'')).then(|| inner.replace("''", "'"))
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && !text.starts_with('+')
}

/// A decimal number both sides read alike: sign, digits, a fraction, an exponent; no hex.
fn is_decimal_number(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !(whole.is_empty() && fraction.is_empty())
        && digits(whole)
        && digits(fraction)
        && exponent.is_none_or(|e| {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && digits(e)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(written: &str) -> Result<Option<Constant>, String> {
        Constant::from_sqlite(written)
    }

    #[test]
    fn sqlite_constants_are_read_and_expressions_refused() {
        assert_eq!(sqlite("0"), Ok(Some(Constant::Number("0".into()))));
        assert_eq!(sqlite("(-1.5)"), Ok(Some(Constant::Number("-1.5".into()))));
        assert_eq!(sqlite("'it''s'"), Ok(Some(Constant::Text("it's".into()))));
        assert_eq!(sqlite("TRUE"), Ok(Some(Constant::Bool(true))));
        assert_eq!(sqlite("NULL"), Ok(None));
        for expression in ["CURRENT_TIMESTAMP", "0x10", "(1 + 2)", "datetime('now')"] {
            assert_eq!(
                sqlite(expression),
                Err(format!(
                    "DEFAULT {expression}: only number, string and boolean constants are \
                     translated"
                ))
            );
        }
    }

    #[test]
    fn postgres_constants_are_read_through_their_casts() {
        let pg = Constant::from_postgres;
        assert_eq!(pg("0"), Ok(Some(Constant::Number("0".into()))));
        assert_eq!(pg("'-5'::integer"), Ok(Some(Constant::Number("-5".into()))));
        assert_eq!(pg("'12'::text"), Ok(Some(Constant::Text("12".into()))));
        assert_eq!(
            pg("'a''b'::character varying"),
            Ok(Some(Constant::Text("a'b".into())))
        );
        assert_eq!(pg("false"), Ok(Some(Constant::Bool(false))));
        assert_eq!(pg("NULL::text"), Ok(None));
        assert!(pg("now()").is_err());
        assert!(pg("nextval('t_id_seq'::regclass)").is_err());
    }

    #[test]
    fn defaults_are_written_for_the_postgres_type_or_refused() {
        let number = |n: &str| Constant::Number(n.into());
        assert_eq!(number("-5").for_postgres(PgType::BigInt), Ok("-5".into()));
        assert_eq!(
            number("19.50").for_postgres(PgType::Numeric(Some((10, 2)))),
            Ok("19.50".into())
        );
        assert_eq!(number("1").for_postgres(PgType::Boolean), Ok("true".into()));
        assert_eq!(
            Constant::Text("new".into()).for_postgres(PgType::Text),
            Ok("'new'".into())
        );
        assert_eq!(number("7").for_postgres(PgType::Text), Ok("'7'".into()));
        assert_eq!(
            number("1.5").for_postgres(PgType::BigInt),
            Err("DEFAULT 1.5: not a constant that a bigint column stores alike".into())
        );
        assert!(Constant::Text("x".into())
            .for_postgres(PgType::Timestamp(None))
            .is_err());
        // Beyond int64 SQLite stores a REAL; beyond a double, Postgres refuses the default.
        assert!(number("9223372036854775808")
            .for_postgres(PgType::BigInt)
            .is_err());
        assert!(number("1e400").for_postgres(PgType::Double).is_err());
    }

    #[test]
    fn defaults_are_written_for_the_local_column_or_refused() {
        assert_eq!(
            Constant::Bool(true).for_sqlite(Some(PgType::Boolean), Affinity::Numeric),
            Ok("1".into())
        );
        assert_eq!(
            Constant::Number("0".into()).for_sqlite(Some(PgType::BigInt), Affinity::Integer),
            Ok("0".into())
        );
        assert_eq!(
            Constant::Text("x".into()).for_sqlite(Some(PgType::Text), Affinity::Text),
            Ok("'x'".into())
        );
        assert!(Constant::Text("2024-01-01".into())
            .for_sqlite(Some(PgType::Date), Affinity::Numeric)
            .is_err());
    }
}
