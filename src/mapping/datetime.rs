//! ISO-8601 dates and date-times as Postgres reads and writes them: which texts `date`,
//! `timestamp` and `timestamptz` take unchanged, and the text each gives back (a space between
//! date and time, seconds always, no trailing zeros in the fraction, and for `timestamptz` the
//! instant in UTC, as the import's session shows it). The export checks a value with the first
//! and compares it with the second, so that `2024-01-01T10:00+02` sent to `timestamptz` is
//! known to come back as `2024-01-01 08:00:00+00`.

/// A date-time text, parsed: `YYYY-MM-DD[T ]HH:MM[:SS[.fraction]]` and, when it has one, a zone
/// (`Z` or `±HH[[:]MM]`) as minutes east of UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTime<'a> {
    days: i64,
    seconds: i64,
    fraction: &'a str,
    pub offset_minutes: Option<i64>,
}

const NOT_DATE_TIME: &str = "text is not an ISO-8601 date-time (YYYY-MM-DD HH:MM:SS)";

/// Days since 1970-01-01 of a `YYYY-MM-DD` text, checked against the calendar.
pub fn parse_date(text: &str) -> Result<i64, String> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && digits(&text[..4])
        && digits(&text[5..7])
        && digits(&text[8..]);
    if !shape {
        return Err("text is not a date in the form YYYY-MM-DD".into());
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap_or(0);
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let valid =
        year >= 1 && (1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day);
    if !valid {
        return Err(format!("{text} is not a date on the calendar"));
    }
    Ok(days_from_civil(year, month, day))
}

