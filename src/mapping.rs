//! SQLite values to Postgres columns: losslessly, or not at all.
//!
//! Each column has a Postgres type: chosen by us when we create the remote table (from the
//! declared type and, where SQLite's typing leaves it open, from the values the column holds),
//! or the type of the existing remote column. Every value is encoded for binary COPY into a
//! staging column, either as that type itself or as text that Postgres casts, after we checked
//! that the cast keeps the value. A value that would change is a problem, never a silent edit.

use std::io::Write;

use crate::sqlite::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    SmallInt,
    Integer,
    BigInt,
    Real,
    Double,
    Boolean,
    Text,
    /// `character varying(n)`; `None` for no limit.
    Varchar(Option<u32>),
    Bytea,
    Uuid,
    Json,
    Jsonb,
    /// `numeric(precision, scale)`; `None` for unconstrained.
    Numeric(Option<(u32, u32)>),
    Date,
    /// Fractional-second digits kept (default 6).
    Timestamp(Option<u32>),
    Timestamptz(Option<u32>),
}

pub const SUPPORTED_TYPES: &str = "smallint, integer, bigint, real, double precision, boolean, \
    text, varchar(n), bytea, uuid, json, jsonb, numeric(p,s), date, timestamp, timestamptz";

impl PgType {
    /// Parses Postgres's `format_type()` spelling (also accepts the common short names).
    pub fn parse(spelling: &str) -> Option<PgType> {
        let s = spelling.trim().to_ascii_lowercase();
        let (base, modifier) = match (s.find('('), s.find(')')) {
            (Some(open), Some(close)) if close > open => {
                let rest = format!("{}{}", &s[..open], &s[close + 1..]);
                (
                    rest.trim().to_string(),
                    Some(s[open + 1..close].to_string()),
                )
            }
            _ => (s.clone(), None),
        };
        let number = |m: &Option<String>| -> Option<Option<u32>> {
            match m {
                None => Some(None),
                Some(text) => text.trim().parse().ok().map(Some),
            }
        };
        Some(match base.as_str() {
            "smallint" | "int2" => PgType::SmallInt,
            "integer" | "int" | "int4" => PgType::Integer,
            "bigint" | "int8" => PgType::BigInt,
            "real" | "float4" => PgType::Real,
            "double precision" | "float8" => PgType::Double,
            "boolean" | "bool" => PgType::Boolean,
            "text" => PgType::Text,
            "character varying" | "varchar" => PgType::Varchar(number(&modifier)?),
            "bytea" => PgType::Bytea,
            "uuid" => PgType::Uuid,
            "json" => PgType::Json,
            "jsonb" => PgType::Jsonb,
            "numeric" | "decimal" => PgType::Numeric(match &modifier {
                None => None,
                Some(m) => {
                    let mut parts = m.split(',').map(|p| p.trim().parse::<u32>());
                    match (parts.next(), parts.next()) {
                        (Some(Ok(p)), None) => Some((p, 0)),
                        (Some(Ok(p)), Some(Ok(s))) => Some((p, s)),
                        _ => return None,
                    }
                }
            }),
            "date" => PgType::Date,
            "timestamp without time zone" | "timestamp" => PgType::Timestamp(number(&modifier)?),
            "timestamp with time zone" | "timestamptz" => PgType::Timestamptz(number(&modifier)?),
            _ => return None,
        })
    }

    /// The type as SQL, for CREATE TABLE and casts.
    pub fn sql(self) -> String {
        match self {
            PgType::SmallInt => "smallint".into(),
            PgType::Integer => "integer".into(),
            PgType::BigInt => "bigint".into(),
            PgType::Real => "real".into(),
            PgType::Double => "double precision".into(),
            PgType::Boolean => "boolean".into(),
            PgType::Text => "text".into(),
            PgType::Varchar(None) => "character varying".into(),
            PgType::Varchar(Some(n)) => format!("character varying({n})"),
            PgType::Bytea => "bytea".into(),
            PgType::Uuid => "uuid".into(),
            PgType::Json => "json".into(),
            PgType::Jsonb => "jsonb".into(),
            PgType::Numeric(None) => "numeric".into(),
            PgType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
            PgType::Date => "date".into(),
            PgType::Timestamp(None) => "timestamp without time zone".into(),
            PgType::Timestamp(Some(p)) => format!("timestamp({p}) without time zone"),
            PgType::Timestamptz(None) => "timestamp with time zone".into(),
            PgType::Timestamptz(Some(p)) => format!("timestamp({p}) with time zone"),
        }
    }

