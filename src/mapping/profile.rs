//! What a local column actually holds, where its declared type leaves SQLite's typing open:
//! the facts the choice of a Postgres type for it rests on.

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

    pub(super) fn classes(&self) -> Vec<&'static str> {
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
