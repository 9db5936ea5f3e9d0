//! What a local column actually holds, where its declared type leaves SQLite's typing open:
//! the facts the choice of a Postgres type for it rests on, read from the table in one query,
//! and whether its numbers fit a declared `DECIMAL(p,s)`.

use super::{encode, PgType};
use crate::error::Result;
use crate::sql_text::quote;
use crate::sqlite::{Db, Value};

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
    /// The profiles of the columns `columns` of the local table `table`, in that order, from
    /// one aggregate query.
    pub fn read_all(db: &Db, table: &str, columns: &[&str]) -> Result<Vec<Profile>> {
        if columns.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM {}",
            columns
                .iter()
                .map(|c| Profile::sql(&quote(c)))
                .collect::<Vec<_>>()
                .join(", "),
            quote(table)
        );
        let row = db.query_row(&sql, &[], |r| {
            // The row holds each column's fields in the order `sql` writes them, which is the
            // order of the fields below: a struct expression evaluates its fields as written.
            let mut at = 0;
            let mut next = || {
                at += 1;
                r.int(at - 1) != 0
            };
            Ok(columns
                .iter()
                .map(|_| Profile {
                    integer: next(),
                    real: next(),
                    text: next(),
                    blob: next(),
                    zero_one: next(),
                    canonical_dates: next(),
                    canonical_datetimes: next(),
                })
                .collect::<Vec<_>>())
        })?;
        Ok(row.unwrap_or_default())
    }

    /// Whether every integer and real in column `column` of `table` fits `ty` exactly (for a
    /// `numeric(p,s)`: within its digits, without rounding). Checked with the encoder the export
    /// itself uses, so the answer cannot differ from what the rows meet. Text and blobs fit no
    /// numeric type; they are the rows' own problems, not a reason to widen the column.
    pub fn numbers_fit(db: &Db, table: &str, column: &str, ty: PgType) -> Result<bool> {
        let c = quote(column);
        let mut stmt = db.prepare(&format!(
            "SELECT {c} FROM {} WHERE typeof({c}) IN ('integer', 'real')",
            quote(table)
        ))?;
        let mut scratch = Vec::new();
        while stmt.step()? {
            scratch.clear();
            let value: Value = stmt.value(0);
            if encode(ty, value, &mut scratch).is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The aggregate expressions that fill a profile for column `quoted` (a quoted identifier),
    /// in field order.
    fn sql(quoted: &str) -> String {
        let c = quoted;
        format!(
            "coalesce(max(typeof({c}) = 'integer'), 0), coalesce(max(typeof({c}) = 'real'), 0), \
             coalesce(max(typeof({c}) = 'text'), 0), coalesce(max(typeof({c}) = 'blob'), 0), \
             coalesce(min(CASE WHEN typeof({c}) = 'integer' THEN {c} IN (0, 1) END), 1), \
             coalesce(min(CASE WHEN typeof({c}) = 'text' THEN coalesce({c} = date({c}), 0) END), 1), \
             coalesce(min(CASE WHEN typeof({c}) = 'text' THEN coalesce({c} = datetime({c}), 0) END), 1)"
        )
    }

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
