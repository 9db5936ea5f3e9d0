//! The retry policy: transient failures are tried again after an exponentially growing,
//! fully jittered delay; permanent ones fail at once.

use std::time::Duration;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use serde_json::Value;

use crate::error::Error;
use crate::sqlite::argument::json_integer;

pub const DEFAULT_BASE: Duration = Duration::from_secs(2);
pub const DEFAULT_CAP: Duration = Duration::from_secs(300);

/// A job's retry settings, from its stored options (`retry_base_s`, `retry_cap_s`) and its
/// `max_attempts` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_attempts: i64,
    pub base: Duration,
    pub cap: Duration,
}

impl Policy {
    pub fn new(max_attempts: i64, options_json: &str) -> Policy {
        let options: Value = serde_json::from_str(options_json).unwrap_or(Value::Null);
        let seconds = |key: &str, default: Duration| {
            json_integer(&options[key])
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs)
                .unwrap_or(default)
        };
        Policy {
            max_attempts,
            base: seconds("retry_base_s", DEFAULT_BASE),
            cap: seconds("retry_cap_s", DEFAULT_CAP),
        }
    }

    /// The delay before the attempt after `attempt` (1-based): "full jitter", a uniform draw
    /// between 0 and min(cap, base * 2^(attempt-1)), so many clients retrying at once spread out.
    pub fn delay(&self, attempt: i64, random: u64) -> Duration {
        let exponent = attempt.clamp(1, 32) as u32 - 1;
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.cap);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(if millis == 0 {
            0
        } else {
            random % (millis + 1)
        })
    }
}

/// What becomes of a job after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    /// Queued again, due after this delay.
    Retry(Duration),
    Failed,
    Cancelled,
}

/// Decides the job's next state after attempt `attempt` ended with `error` (`None`: success).
/// A cancel request wins over a retry.
pub fn decide(
    error: Option<&Error>,
    attempt: i64,
    policy: &Policy,
    cancel_requested: bool,
) -> Next {
    match error {
        None => Next::Succeeded,
        Some(Error::Cancelled(_)) => Next::Cancelled,
        Some(_) if cancel_requested => Next::Cancelled,
        Some(e) if e.is_transient() && attempt < policy.max_attempts => {
            Next::Retry(policy.delay(attempt, OsRng.next_u64()))
        }
        Some(_) => Next::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ConnectFailure;

    #[test]
    fn delays_grow_exponentially_with_full_jitter_up_to_the_cap() {
        let policy = Policy::new(5, "{}");
        assert_eq!((policy.base, policy.cap), (DEFAULT_BASE, DEFAULT_CAP));
        // A draw equal to the ceiling gives the ceiling: 2 s, 4 s, 8 s, ... 256 s, then 300 s.
        for (attempt, ceiling_s) in [(1, 2), (2, 4), (3, 8), (8, 256), (9, 300), (30, 300)] {
            let ceiling = Duration::from_secs(ceiling_s);
            assert_eq!(
                policy.delay(attempt, ceiling.as_millis() as u64),
                ceiling,
                "{attempt}"
            );
        }
        // Every draw lands between 0 and the ceiling.
        for random in [0, 1, 7_999, 8_000, 8_001, u64::MAX] {
            assert!(policy.delay(3, random) <= Duration::from_secs(8));
        }
        assert_eq!(policy.delay(1, 0), Duration::ZERO);
        let custom = Policy::new(3, r#"{"retry_base_s": 1, "retry_cap_s": 3}"#);
        assert_eq!(custom.delay(2, 2_000), Duration::from_secs(2));
        assert_eq!(custom.delay(5, 3_000), Duration::from_secs(3));
    }

    #[test]
    fn whole_real_delays_are_read_as_given() {
        let policy = Policy::new(5, r#"{"retry_base_s": 3.0, "retry_cap_s": "60"}"#);
        assert_eq!(
            (policy.base, policy.cap),
            (Duration::from_secs(3), Duration::from_secs(60))
        );
    }

    #[test]
    fn transient_failures_retry_permanent_ones_fail_at_once() {
        let policy = Policy::new(3, "{}");
        let refused = Error::connect(ConnectFailure::Refused, "refused");
        let password = Error::connect(ConnectFailure::Auth, "password");
        assert!(matches!(
            decide(Some(&refused), 1, &policy, false),
            Next::Retry(_)
        ));
        assert!(matches!(
            decide(Some(&Error::Busy("lock".into())), 2, &policy, false),
            Next::Retry(_)
        ));
        assert_eq!(decide(Some(&refused), 3, &policy, false), Next::Failed);
        assert_eq!(decide(Some(&password), 1, &policy, false), Next::Failed);
        assert_eq!(
            decide(Some(&Error::invalid("bad data")), 1, &policy, false),
            Next::Failed
        );
        assert_eq!(
            decide(
                Some(&Error::Remote {
                    state: Some(postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
                    message: "permission denied".into(),
                }),
                1,
                &policy,
                false
            ),
            Next::Failed
        );
        assert_eq!(decide(Some(&refused), 1, &policy, true), Next::Cancelled);
        assert_eq!(
            decide(Some(&Error::Cancelled("x".into())), 1, &policy, false),
            Next::Cancelled
        );
        assert_eq!(decide(None, 1, &policy, true), Next::Succeeded);
    }
}
