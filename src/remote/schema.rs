//! The remote schema a job syncs with: the names that cannot be one (PostgreSQL's temporary and
//! system schemas), whether it exists, and creating it for an export.
//!
//! Names are taken exactly as written, as every statement quotes them: `"Sales"` and `sales` are
//! two schemas, and only the lowercase `pg_` prefix is reserved, as in PostgreSQL itself.

use postgres::error::SqlState;
use postgres::Transaction;

use super::session::remote_error;
use crate::error::{Error, Result};
use crate::sql_text::quote;

/// Refuses a schema that is no place for application tables: a temporary schema (private to
/// one session and emptied when it ends, so nothing synced there is kept, and another
/// session's cannot even be read), a system schema (`pg_` is reserved for PostgreSQL's own:
/// `pg_catalog`, `pg_toast`...), or `information_schema` (the SQL-standard views of the
/// catalog).
pub fn refuse_reserved(name: &str) -> Result<()> {
    let why = if is_temporary(name) {
        "is a temporary schema: it belongs to one session and is emptied when that session \
         ends, so nothing synced with it would be kept"
    } else if name.starts_with("pg_") {
        "is reserved for PostgreSQL's system schemas (every name starting with pg_ is, like \
         pg_catalog and pg_toast)"
    } else if name == "information_schema" {
        "holds PostgreSQL's SQL-standard views of its own catalog, not application tables"
    } else {
        return Ok(());
    };
    Err(Error::invalid(format!(
        "option schema: \"{name}\" {why}: name an ordinary schema, like \"public\" or one of \
         your own"
    )))
}

/// `pg_temp` (the session's own temporary schema), `pg_temp_N` and `pg_toast_temp_N`.
fn is_temporary(name: &str) -> bool {
    let numbered = |prefix: &str| {
        name.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    name == "pg_temp" || numbered("pg_temp_") || numbered("pg_toast_temp_")
}

/// Creates the schema `name`, owned by the connecting user, in the transaction `tx`. A user
/// without the CREATE privilege on the database gets an error that names both ways out.
pub fn create(tx: &mut Transaction, name: &str) -> Result<()> {
    let row = tx
        .query_typed_one(
            "SELECT has_database_privilege(current_database(), 'CREATE'),
                    current_database()::text, current_user::text",
            &[],
        )
        .map_err(|e| remote_error("cannot read the privileges on the remote database", &e))?;
    let (may_create, database, user): (bool, String, String) = (row.get(0), row.get(1), row.get(2));
    if !may_create {
        return Err(Error::Remote {
            state: Some(SqlState::INSUFFICIENT_PRIVILEGE),
            message: cannot_create(name, &database, &user),
        });
    }
    tx.batch_execute(&format!("CREATE SCHEMA {}", quote(name)))
        .map_err(|e| remote_error(&format!("cannot create the remote schema {name}"), &e))
}

/// Why `user` cannot create the schema `name` in `database`, and the two ways out.
fn cannot_create(name: &str, database: &str, user: &str) -> String {
    format!(
        "the remote schema {name} does not exist, and user {user} may not create it: permission \
         denied to create schemas in database {database} (SQLSTATE 42501). Grant it (GRANT \
         CREATE ON DATABASE {} TO {}), or have the schema created beforehand (CREATE SCHEMA {} \
         AUTHORIZATION {})",
        quote(database),
        quote(user),
        quote(name),
        quote(user)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_and_system_schemas_are_refused_by_name() {
        for (name, why) in [
            ("pg_temp", "is a temporary schema"),
            ("pg_temp_3", "is a temporary schema"),
            ("pg_toast_temp_12", "is a temporary schema"),
            ("pg_catalog", "is reserved for PostgreSQL's system schemas"),
            ("pg_toast", "is reserved for PostgreSQL's system schemas"),
            ("pg_temp_x", "is reserved for PostgreSQL's system schemas"),
            ("pg_", "is reserved for PostgreSQL's system schemas"),
            (
                "information_schema",
                "holds PostgreSQL's SQL-standard views",
            ),
        ] {
            let message = refuse_reserved(name).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("option schema: \"{name}\" {why}")),
                "{message}"
            );
            assert!(
                message.ends_with("name an ordinary schema, like \"public\" or one of your own")
            );
        }
    }

    #[test]
    fn ordinary_schemas_pass_exactly_as_written() {
        // PostgreSQL reserves only the lowercase prefix; names are quoted, so case is kept.
        for name in [
            "public",
            "sales",
            "PG_TEMP",
            "Pg_catalog",
            "pgdata",
            "Information_Schema",
        ] {
            assert!(refuse_reserved(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn a_user_who_cannot_create_the_schema_is_told_both_ways_out() {
        assert_eq!(
            cannot_create("Sales", "app", "writer"),
            "the remote schema Sales does not exist, and user writer may not create it: \
             permission denied to create schemas in database app (SQLSTATE 42501). Grant it \
             (GRANT CREATE ON DATABASE \"app\" TO \"writer\"), or have the schema created \
             beforehand (CREATE SCHEMA \"Sales\" AUTHORIZATION \"writer\")"
        );
    }
}