    /// Types we encode as text and let Postgres cast (their binary forms are intricate).
    pub fn staged_as_text(self) -> bool {
        matches!(
            self,
            PgType::Numeric(_) | PgType::Date | PgType::Timestamp(_) | PgType::Timestamptz(_)
        )
    }

    /// The staging column's type.
    pub fn stage_sql(self) -> String {
        if self.staged_as_text() {
            "text".into()
        } else {
            self.sql()
        }
    }
}

/// SQLite's type affinity of a declared type (https://sqlite.org/datatype3.html, 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    Integer,
    Text,
    Blob,
    Real,
    Numeric,
}

pub fn affinity(decl_type: &str) -> Affinity {
    let t = decl_type.to_ascii_uppercase();
    if t.contains("INT") {
        Affinity::Integer
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        Affinity::Text
    } else if t.contains("BLOB") || t.is_empty() {
        Affinity::Blob
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        Affinity::Real
    } else {
        Affinity::Numeric
    }
}

/// Which storage classes a column holds, and whether its values fit the native types its
/// declared type suggests. Gathered by one aggregate query per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Profile {
    pub integer: bool,
    pub real: bool,
    pub text: bool,
    pub blob: bool,
    /// Every integer is 0 or 1.
    pub zero_one: bool,
    /// Every text is a date in SQLite's canonical `YYYY-MM-DD`.
    pub canonical_dates: bool,
    /// Every text is a date-time in SQLite's canonical `YYYY-MM-DD HH:MM:SS`.
    pub canonical_datetimes: bool,
}

impl Profile {
    /// The aggregate expressions that fill a profile for column `quoted` (a quoted identifier),
    /// in field order.
    pub fn sql(quoted: &str) -> String {
        let c = quoted;
        format!(
            "coalesce(max(typeof({c}) = 'integer'), 0), coalesce(max(typeof({c}) = 'real'), 0), \
             coalesce(max(typeof({c}) = 'text'), 0), coalesce(max(typeof({c}) = 'blob'), 0), \
             coalesce(min(CASE WHEN typeof({c}) = 'integer' THEN {c} IN (0, 1) END), 1), \
             coalesce(min(CASE WHEN typeof({c}) = 'text' THEN coalesce({c} = date({c}), 0) END), 1), \
             coalesce(min(CASE WHEN typeof({c}) = 'text' THEN coalesce({c} = datetime({c}), 0) END), 1)"
        )
    }

    pub const COLUMNS: usize = 7;

    fn classes(&self) -> Vec<&'static str> {
        [
            (self.integer, "integer"),
            (self.real, "real"),
            (self.text, "text"),
            (self.blob, "blob"),
        ]
        .iter()
        .filter(|(present, _)| *present)
        .map(|(_, name)| *name)
        .collect()
    }
}

/// Whether choosing a type for `decl_type` needs to look at the values.
pub fn needs_profile(decl_type: &str) -> bool {
    matches!(affinity(decl_type), Affinity::Blob | Affinity::Numeric) && !is_blob_decl(decl_type)
}

fn is_blob_decl(decl_type: &str) -> bool {
    decl_type.to_ascii_uppercase().contains("BLOB")
}

