//! The audit's "who": what an actor's name may be, and who a job is requested by.
//!
//! An actor is whoever an application says acts on a connection (`cloud_sync_set_actor`), or a
//! job's option `requested_by` names. cloud_sync never guesses one: no name given is NULL. The
//! name is not a secret, but it reaches logs and reports, so it is short, holds no control
//! character (nothing in it can break a line or drive a terminal), and is not a connection
//! string (given by mistake, one would put its password in every log line that names who
//! asked).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::shown;

/// The longest actor name, in characters.
pub const MAX_LEN: usize = 200;

/// The rule every actor name follows, as errors state it.
pub const RULE: &str = "an actor is 1 to 200 characters of text, with no control character";

/// What is refused of a name that may be a connection string.
const NOT_A_CONNECTION_STRING: &str = "an actor is a name, not a connection string: this one \
     looks like one (a URL or a password= key), and would show its password in every log and \
     report";

/// Checks `name` against the rule, and that it is not a connection string; the error says
/// which part it breaks.
pub fn validate(name: &str) -> Result<()> {
    let length = name.chars().count();
    let broken = if length == 0 {
        "this one is empty".to_string()
    } else if length > MAX_LEN {
        format!("this one has {length} characters")
    } else if let Some(c) = name.chars().find(|c| c.is_control()) {
        format!(
            "this one holds the control character U+{:04X}",
            u32::from(c)
        )
    } else if shown::may_be_connection_string(name) {
        return Err(Error::invalid(NOT_A_CONNECTION_STRING));
    } else {
        return Ok(());
    };
    Err(Error::invalid(format!("{RULE}: {broken}")))
}

/// The option `requested_by` of a job or a schedule: text that follows the rule.
pub fn requested_by_option(value: &Value) -> Result<String> {
    let name = value.as_str().ok_or_else(|| {
        Error::invalid(format!(
            "option requested_by must be text ({RULE}), not {}",
            shown::json(value)
        ))
    })?;
    validate(name).map_err(|e| Error::invalid(format!("option requested_by: {e}")))?;
    Ok(name.to_string())
}

/// Who a job is requested by: the option `requested_by`, else the connection's actor, else no
/// one. An application that sets the actor decides who acts, so an option naming someone else
/// is refused rather than believed (see docs/design.md, "The audit's who").
pub fn requester(option: Option<&str>, actor: Option<&str>) -> Result<Option<String>> {
    match (option, actor) {
        (Some(named), Some(actor)) if named != actor => Err(Error::invalid(format!(
            "option requested_by names {}, but this connection acts as {} \
             (cloud_sync_set_actor): the actor an application sets cannot be overridden per \
             call; leave requested_by out, or clear the actor first with \
             cloud_sync_set_actor(NULL)",
            shown::quoted(named, '\''),
            shown::quoted(actor, '\'')
        ))),
        (Some(named), _) => Ok(Some(named.to_string())),
        (None, actor) => Ok(actor.map(str::to_string)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn broken(name: &str) -> String {
        validate(name).unwrap_err().to_string()
    }

    #[test]
    fn names_are_short_text_without_control_characters() {
        for good in [
            "alice",
            "alice@example.com",
            "Zoë Ø",
            " padded ",
            &"é".repeat(200),
        ] {
            assert!(validate(good).is_ok(), "{good}");
        }
        assert_eq!(
            broken(""),
            "an actor is 1 to 200 characters of text, with no control character: this one is \
             empty"
        );
        assert!(broken(&"x".repeat(201)).ends_with("this one has 201 characters"));
        assert!(broken("a\nb").ends_with("the control character U+000A"));
        assert!(broken("a\u{1b}[31m").ends_with("the control character U+001B"));
        assert!(broken("a\u{85}").ends_with("the control character U+0085"));
        for secret in [
            "postgresql://u:pw@h/d",
            "host=h password=pw",
            "x PASSWORD = pw",
        ] {
            assert!(
                broken(secret).starts_with("an actor is a name, not a connection string"),
                "{secret}"
            );
        }
    }

    #[test]
    fn the_option_is_text_that_follows_the_rule() {
        assert_eq!(requested_by_option(&json!("bob")).unwrap(), "bob");
        let message = requested_by_option(&json!(null)).unwrap_err().to_string();
        assert!(
            message.starts_with("option requested_by must be text (an actor is 1 to 200"),
            "{message}"
        );
        assert!(message.ends_with("not null"), "{message}");
        let message = requested_by_option(&json!("")).unwrap_err().to_string();
        assert!(
            message.starts_with("option requested_by: an actor is"),
            "{message}"
        );
    }

    #[test]
    fn the_option_the_actor_or_no_one_and_never_someone_else() {
        assert_eq!(requester(None, None).unwrap(), None);
        assert_eq!(
            requester(Some("bob"), None).unwrap().as_deref(),
            Some("bob")
        );
        assert_eq!(requester(None, Some("al")).unwrap().as_deref(), Some("al"));
        assert_eq!(
            requester(Some("al"), Some("al")).unwrap().as_deref(),
            Some("al")
        );
        let message = requester(Some("bob"), Some("al")).unwrap_err().to_string();
        assert!(
            message
                .starts_with("option requested_by names 'bob', but this connection acts as 'al'"),
            "{message}"
        );
    }
}
