//! The only place that touches raw SQLite pointers, and so the boundary where a panic is caught
//! before it can reach the host (`panic_message` words what was caught).

pub mod api;
pub mod argument;
mod caller;
pub mod connection;
pub mod function;
pub mod per_connection;
pub mod vtab;

use std::any::Any;

pub use api::{Db, Param, Value};
pub use function::{Call, Output};

/// The message a caught panic carried (`panic!` with a literal or a formatted string), or
/// "unknown panic" for any other payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn panic_message_reads_str_and_string_payloads() {
        let literal = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(&*literal), "plain");
        let formatted = std::panic::catch_unwind(|| panic!("job {}", 7)).unwrap_err();
        assert_eq!(panic_message(&*formatted), "job 7");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(3_u8)).unwrap_err();
        assert_eq!(panic_message(&*other), "unknown panic");
    }
}
