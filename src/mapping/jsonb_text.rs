//! The text Postgres gives back for JSON stored as `jsonb`. jsonb keeps the value, not the
//! text: keys are ordered (shorter first, then bytewise) and a repeated key keeps its last
//! value, whitespace becomes `", "` and `": "`, numbers are written as `numeric` writes them and
//! strings with only the escapes JSON requires. The export compares a value with this text, so
//! that `{"b":1,"a":2}` is known to come back as `{"a": 2, "b": 1}`.

use super::decimal::Decimal;

/// The text `jsonb` gives back for the JSON `text`; `None` when it is not JSON.
pub fn postgres_text(text: &str) -> Option<String> {
    let mut parser = Parser {
        rest: text.trim_start_matches(WHITESPACE),
    };
    let mut out = String::with_capacity(text.len());
    parser.value(&mut out)?;
    parser
        .rest
        .trim_start_matches(WHITESPACE)
        .is_empty()
        .then_some(out)
}

const WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

struct Parser<'a> {
    rest: &'a str,
}

impl<'a> Parser<'a> {
    fn skip_whitespace(&mut self) {
        self.rest = self.rest.trim_start_matches(WHITESPACE);
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_whitespace();
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn value(&mut self, out: &mut String) -> Option<()> {
        self.skip_whitespace();
        match self.rest.as_bytes().first()? {
            b'{' => self.object(out),
            b'[' => self.array(out),
            b'"' => {
                let s = self.string()?;
                write_string(&s, out);
                Some(())
            }
            _ => self.literal(out),
        }
    }

    fn object(&mut self, out: &mut String) -> Option<()> {
        self.eat("{");
        let mut members: Vec<(String, String)> = Vec::new();
        if !self.eat("}") {
            loop {
                self.skip_whitespace();
                let key = self.string()?;
                if !self.eat(":") {
                    return None;
                }
                let mut value = String::new();
                self.value(&mut value)?;
                members.retain(|(k, _)| *k != key);
                members.push((key, value));
                if self.eat("}") {
                    break;
                }
                if !self.eat(",") {
                    return None;
                }
            }
        }
        members
            .sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then(a.as_bytes().cmp(b.as_bytes())));
        out.push('{');
        for (i, (key, value)) in members.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_string(key, out);
            out.push_str(": ");
            out.push_str(value);
        }
        out.push('}');
        Some(())
    }

    fn array(&mut self, out: &mut String) -> Option<()> {
        self.eat("[");
        out.push('[');
        if !self.eat("]") {
            loop {
                self.value(out)?;
                if self.eat("]") {
                    break;
                }
                if !self.eat(",") {
                    return None;
                }
                out.push_str(", ");
            }
        }
        out.push(']');
        Some(())
    }

    /// `true`, `false`, `null` or a number, up to the next delimiter.
    fn literal(&mut self, out: &mut String) -> Option<()> {
        let end = self
            .rest
            .find([',', ']', '}', ' ', '\t', '\n', '\r'])
            .unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        match token {
            "true" | "false" | "null" => out.push_str(token),
            number => out.push_str(&Decimal::parse(number)?.postgres_text(None)),
        }
        Some(())
    }

    /// A JSON string, unescaped.
    fn string(&mut self) -> Option<String> {
        let mut chars = self.rest.strip_prefix('"')?.char_indices();
        let mut s = String::new();
        let mut pending_high: Option<u32> = None;
        while let Some((at, c)) = chars.next() {
            let unit = match c {
                '"' => {
                    self.rest = &self.rest[1 + at + 1..];
                    return pending_high.is_none().then_some(s);
                }
                '\\' => match chars.next()?.1 {
                    'u' => {
                        let hex: String = (0..4)
                            .filter_map(|_| chars.next().map(|(_, c)| c))
                            .collect();
                        u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 4)?
                    }
                    escaped => u32::from(match escaped {
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        '"' | '\\' | '/' => escaped,
                        _ => return None,
                    }),
                },
                c => u32::from(c),
            };
            match (pending_high.take(), unit) {
                (None, 0xD800..=0xDBFF) => pending_high = Some(unit),
                (Some(high), 0xDC00..=0xDFFF) => s.push(char::from_u32(
                    0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00),
                )?),
                (None, unit) => s.push(char::from_u32(unit)?),
                (Some(_), _) => return None,
            }
        }
        None
    }
}

/// `s` as a JSON string with the escapes Postgres writes (its `escape_json`).
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each JSON text with what `SELECT text::jsonb` gives on PostgreSQL 15.
    #[test]
    fn text_as_postgres_gives_it_back() {
        for (text, expected) in [
            (
                r#"{"b":1,"a":[1,2.50,1e2,-0],"a":"\u00e9\/x","cc":{}}"#,
                r#"{"a": "é/x", "b": 1, "cc": {}}"#,
            ),
            (r#"{"a": 2, "b": 1}"#, r#"{"a": 2, "b": 1}"#),
            (r#"[1,2.50,1E2,-0, -0.0]"#, "[1, 2.50, 100, 0, 0.0]"),
            (r#" "tab\there\u001f" "#, r#""tab\there\u001f""#),
            (r#""\ud83d\ude00""#, "\"😀\""),
            ("[]", "[]"),
            ("{ }", "{}"),
            ("[true,false,null]", "[true, false, null]"),
            (r#"{"aa":1,"b":2,"ab":3}"#, r#"{"b": 2, "aa": 1, "ab": 3}"#),
        ] {
            assert_eq!(postgres_text(text).as_deref(), Some(expected), "{text}");
        }
    }

    #[test]
    fn not_json() {
        for text in ["{", "[1,]x", r#"{"a" 1}"#, r#""\ud83d""#, r#""\q""#, "1 2"] {
            assert_eq!(postgres_text(text), None, "{text}");
        }
    }
}