/// The Postgres type for a column of a table we create, so that every value comes back with
/// its value and storage class. `Err` explains why no type is lossless for this column.
pub fn type_for_new_column(decl_type: &str, profile: Option<&Profile>) -> Result<PgType, String> {
    match affinity(decl_type) {
        Affinity::Integer => return Ok(PgType::BigInt),
        Affinity::Text => return Ok(PgType::Text),
        Affinity::Real => return Ok(PgType::Double),
        _ if is_blob_decl(decl_type) => return Ok(PgType::Bytea),
        _ => {}
    }
    let p = profile.copied().unwrap_or_default();
    let decl = decl_type.trim().to_ascii_uppercase();
    let only = |integer, real, text, blob| {
        (p.integer, p.real, p.text, p.blob) == (integer, real, text, blob)
    };
    if decl.starts_with("BOOL") && only(true, false, false, false) && p.zero_one {
        return Ok(PgType::Boolean);
    }
    if decl == "DATE" && only(false, false, true, false) && p.canonical_dates {
        return Ok(PgType::Date);
    }
    if (decl.starts_with("DATETIME") || decl.starts_with("TIMESTAMP"))
        && only(false, false, true, false)
        && p.canonical_datetimes
    {
        return Ok(PgType::Timestamp(Some(0)));
    }
    match p.classes().as_slice() {
        [] | ["text"] => Ok(PgType::Text),
        ["integer"] => Ok(PgType::BigInt),
        ["real"] => Ok(PgType::Double),
        ["blob"] => Ok(PgType::Bytea),
        several => Err(format!(
            "holds {} values, and no one Postgres type keeps them all as they are: declare the \
             column's type in SQLite, or name one in the column_types option",
            several.join(" and ")
        )),
    }
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
            if !is_iso_date(text) {
                return Err("text is not a date in the form YYYY-MM-DD".into());
            }
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

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
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
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    if body.eq_ignore_ascii_case("nan") {
        return Ok(());
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()),
        None => (body, Some(0)),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = !(int_part.is_empty() && frac_part.is_empty())
        && int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit());
    let Some(exponent) = exponent.filter(|_| digits_ok) else {
        return Err("text is not a decimal number".into());
    };
    if let Some((precision, scale)) = limits {
        // Digits after the point and before it, once the exponent is applied.
        let frac_digits = frac_part.trim_end_matches('0').len() as i64 - i64::from(exponent);
        let int_digits = int_part.trim_start_matches('0').len() as i64 + i64::from(exponent);
        if frac_digits > i64::from(scale) {
            return Err(format!(
                "{text} has more decimal places than numeric({precision},{scale}) keeps"
            ));
        }
        if int_digits > i64::from(precision) - i64::from(scale) {
            return Err(format!(
                "{text} is too large for numeric({precision},{scale})"
            ));
        }
    }
    Ok(())
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_iso_date(s: &str) -> bool {
    s.len() == 10
        && s.as_bytes()[4] == b'-'
        && s.as_bytes()[7] == b'-'
        && digits(&s[..4])
        && digits(&s[5..7])
        && digits(&s[8..])
}

/// ISO-8601 date-times: `YYYY-MM-DD[T ]HH:MM[:SS[.fraction]]`, and for timestamptz an optional
/// `Z` or `±HH[:MM]`. A zone on a timestamp without time zone would be silently dropped by
/// Postgres, so it is a problem; fractions beyond the column's precision would be rounded.
fn check_timestamp(text: &str, precision: Option<u32>, with_zone: bool) -> Result<(), String> {
    let bad = || "text is not an ISO-8601 date-time (YYYY-MM-DD HH:MM:SS)".to_string();
    if text.len() < 16 || !is_iso_date(&text[..10]) || !matches!(text.as_bytes()[10], b'T' | b' ') {
        return Err(bad());
    }
    let rest = &text[11..];
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    if !zone.is_empty() {
        if !with_zone {
            return Err("text carries a time zone, which timestamp without time zone drops".into());
        }
        let offset = zone
            .trim_start_matches(['Z', 'z', '+', '-'])
            .replace(':', "");
        if !(zone.len() == 1 && zone.eq_ignore_ascii_case("z")
            || digits(&offset) && matches!(offset.len(), 2 | 4))
        {
            return Err(bad());
        }
    }
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let parts: Vec<&str> = clock.split(':').collect();
    if !matches!(parts.len(), 2 | 3) || parts.iter().any(|p| p.len() != 2 || !digits(p)) {
        return Err(bad());
    }
    if !fraction.is_empty() && !digits(fraction) {
        return Err(bad());
    }
    let kept = precision.unwrap_or(6) as usize;
    if fraction.trim_end_matches('0').len() > kept {
        return Err(format!(
            "text has more fractional-second digits than the column keeps ({kept})"
        ));
    }
    Ok(())
}

