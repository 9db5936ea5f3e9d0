//! The rows of small tables, sent together. A binary COPY costs three round trips (prepare,
//! start, finish) whatever it holds, so a table of a few rows would cost more in waiting than
//! in sending. Their rows are kept here instead (the same binary encoding the COPY sends) and
//! go to their staging tables in one statement: `WITH ... AS (INSERT INTO <table> VALUES ($1,
//! ...), ...), ... SELECT`, every value a binary parameter of its column's type, so values
//! land exactly as the COPY lands them. A statement holds at most `MAX_PARAMS` values and
//! `MAX_BYTES` of data. Only small tables are packed (`TABLE_PARAMS`, `TABLE_BYTES`): the server
//! parses a VALUES list more slowly than it reads COPY, which on a fast link costs more than
//! the two round trips saved; a larger table is copied.

use postgres::types::private::BytesMut;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::Transaction;

use super::transaction::failed;
use crate::error::{Error, Result};

/// The values of one statement (the protocol allows 65,535).
const MAX_PARAMS: usize = 32_768;
/// The data of one statement.
const MAX_BYTES: usize = 1 << 20;
/// The values of a table that is packed.
const TABLE_PARAMS: usize = 8_192;
/// The data of a table that is packed.
const TABLE_BYTES: usize = 256 << 10;

/// Rows waiting to be sent: per target table, binary COPY rows without header or trailer.
#[derive(Default)]
pub struct Pack {
    targets: Vec<Target>,
    params: usize,
    bytes: usize,
}

struct Target {
    /// The local table the rows are from, for errors.
    table: String,
    /// The staging (or new remote) table they go to.
    into: String,
    rows: Vec<u8>,
    values: usize,
}

impl Pack {
    /// Whether a table of `values` values in `bytes` bytes is packed.
    pub fn takes(values: usize, bytes: usize) -> bool {
        values <= TABLE_PARAMS && bytes <= TABLE_BYTES
    }

    /// Whether `values` values in `bytes` bytes fit one statement.
    fn fits(values: usize, bytes: usize) -> bool {
        values <= MAX_PARAMS && bytes <= MAX_BYTES
    }

    /// Adds the encoded `rows` of `table` bound for `into`, sending what is waiting whenever
    /// the next row would not fit in the same statement.
    pub fn add(
        &mut self,
        tx: &mut Transaction,
        table: &str,
        into: &str,
        rows: &[u8],
    ) -> Result<()> {
        let mut rest = rows;
        while !rest.is_empty() {
            let (width, len) = row_size(rest)
                .ok_or_else(|| Error::local(format!("table {table}: rows badly encoded")))?;
            if !Pack::fits(self.params + width, self.bytes + len) {
                self.send(tx)?;
            }
            let fresh = !self
                .targets
                .last()
                .is_some_and(|t| t.table == table && t.into == into);
            if fresh {
                self.targets.push(Target {
                    table: table.to_string(),
                    into: into.to_string(),
                    rows: Vec::new(),
                    values: 0,
                });
            }
            let target = self.targets.last_mut().expect("pushed");
            target.rows.extend_from_slice(&rest[..len]);
            target.values += width;
            self.params += width;
            self.bytes += len;
            rest = &rest[len..];
        }
        Ok(())
    }

    /// Sends every row waiting, in one statement.
    pub fn send(&mut self, tx: &mut Transaction) -> Result<()> {
        if self.targets.is_empty() {
            return Ok(());
        }
        let targets = std::mem::take(&mut self.targets);
        self.params = 0;
        self.bytes = 0;
        let mut values: Vec<Raw> = Vec::with_capacity(targets.iter().map(|t| t.values).sum());
        let mut inserts = Vec::new();
        for target in &targets {
            let first = values.len();
            let widths = split_rows(&target.rows, &mut values).ok_or_else(|| {
                Error::local(format!("table {}: rows badly encoded", target.table))
            })?;
            inserts.push(insert(&target.into, first, &widths));
        }
        let statement = statement(&inserts);
        let params: Vec<(&(dyn ToSql + Sync), Type)> =
            values.iter().map(|v| (v as _, Type::UNKNOWN)).collect();
        let table = targets.iter().map(|t| t.table.as_str()).collect::<Vec<_>>();
        tx.execute_typed(&statement, &params)
            .map_err(|e| failed(&table.join(", "), "sending the rows to staging failed", &e))?;
        Ok(())
    }
}

