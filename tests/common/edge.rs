//! Values at the edges of each storage class, one row each, for the tests that send a table
//! through PostgreSQL and check that every value and storage class comes back exactly.

/// The reals, one a row (so also how many rows there are): zeros of both signs, infinities, an
/// inexact decimal, pi, the smallest subnormal and the largest finite value.
pub const REALS: [f64; 8] = [
    0.0,
    -0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.1,
    std::f64::consts::PI,
    5e-324,
    f64::MAX,
];
/// The texts of the first rows: empty, quotes and a comma, control characters, multi-byte and
/// joined characters with right-to-left script, a byte-order mark.
const TEXTS: [&str; 6] = [
    "",
    "plain",
    "comma, \"quote\" 'single'",
    "line\nbreak\ttab\\",
    "é😀👩‍👩‍👧 עברית",
    "\u{feff}bom",
];
/// The integers of the first rows: both extremes, zero, minus one.
const INTS: [i64; 4] = [i64::MIN, i64::MAX, 0, -1];

/// Row `k`'s blob: every other row has one, with a NUL and a 0xFF byte.
pub fn blob(k: usize) -> Option<Vec<u8>> {
    k.is_multiple_of(2).then(|| vec![0u8, 255, 1, 0, k as u8])
}

/// A row: id, integer, real, text, blob, and a NUMERIC (the integer / 3).
pub type Row = (
    i64,
    Option<i64>,
    f64,
    Option<&'static str>,
    Option<Vec<u8>>,
    Option<i64>,
);

/// Row `k` (from 0): id `k + 1`, and `INTS[k]`, `REALS[k]`, `TEXTS[k]`, `blob(k)` where they
/// exist (NULL where not).
pub fn row(k: usize) -> Row {
    let int = INTS.get(k).copied();
    (
        k as i64 + 1,
        int,
        REALS[k],
        TEXTS.get(k).copied(),
        blob(k),
        int.map(|i| i / 3),
    )
}