/// How a remote column is read back into SQLite. Types with a lossless SQLite form are read in
/// binary; every other type is read as Postgres's canonical text (`::text`, with the session's
/// TimeZone UTC, DateStyle ISO and IntervalStyle iso_8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    Bytea,
    /// Text, or any other type cast to text.
    Text,
    /// `numeric`, as text: exact, and checked when it goes into a REAL column.
    Numeric,
}

impl Incoming {
    /// The reading for a remote column of type `spelling` (`format_type()`), and whether the
    /// column is selected as `::text`.
    pub fn of(spelling: &str) -> (Incoming, bool) {
        match PgType::parse(spelling) {
            Some(PgType::SmallInt) => (Incoming::Int2, false),
            Some(PgType::Integer) => (Incoming::Int4, false),
            Some(PgType::BigInt) => (Incoming::Int8, false),
            Some(PgType::Real) => (Incoming::Float4, false),
            Some(PgType::Double) => (Incoming::Float8, false),
            Some(PgType::Boolean) => (Incoming::Bool, false),
            Some(PgType::Bytea) => (Incoming::Bytea, false),
            Some(PgType::Text | PgType::Varchar(_)) => (Incoming::Text, false),
            Some(PgType::Numeric(_)) => (Incoming::Numeric, true),
            _ => (Incoming::Text, true),
        }
    }