/// One value as the COPY encoded it: sent as is, in binary, whatever its type.
#[derive(Debug)]
struct Raw<'a>(Option<&'a [u8]>);

impl ToSql for Raw<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Some(value) => {
                out.extend_from_slice(value);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// The values and bytes of the first binary COPY row of `rows`.
fn row_size(rows: &[u8]) -> Option<(usize, usize)> {
    let (count, mut rest) = rows.split_first_chunk::<2>()?;
    let width = u16::from_be_bytes(*count) as usize;
    for _ in 0..width {
        let (len, after) = rest.split_first_chunk::<4>()?;
        let len = i32::from_be_bytes(*len).max(0) as usize;
        rest = after.get(len..)?;
    }
    Some((width, rows.len() - rest.len()))
}

/// Splits binary COPY rows into their values (appended to `values`); returns each row's
/// width, `None` when the bytes are not whole rows.
fn split_rows<'a>(mut rows: &'a [u8], values: &mut Vec<Raw<'a>>) -> Option<Vec<usize>> {
    let mut widths = Vec::new();
    while !rows.is_empty() {
        let (count, rest) = rows.split_first_chunk::<2>()?;
        rows = rest;
        let width = u16::from_be_bytes(*count) as usize;
        for _ in 0..width {
            let (len, rest) = rows.split_first_chunk::<4>()?;
            rows = rest;
            let len = i32::from_be_bytes(*len);
            if len < 0 {
                values.push(Raw(None));
            } else {
                let (value, rest) = rows.split_at_checked(len as usize)?;
                rows = rest;
                values.push(Raw(Some(value)));
            }
        }
        widths.push(width);
    }
    Some(widths)
}

/// `INSERT INTO into VALUES (...), ...` of rows of `widths` values, numbered from `first`.
fn insert(into: &str, first: usize, widths: &[usize]) -> String {
    let mut next = first;
    let rows: Vec<String> = widths
        .iter()
        .map(|&width| {
            let row: Vec<String> = (0..width)
                .map(|_| {
                    next += 1;
                    format!("${next}")
                })
                .collect();
            format!("({})", row.join(", "))
        })
        .collect();
    format!("INSERT INTO {into} VALUES {}", rows.join(", "))
}

/// One statement of every insert: data-modifying CTEs all run, whether read or not.
fn statement(inserts: &[String]) -> String {
    match inserts {
        [one] => one.clone(),
        _ => format!(
            "WITH {} SELECT",
            inserts
                .iter()
                .enumerate()
                .map(|(i, insert)| format!("cloud_sync_pack_{i} AS ({insert})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_numbered_parameters_in_one_statement() {
        // Two rows of (8-byte value, NULL), then one row of one 1-byte value.
        let mut rows = Vec::new();
        for v in [7u64, 8] {
            rows.extend_from_slice(&2u16.to_be_bytes());
            rows.extend_from_slice(&8i32.to_be_bytes());
            rows.extend_from_slice(&v.to_be_bytes());
            rows.extend_from_slice(&(-1i32).to_be_bytes());
        }
        let mut values = Vec::new();
        let widths = split_rows(&rows, &mut values).unwrap();
        assert_eq!(widths, [2, 2]);
        assert_eq!(values.len(), 4);
        assert_eq!(values[2].0, Some(&8u64.to_be_bytes()[..]));
        assert!(values[3].0.is_none());
        assert!(split_rows(&rows[..rows.len() - 1], &mut Vec::new()).is_none());
        assert_eq!(row_size(&rows), Some((2, 18)));
        assert_eq!(row_size(&rows[..17]), None);
        let a = insert("cloud_sync_stage_0", 0, &widths);
        assert_eq!(
            a,
            "INSERT INTO cloud_sync_stage_0 VALUES ($1, $2), ($3, $4)"
        );
        let b = insert(r#""s"."t""#, 4, &[1]);
        assert_eq!(b, r#"INSERT INTO "s"."t" VALUES ($5)"#);
        assert_eq!(statement(std::slice::from_ref(&a)), a);
        assert_eq!(
            statement(&[a, b]),
            "WITH cloud_sync_pack_0 AS (INSERT INTO cloud_sync_stage_0 VALUES ($1, $2), ($3, \
             $4)), cloud_sync_pack_1 AS (INSERT INTO \"s\".\"t\" VALUES ($5)) SELECT"
        );
    }
}
