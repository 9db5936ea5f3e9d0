//! What the extension keeps for one host connection while it is open: who acts on it (the
//! audit's actor, `cloud_sync_set_actor`).
//!
//! It lives in the user data of the connection's function registrations: each registration
//! holds a share of the connection's one `State`, and SQLite drops that share when the function
//! is removed or the connection closes. So the state belongs to the connection itself, never to
//! the database file (a second connection to the same file has its own), and it cannot outlive
//! the connection or pass to a later one that SQLite happens to allocate at the same address.
//! Loading the extension again on a connection registers its functions afresh, with a fresh
//! state.

use std::sync::{Arc, Mutex, MutexGuard};

/// One connection's state, shared by its function registrations.
#[derive(Debug, Default)]
pub struct State {
    actor: Mutex<Option<String>>,
}

impl State {
    pub fn new() -> Arc<State> {
        Arc::default()
    }

    fn actor_slot(&self) -> MutexGuard<'_, Option<String>> {
        // A panic while the lock was held leaves a value that is still whole.
        self.actor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Who acts on the connection, if anyone was named.
    pub fn actor(&self) -> Option<String> {
        self.actor_slot().clone()
    }

    /// Names who acts on the connection from now on (`None`: no one).
    pub fn set_actor(&self, actor: Option<String>) {
        *self.actor_slot() = actor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_is_set_cleared_and_shared_by_the_registrations() {
        let state = State::new();
        let other_registration = Arc::clone(&state);
        assert_eq!(state.actor(), None);
        state.set_actor(Some("alice".into()));
        assert_eq!(other_registration.actor().as_deref(), Some("alice"));
        other_registration.set_actor(None);
        assert_eq!(state.actor(), None);
        assert_eq!(
            State::new().actor(),
            None,
            "another connection's state is its own"
        );
    }
}
