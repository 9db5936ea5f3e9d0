//! The CSV report (RFC 4180): the per-table counts of the job's summary, a header record and one
//! record per table, CRLF between records and no line break after the last. Each record ends
//! with who asked for the job (empty when no one was named), so a row read alone still says.

use super::counts_as_text;
use super::load::Report;
use crate::sync::summary::TableCounts;

pub(super) fn render(report: &Report) -> String {
    let mut records = vec![format!(
        "table_name,{},requested_by",
        TableCounts::FIELDS.join(",")
    )];
    let requested_by = csv_field(report.job.requested_by.as_deref().unwrap_or(""));
    for table in report.tables() {
        let fields: Vec<String> = std::iter::once(csv_field(&table.table))
            .chain(counts_as_text(&table.counts))
            .chain(std::iter::once(requested_by.clone()))
            .collect();
        records.push(fields.join(","));
    }
    records.join("\r\n")
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a double quote, CR or LF (or starts
/// or ends with a space or tab, which some readers would trim), its double quotes doubled.
fn csv_field(field: &str) -> String {
    let edge = |c: char| c == ' ' || c == '\t';
    if field.contains([',', '"', '\r', '\n']) || field.starts_with(edge) || field.ends_with(edge) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("items"), "items");
        assert_eq!(csv_field("a|b c"), "a|b c");
        assert_eq!(csv_field("odd, \"name\""), "\"odd, \"\"name\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(csv_field(" spaced "), "\" spaced \"");
        assert_eq!(csv_field("in side"), "in side");
        assert_eq!(csv_field(""), "");
    }
}