impl<'a> DateTime<'a> {
    pub fn parse(text: &'a str) -> Result<DateTime<'a>, String> {
        if text.len() < 16
            || !text.is_char_boundary(10)
            || !matches!(text.as_bytes()[10], b'T' | b' ')
        {
            return Err(NOT_DATE_TIME.into());
        }
        let days = parse_date(&text[..10]).map_err(|e| {
            if e.contains("calendar") {
                e
            } else {
                NOT_DATE_TIME.into()
            }
        })?;
        let rest = &text[11..];
        let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
        let (time, zone) = rest.split_at(zone_at);
        let offset_minutes = if zone.is_empty() {
            None
        } else {
            Some(parse_zone(zone).ok_or(NOT_DATE_TIME)?)
        };
        let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
        let parts: Vec<&str> = clock.split(':').collect();
        if !matches!(parts.len(), 2 | 3)
            || parts.iter().any(|p| p.len() != 2 || !digits(p))
            || (time.contains('.') && !digits(fraction))
        {
            return Err(NOT_DATE_TIME.into());
        }
        let field = |i: usize| parts.get(i).map_or(0, |p| p.parse::<i64>().unwrap_or(0));
        let (hour, minute, second) = (field(0), field(1), field(2));
        // Postgres takes 24:00:00 (the next midnight) and a leap second 60.
        let end_of_day = hour == 24 && minute == 0 && second == 0 && !has_nonzero(fraction);
        if !(hour < 24 || end_of_day) || minute > 59 || second > 60 {
            return Err(format!("{text} is not a time of day"));
        }
        Ok(DateTime {
            days,
            seconds: hour * 3600 + minute * 60 + second,
            fraction,
            offset_minutes,
        })
    }

    /// Fractional-second digits that matter (trailing zeros do not).
    pub fn fraction_digits(&self) -> usize {
        self.fraction.trim_end_matches('0').len()
    }

    /// The text a `timestamp` gives back for this date-time (which carries no zone).
    pub fn timestamp_text(&self) -> String {
        self.render(self.days * 86_400 + self.seconds, "")
    }

    /// The text a `timestamptz` gives back for this date-time in a UTC session; a text without a
    /// zone is read as UTC, as the export's session does.
    pub fn timestamptz_text(&self) -> String {
        let offset = self.offset_minutes.unwrap_or(0) * 60;
        self.render(self.days * 86_400 + self.seconds - offset, "+00")
    }

    fn render(&self, epoch_seconds: i64, zone: &str) -> String {
        let (days, seconds) = (
            epoch_seconds.div_euclid(86_400),
            epoch_seconds.rem_euclid(86_400),
        );
        let (year, month, day) = civil_from_days(days);
        let fraction = self.fraction.trim_end_matches('0');
        let dot = if fraction.is_empty() { "" } else { "." };
        format!(
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}{dot}{fraction}{zone}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn has_nonzero(s: &str) -> bool {
    s.bytes().any(|b| b != b'0')
}

/// `Z`, `±HH`, `±HHMM` or `±HH:MM` as minutes east of UTC.
fn parse_zone(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset = zone[1..].replacen(':', "", 1);
    if !digits(&offset) || !matches!(offset.len(), 2 | 4) {
        return None;
    }
    let hours: i64 = offset[..2].parse().ok()?;
    let minutes: i64 = offset
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    (minutes < 60).then_some(sign * (hours * 60 + minutes))
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each text with what `SELECT text::timestamp, text::timestamptz` gives on PostgreSQL 15
    /// with TimeZone UTC and DateStyle ISO.
    #[test]
    fn text_as_postgres_gives_it_back() {
        for (text, timestamp, timestamptz) in [
            (
                "2024-01-01T10:00",
                "2024-01-01 10:00:00",
                "2024-01-01 10:00:00+00",
            ),
            (
                "2024-01-01 10:00:00.500",
                "2024-01-01 10:00:00.5",
                "2024-01-01 10:00:00.5+00",
            ),
            ("2024-01-01T10:00+02", "", "2024-01-01 08:00:00+00"),
            ("2024-01-01 23:30:00-05:30", "", "2024-01-02 05:00:00+00"),
            ("2024-01-01 00:30+01", "", "2023-12-31 23:30:00+00"),
            (
                "2024-01-01 10:00:00.123456+0545",
                "",
                "2024-01-01 04:15:00.123456+00",
            ),
            (
                "2024-02-29 24:00:00",
                "2024-03-01 00:00:00",
                "2024-03-01 00:00:00+00",
            ),
            (
                "2016-12-31 23:59:60",
                "2017-01-01 00:00:00",
                "2017-01-01 00:00:00+00",
            ),
            (
                "0001-01-01 00:00",
                "0001-01-01 00:00:00",
                "0001-01-01 00:00:00+00",
            ),
            ("2024-01-01 10:00:00Z", "", "2024-01-01 10:00:00+00"),
        ] {
            let parsed = DateTime::parse(text).unwrap();
            if parsed.offset_minutes.is_none() {
                assert_eq!(parsed.timestamp_text(), timestamp, "{text}");
            }
            assert_eq!(parsed.timestamptz_text(), timestamptz, "{text}");
        }
    }

    #[test]
    fn texts_that_are_not_date_times() {
        for (text, expected) in [
            ("2024-01-01", "ISO-8601"),
            ("2024/01/01 10:00", "ISO-8601"),
            ("2024-01-01 10:00+2", "ISO-8601"),
            ("2024-01-01 10:00:00.x", "ISO-8601"),
            ("2024-02-30 10:00", "not a date on the calendar"),
            ("2023-02-29 10:00", "not a date on the calendar"),
            ("0000-01-01 10:00", "not a date on the calendar"),
            ("2024-13-01 10:00", "not a date on the calendar"),
            ("2024-01-01 25:00", "not a time of day"),
            ("2024-01-01 24:00:01", "not a time of day"),
            ("2024-01-01 10:60", "not a time of day"),
            ("2024-01-01 10:00+05:60", "ISO-8601"),
            ("2024-01-01é10:00", "ISO-8601"),
        ] {
            let message = DateTime::parse(text).unwrap_err();
            assert!(message.contains(expected), "{text}: {message}");
        }
        assert!(parse_date("2024-02-29").is_ok());
        assert!(parse_date("2024-04-31").unwrap_err().contains("calendar"));
    }
}