    /// Decodes one binary COPY field into the value SQLite will store; `Err` says why the value
    /// cannot go into a column of `affinity` unchanged.
    pub fn decode(self, bytes: &[u8], affinity: Affinity) -> Result<Value<'_>, String> {
        let wrong = || "the server sent a field of an unexpected size".to_string();
        let value = match self {
            Incoming::Int2 => {
                Value::Integer(i16::from_be_bytes(bytes.try_into().map_err(|_| wrong())?).into())
            }
            Incoming::Int4 => {
                Value::Integer(i32::from_be_bytes(bytes.try_into().map_err(|_| wrong())?).into())
            }
            Incoming::Int8 => {
                Value::Integer(i64::from_be_bytes(bytes.try_into().map_err(|_| wrong())?))
            }
            Incoming::Float4 => {
                Value::Real(f32::from_be_bytes(bytes.try_into().map_err(|_| wrong())?).into())
            }
            Incoming::Float8 => {
                Value::Real(f64::from_be_bytes(bytes.try_into().map_err(|_| wrong())?))
            }
            Incoming::Bool => {
                Value::Integer(i64::from(bytes.first().copied().ok_or_else(wrong)? != 0))
            }
            Incoming::Bytea => Value::Blob(bytes),
            Incoming::Text | Incoming::Numeric => Value::Text(bytes),
        };
        if affinity == Affinity::Real {
            match value {
                Value::Integer(i) if i.unsigned_abs() > 1 << 53 => {
                    return Err(format!("integer {i} would lose digits in a REAL column"))
                }
                Value::Text(t) if self == Incoming::Numeric => {
                    let text = std::str::from_utf8(t).map_err(|_| wrong())?;
                    if !decimal_is_exact_double(text) {
                        return Err(format!(
                            "numeric {text} has more digits than a REAL column keeps: use a TEXT column"
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(value)
    }
}

/// Whether SQLite's REAL affinity keeps the decimal `text` exactly (it converts it to the nearest
/// double): true when the double's shortest rendering is the same number.
fn decimal_is_exact_double(text: &str) -> bool {
    fn normal(s: &str) -> String {
        let s = s.trim_start_matches('+');
        let (sign, digits) = s.strip_prefix('-').map_or(("", s), |d| ("-", d));
        let digits = if digits.contains('.') {
            digits.trim_end_matches('0').trim_end_matches('.')
        } else {
            digits
        };
        let digits = digits.trim_start_matches('0');
        let digits = if digits.is_empty() || digits.starts_with('.') {
            format!("0{digits}")
        } else {
            digits.to_string()
        };
        if digits == "0" {
            digits
        } else {
            format!("{sign}{digits}")
        }
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => normal(text) == normal(&value.to_string()),
        _ => false,
    }
}

/// The declared type of a local column that import creates for a remote one, chosen so that
/// exporting it again gives back the same remote type.
pub fn sqlite_type_for(spelling: &str) -> &'static str {
    match PgType::parse(spelling) {
        Some(PgType::SmallInt | PgType::Integer | PgType::BigInt) => "INTEGER",
        Some(PgType::Real | PgType::Double) => "REAL",
        Some(PgType::Boolean) => "BOOLEAN",
        Some(PgType::Bytea) => "BLOB",
        Some(PgType::Date) => "DATE",
        Some(PgType::Timestamp(Some(0))) => "DATETIME",
        _ => "TEXT",
    }
}

/// The binary COPY header and trailer.
pub const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
pub const COPY_TRAILER: &[u8] = &(-1i16).to_be_bytes();

/// Starts a tuple of `fields` fields.
pub fn begin_row(out: &mut Vec<u8>, fields: usize) {
    out.extend_from_slice(&(fields as i16).to_be_bytes());
}

/// Appends a plain text rendering of a value, for problem keys and logs.
pub fn describe_key_value(value: Value, out: &mut Vec<u8>) {
    let _ = match value {
        Value::Null => write!(out, "null"),
        Value::Integer(i) => write!(out, "{i}"),
        Value::Real(r) => write!(out, "{r}"),
        Value::Text(t) => write!(
            out,
            "{}",
            serde_json::Value::from(String::from_utf8_lossy(t))
        ),
        Value::Blob(b) => write!(
            out,
            "\"x'{}'\"",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ty: PgType, v: Value) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        encode(ty, v, &mut out).map(|()| out)
    }

    #[test]
    fn affinity_follows_sqlite() {
        assert_eq!(affinity("INTEGER"), Affinity::Integer);
        assert_eq!(affinity("BIGINT UNSIGNED"), Affinity::Integer);
        assert_eq!(affinity("VARCHAR(100)"), Affinity::Text);
        assert_eq!(affinity(""), Affinity::Blob);
        assert_eq!(affinity("DOUBLE PRECISION"), Affinity::Real);
        assert_eq!(affinity("DECIMAL(10,2)"), Affinity::Numeric);
        assert_eq!(affinity("BOOLEAN"), Affinity::Numeric);
        // "POINT" contains "INT": SQLite's rule, not ours.
        assert_eq!(affinity("POINT"), Affinity::Integer);
    }

    #[test]
    fn new_column_types_keep_values_and_storage_classes() {
        let p = |integer, real, text, blob| Profile {
            integer,
            real,
            text,
            blob,
            zero_one: true,
            canonical_dates: true,
            canonical_datetimes: true,
        };
        assert_eq!(type_for_new_column("INTEGER", None), Ok(PgType::BigInt));
        assert_eq!(type_for_new_column("VARCHAR(100)", None), Ok(PgType::Text));
        assert_eq!(type_for_new_column("REAL", None), Ok(PgType::Double));
        assert_eq!(type_for_new_column("BLOB", None), Ok(PgType::Bytea));
        let bools = p(true, false, false, false);
        assert_eq!(
            type_for_new_column("BOOLEAN", Some(&bools)),
            Ok(PgType::Boolean)
        );
        let not_bool = Profile {
            zero_one: false,
            ..bools
        };
        assert_eq!(
            type_for_new_column("BOOLEAN", Some(&not_bool)),
            Ok(PgType::BigInt)
        );
        let texts = p(false, false, true, false);
        assert_eq!(type_for_new_column("DATE", Some(&texts)), Ok(PgType::Date));
        assert_eq!(
            type_for_new_column("DATETIME", Some(&texts)),
            Ok(PgType::Timestamp(Some(0)))
        );
        let loose = Profile {
            canonical_datetimes: false,
            ..texts
        };
        assert_eq!(
            type_for_new_column("DATETIME", Some(&loose)),
            Ok(PgType::Text)
        );
        assert_eq!(
            type_for_new_column("", Some(&p(false, true, false, false))),
            Ok(PgType::Double)
        );
        assert_eq!(
            type_for_new_column("", Some(&Profile::default())),
            Ok(PgType::Text)
        );
        let mixed = type_for_new_column("", Some(&p(true, false, true, false))).unwrap_err();
        assert!(mixed.contains("integer and text"), "{mixed}");
        assert!(type_for_new_column("NUMERIC", Some(&p(true, true, false, false))).is_err());
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

    #[test]
    fn remote_values_come_back_with_their_storage_class() {
        let (int8, cast) = Incoming::of("bigint");
        assert!(!cast);
        assert_eq!(
            int8.decode(&i64::MIN.to_be_bytes(), Affinity::Integer),
            Ok(Value::Integer(i64::MIN))
        );
        let bits = (-0.0f64).to_be_bytes();
        assert_eq!(
            Incoming::Float8
                .decode(&bits, Affinity::Blob)
                .map(|v| match v {
                    Value::Real(r) => r.to_bits(),
                    _ => 0,
                }),
            Ok((-0.0f64).to_bits())
        );
        assert_eq!(
            Incoming::Bool.decode(&[1], Affinity::Numeric),
            Ok(Value::Integer(1))
        );
        assert_eq!(
            Incoming::of("timestamp with time zone"),
            (Incoming::Text, true)
        );
        assert_eq!(Incoming::of("numeric(10,2)"), (Incoming::Numeric, true));
        assert_eq!(Incoming::of("uuid"), (Incoming::Text, true));
        assert!(Incoming::Numeric.decode(b"12.50", Affinity::Real).is_ok());
        assert!(Incoming::Numeric.decode(b"0.1", Affinity::Real).is_ok());
        let long = Incoming::Numeric
            .decode(b"1234567890.123456789", Affinity::Real)
            .unwrap_err();
        assert!(
            long.contains("more digits than a REAL column keeps"),
            "{long}"
        );
        assert!(Incoming::Numeric
            .decode(b"1234567890.123456789", Affinity::Text)
            .is_ok());
        assert!(Incoming::Int8
            .decode(&i64::MAX.to_be_bytes(), Affinity::Real)
            .is_err());
        assert!(Incoming::Int4.decode(&[0, 1], Affinity::Integer).is_err());
        assert_eq!(
            sqlite_type_for("timestamp(0) without time zone"),
            "DATETIME"
        );
        assert_eq!(sqlite_type_for("jsonb"), "TEXT");
    }

    #[test]
    fn format_type_spellings() {
        for (spelling, ty) in [
            ("bigint", PgType::BigInt),
            ("character varying(20)", PgType::Varchar(Some(20))),
            ("numeric(10,2)", PgType::Numeric(Some((10, 2)))),
            ("timestamp(3) with time zone", PgType::Timestamptz(Some(3))),
            ("timestamp without time zone", PgType::Timestamp(None)),
            ("jsonb", PgType::Jsonb),
        ] {
            assert_eq!(PgType::parse(spelling), Some(ty), "{spelling}");
            assert_eq!(PgType::parse(&ty.sql()), Some(ty));
        }
        assert_eq!(PgType::parse("tsvector"), None);
        assert_eq!(PgType::parse("integer[]"), None);
    }
}
