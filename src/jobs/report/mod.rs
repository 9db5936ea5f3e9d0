//! The audit report of one job: JSON, CSV or Markdown.
//!
//! Everything comes from cloud_sync's own tables, read in one snapshot (`load`): the job, the
//! redacted display form of its saved connection, its attempts, the per-table counts and the
//! problems of its summary, and its log. Nothing reaches the network and nothing is decrypted:
//! only stored fields are used, and none of them ever holds a secret (a connection string is
//! stored only encrypted; `display`, errors and logs hold its redacted form).
//!
//! - JSON (`json`): one object `{"job", "attempts", "tables", "problems", "problems_total",
//!   "log"}`, pretty-printed, keys in that order.
//! - CSV (`csv`, RFC 4180, CRLF between records, no line break after the last): the per-table
//!   counts, a header `table_name,source_rows,...,problems` and one record per table.
//! - Markdown (`markdown`, GitHub-flavoured): a title, then sections Job, Attempts, Tables,
//!   Problems, Log, each a table (or a sentence saying it is empty).

mod csv;
mod json;
mod load;
mod markdown;

use crate::error::{Error, Result};
use crate::shown;
use crate::sqlite::Db;
use crate::sync::summary::TableCounts;
use load::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Markdown,
}

impl Format {
    fn parse(format: &str) -> Result<Format> {
        match format {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "markdown" => Ok(Format::Markdown),
            other => Err(Error::invalid(format!(
                "unknown format {}: the format is 'json' (the default), 'csv' or 'markdown'",
                shown::quoted(other, '\'')
            ))),
        }
    }
}

/// Renders job `id`'s report in `format` (`json`, `csv` or `markdown`).
pub fn render(db: &Db, id: i64, format: &str) -> Result<String> {
    let format = Format::parse(format)?;
    let report = Report::load(db, id)?;
    Ok(match format {
        Format::Json => json::render(&report),
        Format::Csv => csv::render(&report),
        Format::Markdown => markdown::render(&report),
    })
}

/// A table's counts as text, in `TableCounts::FIELDS` order, for CSV fields and Markdown cells:
/// a count that was not measured is empty.
fn counts_as_text(counts: &TableCounts) -> impl Iterator<Item = String> {
    counts
        .values()
        .into_iter()
        .map(|count| count.map(|n| n.to_string()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_formats_name_the_three() {
        let message = Format::parse("xml").unwrap_err().to_string();
        assert_eq!(
            message,
            "unknown format 'xml': the format is 'json' (the default), 'csv' or 'markdown'"
        );
        assert_eq!(Format::parse("markdown").unwrap(), Format::Markdown);
    }
}
