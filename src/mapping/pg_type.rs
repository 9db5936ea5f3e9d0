//! The Postgres column types we map to and from: how Postgres spells them, and how each is
//! staged for binary COPY.

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

#[cfg(test)]
mod tests {
    use super::*;

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
