//! The deadlines of a job's remote session, each set per job through its options: how long a
//! link may stay silent while an answer is due, how long the server lets one statement run or
//! the job's transaction sit idle, and how soon TCP gives up on a peer that is gone.
//!
//! The defaults are chosen for app-sized databases over real networks: every one is far above
//! what a healthy step of such a job takes, yet each ends a job stuck on a stalled link or a
//! vanished peer within minutes instead of never (docs/design.md, "Stalled links").

use std::time::Duration;

/// The options that set the deadlines, with their defaults in seconds, in the order the
/// reference lists them.
pub const OPTIONS: [(&str, u64); 4] = [
    (READ_TIMEOUT, 120),
    (STATEMENT_TIMEOUT, 600),
    (IDLE_IN_TRANSACTION_TIMEOUT, 300),
    (KEEPALIVE, 30),
];

pub const READ_TIMEOUT: &str = "read_timeout_s";
pub const STATEMENT_TIMEOUT: &str = "statement_timeout_s";
pub const IDLE_IN_TRANSACTION_TIMEOUT: &str = "idle_in_transaction_timeout_s";
pub const KEEPALIVE: &str = "keepalive_s";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// The job waits on the server and not one byte moves either way for this long: the link
    /// (or a pooler on it) has stalled, and the attempt is abandoned.
    pub read_timeout: Duration,
    /// The server cancels any one statement of the job that runs longer (a COPY counts as one
    /// statement for its whole transfer).
    pub statement_timeout: Duration,
    /// The server ends the session when the job's transaction waits this long between two
    /// statements, which frees its locks when the client is gone behind a silent link.
    pub idle_in_transaction_timeout: Duration,
    /// TCP keepalive starts probing a silent connection after this long (then every third of
    /// it, three times), and unacknowledged data may wait twice this long: a peer that is gone,
    /// or a NAT that dropped the flow, breaks the connection within about twice this.
    pub keepalive: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        let default = |name: &str| {
            let (_, seconds) = OPTIONS.iter().find(|(key, _)| *key == name).unwrap();
            Duration::from_secs(*seconds)
        };
        Deadlines {
            read_timeout: default(READ_TIMEOUT),
            statement_timeout: default(STATEMENT_TIMEOUT),
            idle_in_transaction_timeout: default(IDLE_IN_TRANSACTION_TIMEOUT),
            keepalive: default(KEEPALIVE),
        }
    }
}

impl Deadlines {
    /// Sets the deadline option `name` to `seconds`; `false` when `name` is not one of them.
    pub fn set(&mut self, name: &str, seconds: u64) -> bool {
        let value = Duration::from_secs(seconds);
        match name {
            READ_TIMEOUT => self.read_timeout = value,
            STATEMENT_TIMEOUT => self.statement_timeout = value,
            IDLE_IN_TRANSACTION_TIMEOUT => self.idle_in_transaction_timeout = value,
            KEEPALIVE => self.keepalive = value,
            _ => return false,
        }
        true
    }

    /// The statements that give the job's transaction its server-side deadlines, one per
    /// setting (steps of the transaction's first batch). `SET LOCAL` holds for the transaction
    /// only, so it is right behind transaction-mode poolers, where a session setting would leak
    /// to other clients (and startup parameters are refused).
    pub fn transaction_settings(&self) -> [String; 2] {
        // Postgres takes at most i32::MAX milliseconds (about 24 days).
        let millis = |d: Duration| d.as_millis().min(i32::MAX as u128);
        [
            format!(
                "SET LOCAL statement_timeout = {}",
                millis(self.statement_timeout)
            ),
            format!(
                "SET LOCAL idle_in_transaction_session_timeout = {}",
                millis(self.idle_in_transaction_timeout)
            ),
        ]
    }

    /// How often keepalive probes a silent connection once it has started.
    pub fn keepalive_interval(&self) -> Duration {
        (self.keepalive / 3).max(Duration::from_secs(1))
    }

    /// How long sent data may go unacknowledged before TCP breaks the connection.
    pub fn unacknowledged_limit(&self) -> Duration {
        self.keepalive * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_setting_and_the_transaction_s_settings() {
        let mut deadlines = Deadlines::default();
        assert_eq!(deadlines.read_timeout, Duration::from_secs(120));
        assert_eq!(deadlines.keepalive_interval(), Duration::from_secs(10));
        assert_eq!(deadlines.unacknowledged_limit(), Duration::from_secs(60));
        assert!(deadlines.set(STATEMENT_TIMEOUT, 5));
        assert!(deadlines.set(IDLE_IN_TRANSACTION_TIMEOUT, 7));
        assert!(!deadlines.set("read_timeout", 1));
        assert_eq!(
            deadlines.transaction_settings(),
            [
                "SET LOCAL statement_timeout = 5000",
                "SET LOCAL idle_in_transaction_session_timeout = 7000"
            ]
        );
        assert!(deadlines.set(KEEPALIVE, 2));
        assert_eq!(deadlines.keepalive_interval(), Duration::from_secs(1));
    }
}
