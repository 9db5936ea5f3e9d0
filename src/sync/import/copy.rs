//! Reading one table's remote rows, its planned columns in plan order, each field in its
//! binary form: a small table by one query (one round trip: the rows come in the answer), a
//! larger one by binary `COPY (SELECT ...) TO STDOUT` (two round trips, prepare and start, then
//! the fastest stream there is), parsed a row at a time into one reused buffer.

use std::io::{BufReader, Read};

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, ToSql, Type};
use postgres::{Row, RowIter, Transaction};

use super::plan::TablePlan;
use super::sql;
use crate::error::{Error, Result};
use crate::remote::session::remote_error;

/// Tables of at most this many remote rows are read by a query rather than by COPY.
const QUERY_ROWS: u64 = 10_000;

/// The rows of a remote table, one at a time.
pub trait RemoteRows {
    /// Reads the next row; `false` at the end.
    fn next(&mut self) -> Result<bool>;
    /// Field `i` of the current row in its binary form, `None` for NULL.
    fn field(&self, i: usize) -> Option<&[u8]>;
}

/// Starts reading the remote rows of `plan`.
pub fn open<'tx>(tx: &'tx mut Transaction, plan: &TablePlan) -> Result<Box<dyn RemoteRows + 'tx>> {
    let table = plan.name.as_str();
    let failed = |e: &postgres::Error| {
        remote_error(&format!("table {table}: reading the remote rows failed"), e)
    };
    let columns = plan.sql_columns();
    if plan.remote_rows <= QUERY_ROWS {
        let none: [(&(dyn ToSql + Sync), Type); 0] = [];
        let rows = tx
            .query_typed_raw(&sql::select(&plan.remote, &columns), none)
            .map_err(|e| failed(&e))?;
        return Ok(Box::new(QueryRows {
            rows,
            current: None,
            table: table.to_string(),
        }));
    }
    let copy = tx
        .copy_out(&sql::copy_out(&plan.remote, &columns))
        .map_err(|e| failed(&e))?;
    Ok(Box::new(CopyRows::new(copy, plan.columns.len(), table)?))
}

/// The rows of a query's answer.
struct QueryRows<'a> {
    rows: RowIter<'a>,
    current: Option<Row>,
    table: String,
}

/// A field as it came, whatever its type.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl RemoteRows for QueryRows<'_> {
    fn next(&mut self) -> Result<bool> {
        self.current = self.rows.next().map_err(|e| {
            remote_error(
                &format!("table {}: reading the remote rows failed", self.table),
                &e,
            )
        })?;
        Ok(self.current.is_some())
    }

    fn field(&self, i: usize) -> Option<&[u8]> {
        let row = self.current.as_ref()?;
        row.try_get::<_, Option<Raw>>(i).ok().flatten().map(|r| r.0)
    }
}

/// Rows of a binary COPY stream, one at a time, in one reused buffer.
struct CopyRows<R: Read> {
    reader: BufReader<R>,
    fields: usize,
    table: String,
    buffer: Vec<u8>,
    /// Each field's (start, length) in `buffer`; `None` for NULL.
    spans: Vec<Option<(usize, usize)>>,
}

impl<R: Read> CopyRows<R> {
    fn new(reader: R, fields: usize, table: &str) -> Result<Self> {
        let mut rows = CopyRows {
            reader: BufReader::with_capacity(1 << 16, reader),
            fields,
            table: table.to_string(),
            buffer: Vec::new(),
            spans: Vec::with_capacity(fields),
        };
        let mut header = [0u8; 19];
        rows.read(&mut header)?;
        if &header[..11] != b"PGCOPY\n\xff\r\n\0" {
            return Err(rows.broken("no binary COPY header"));
        }
        let extension = u32::from_be_bytes(header[15..19].try_into().expect("4 bytes")) as usize;
        let mut skip = vec![0u8; extension];
        rows.read(&mut skip)?;
        Ok(rows)
    }

    fn broken(&self, what: &str) -> Error {
        Error::remote(format!(
            "table {}: the remote rows could not be read: {what}",
            self.table
        ))
    }

    fn read(&mut self, into: &mut [u8]) -> Result<()> {
        self.reader.read_exact(into).map_err(|e| {
            Error::Interrupted(format!(
                "table {}: reading the remote rows failed: {e}",
                self.table
            ))
        })
    }
}

impl<R: Read> RemoteRows for CopyRows<R> {
    fn next(&mut self) -> Result<bool> {
        let mut count = [0u8; 2];
        self.read(&mut count)?;
        let count = i16::from_be_bytes(count);
        if count == -1 {
            // Drain the end of the COPY so the connection is ready for the next statement.
            let mut rest = Vec::new();
            self.reader.read_to_end(&mut rest).map_err(|e| {
                Error::Interrupted(format!(
                    "table {}: finishing the read failed: {e}",
                    self.table
                ))
            })?;
            return Ok(false);
        }
        if count as usize != self.fields {
            return Err(self.broken("a row with an unexpected number of fields"));
        }
        self.buffer.clear();
        self.spans.clear();
        for _ in 0..self.fields {
            let mut len = [0u8; 4];
            self.read(&mut len)?;
            let len = i32::from_be_bytes(len);
            if len < 0 {
                self.spans.push(None);
                continue;
            }
            let start = self.buffer.len();
            self.buffer.resize(start + len as usize, 0);
            let (reader, buffer) = (&mut self.reader, &mut self.buffer);
            reader.read_exact(&mut buffer[start..]).map_err(|e| {
                Error::Interrupted(format!(
                    "table {}: reading the remote rows failed: {e}",
                    self.table
                ))
            })?;
            self.spans.push(Some((start, len as usize)));
        }
        Ok(true)
    }

    fn field(&self, i: usize) -> Option<&[u8]> {
        self.spans[i].map(|(start, len)| &self.buffer[start..start + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_copy_rows_are_read_field_by_field() {
        let mut stream = b"PGCOPY\n\xff\r\n\0".to_vec();
        stream.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        stream.extend_from_slice(&2i16.to_be_bytes());
        stream.extend_from_slice(&8i32.to_be_bytes());
        stream.extend_from_slice(&7i64.to_be_bytes());
        stream.extend_from_slice(&(-1i32).to_be_bytes());
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        let mut rows = CopyRows::new(&stream[..], 2, "t").unwrap();
        assert!(rows.next().unwrap());
        assert_eq!(rows.field(0), Some(&7i64.to_be_bytes()[..]));
        assert_eq!(rows.field(1), None);
        assert!(!rows.next().unwrap());
        let truncated = &stream[..stream.len() - 5];
        let mut rows = CopyRows::new(truncated, 2, "t").unwrap();
        assert!(rows.next().is_err());
    }
}
