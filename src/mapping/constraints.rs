//! The constraints and indexes of a table that cloud_sync creates on the other side, in terms
//! both sides share, and their DDL text on each side. Read from SQLite by
//! `local::constraints`, from the Postgres catalog by `remote::constraints`; what does not
//! translate never reaches these types: it is a "not created" note, kept beside them.
//!
//! Foreign keys are always created `DEFERRABLE INITIALLY DEFERRED`: checked at commit, so the
//! order in which a job writes and deletes the rows of parent and child tables does not matter.
//! `RESTRICT` becomes `NO ACTION` for the same reason (a RESTRICT check cannot be deferred, on
//! either side); at commit both forbid the same thing, a child row without its parent.

use crate::sql_text::quote;

/// One column of an index, in index order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexColumn {
    pub name: String,
    pub descending: bool,
}

/// A unique constraint, unique index or plain index on plain columns, without a predicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The name the side that has it gives it, `None` when that side made it up (SQLite's
    /// `sqlite_autoindex_...` of a UNIQUE constraint).
    pub name: Option<String>,
    pub columns: Vec<IndexColumn>,
    pub unique: bool,
    /// A UNIQUE table constraint rather than a CREATE UNIQUE INDEX (uniqueness is the same).
    pub constraint: bool,
}

impl Index {
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }
}

/// What a foreign key does to child rows when their parent row is deleted or its key changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignKeyAction {
    NoAction,
    Cascade,
    SetNull,
    SetDefault,
}

impl ForeignKeyAction {
    /// SQLite's spelling (`pragma_foreign_key_list`) or Postgres's one-letter code
    /// (`pg_constraint.confdeltype`); RESTRICT is read as NO ACTION (module doc).
    pub fn parse(written: &str) -> Option<ForeignKeyAction> {
        Some(match written.to_ascii_uppercase().as_str() {
            "NO ACTION" | "RESTRICT" | "A" | "R" => ForeignKeyAction::NoAction,
            "CASCADE" | "C" => ForeignKeyAction::Cascade,
            "SET NULL" | "N" => ForeignKeyAction::SetNull,
            "SET DEFAULT" | "D" => ForeignKeyAction::SetDefault,
            _ => return None,
        })
    }

    fn sql(self) -> &'static str {
        match self {
            ForeignKeyAction::NoAction => "NO ACTION",
            ForeignKeyAction::Cascade => "CASCADE",
            ForeignKeyAction::SetNull => "SET NULL",
            ForeignKeyAction::SetDefault => "SET DEFAULT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The constraint's name where the side that has it names it.
    pub name: Option<String>,
    pub columns: Vec<String>,
    /// The referenced table, in the same schema (remote) or database (local).
    pub parent: String,
    pub parent_columns: Vec<String>,
    pub on_delete: ForeignKeyAction,
    pub on_update: ForeignKeyAction,
}

/// The constraint and index names of one remote schema, where index names (and so the names of
/// unique constraints, which are indexes) share one namespace with tables: the rule that gives
/// each new one a name no other relation there has.
pub struct RemoteNames {
    taken: Vec<String>,
}

/// Postgres cuts identifiers at 63 bytes.
const MAX_NAME_BYTES: usize = 63;

impl RemoteNames {
    /// `taken`: the names of the schema's relations (tables, indexes, sequences, views...).
    pub fn new(taken: Vec<String>) -> RemoteNames {
        RemoteNames { taken }
    }

    /// A name for an index or constraint of `table`: the one SQLite gave it (`preferred`) when
    /// there is one, otherwise `<table>_<columns>_<suffix>` (`key` for unique, `idx` for other
    /// indexes, `fkey` for foreign keys, as Postgres names its own); when taken, `_2`, `_3`...
    /// before the suffix. A name over 63 bytes keeps its first bytes and ends with 8 hex digits
    /// of a hash of the whole name, so that it stays unique and the same on every run.
    pub fn choose(
        &mut self,
        preferred: Option<&str>,
        table: &str,
        columns: &[&str],
        suffix: &str,
    ) -> String {
        let base = match preferred {
            Some(name) => name.to_string(),
            None => format!("{table}_{}", columns.join("_")),
        };
        let suffix = if preferred.is_some() {
            String::new()
        } else {
            format!("_{suffix}")
        };
        let name = (1..)
            .map(|n| {
                let number = if n == 1 {
                    String::new()
                } else {
                    format!("_{n}")
                };
                fit(&format!("{base}{number}{suffix}"))
            })
            .find(|name| !self.taken.contains(name))
            .expect("some number is free");
        self.taken.push(name.clone());
        name
    }
}

/// `name` cut to 63 bytes (at a character boundary) with a hash of all of it at the end.
fn fit(name: &str) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name.to_string();
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let mut cut = MAX_NAME_BYTES - 9;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{hash:08x}", &name[..cut])
}

fn names(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `("a", "b" DESC)`: an index's columns in order.
fn index_columns(index: &Index) -> String {
    index
        .columns
        .iter()
        .map(|c| {
            let desc = if c.descending { " DESC" } else { "" };
            format!("{}{desc}", quote(&c.name))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ON DELETE ... ON UPDATE ... DEFERRABLE INITIALLY DEFERRED`: the same text on both sides.
fn references(fk: &ForeignKey, parent: &str) -> String {
    let mut text = format!("REFERENCES {parent} ({})", names(&fk.parent_columns));
    for (event, action) in [("DELETE", fk.on_delete), ("UPDATE", fk.on_update)] {
        if action != ForeignKeyAction::NoAction {
            text.push_str(&format!(" ON {event} {}", action.sql()));
        }
    }
    text.push_str(" DEFERRABLE INITIALLY DEFERRED");
    text
}

/// Remote: the statement that creates `index` on the table `remote` (quoted `"schema"."table"`),
/// named `name` (the unquoted name from `RemoteNames`).
pub fn pg_index(remote: &str, index: &Index, name: &str) -> String {
    if index.constraint {
        let columns: Vec<String> = index.columns.iter().map(|c| c.name.clone()).collect();
        return format!(
            "ALTER TABLE {remote} ADD CONSTRAINT {} UNIQUE ({})",
            quote(name),
            names(&columns)
        );
    }
    format!(
        "CREATE {}INDEX {} ON {remote} ({})",
        if index.unique { "UNIQUE " } else { "" },
        quote(name),
        index_columns(index)
    )
}

/// Remote: the statement that adds `fk` to `remote`; `parent` is the quoted referenced table.
pub fn pg_foreign_key(remote: &str, fk: &ForeignKey, name: &str, parent: &str) -> String {
    format!(
        "ALTER TABLE {remote} ADD CONSTRAINT {} FOREIGN KEY ({}) {}",
        quote(name),
        names(&fk.columns),
        references(fk, parent)
    )
}

/// Local: a table constraint of the CREATE TABLE of a new table, for a unique constraint
/// (`index.constraint`) or a foreign key; other indexes are `sqlite_index` statements.
pub fn sqlite_table_constraint(item: Result<&Index, &ForeignKey>) -> String {
    let (name, body) = match item {
        Ok(index) => (
            &index.name,
            format!(
                "UNIQUE ({})",
                names(
                    &index
                        .columns
                        .iter()
                        .map(|c| c.name.clone())
                        .collect::<Vec<_>>()
                )
            ),
        ),
        Err(fk) => (
            &fk.name,
            format!(
                "FOREIGN KEY ({}) {}",
                names(&fk.columns),
                references(fk, &quote(&fk.parent))
            ),
        ),
    };
    match name {
        Some(name) => format!("CONSTRAINT {} {body}", quote(name)),
        None => body,
    }
}

/// Local: the CREATE INDEX of a unique or plain index of the new table `table`, named `name`.
pub fn sqlite_index(table: &str, index: &Index, name: &str) -> String {
    format!(
        "CREATE {}INDEX {} ON {} ({})",
        if index.unique { "UNIQUE " } else { "" },
        quote(name),
        quote(table),
        index_columns(index)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, descending: bool) -> IndexColumn {
        IndexColumn {
            name: name.into(),
            descending,
        }
    }

    fn fk(on_delete: ForeignKeyAction) -> ForeignKey {
        ForeignKey {
            name: None,
            columns: vec!["artist_id".into()],
            parent: "artist".into(),
            parent_columns: vec!["id".into()],
            on_delete,
            on_update: ForeignKeyAction::NoAction,
        }
    }

    #[test]
    fn remote_names_are_derived_unique_and_at_most_63_bytes() {
        let mut names = RemoteNames::new(vec!["album_title_key".into()]);
        assert_eq!(
            names.choose(None, "album", &["title"], "key"),
            "album_title_2_key"
        );
        assert_eq!(
            names.choose(None, "album", &["artist_id", "title"], "idx"),
            "album_artist_id_title_idx"
        );
        assert_eq!(
            names.choose(Some("by_title"), "album", &["title"], "idx"),
            "by_title"
        );
        assert_eq!(
            names.choose(Some("by_title"), "track", &["title"], "idx"),
            "by_title_2"
        );
        let long = "c".repeat(70);
        let first = names.choose(None, "t", &[&long], "idx");
        assert_eq!(first.len(), 63);
        assert!(first.starts_with("t_ccc"));
        // Same input, same name; another long column, another name.
        assert_eq!(fit(&format!("t_{long}_idx")), first);
        assert_ne!(names.choose(None, "t", &[&"c".repeat(71)], "idx"), first);
    }

    #[test]
    fn remote_indexes_and_constraints() {
        let unique = Index {
            name: None,
            columns: vec![column("title", false), column("year", true)],
            unique: true,
            constraint: true,
        };
        let remote = r#""public"."album""#;
        assert_eq!(
            pg_index(remote, &unique, "album_title_year_key"),
            r#"ALTER TABLE "public"."album" ADD CONSTRAINT "album_title_year_key" UNIQUE ("title", "year")"#
        );
        let index = Index {
            constraint: false,
            unique: false,
            ..unique
        };
        assert_eq!(
            pg_index(remote, &index, "by_title"),
            r#"CREATE INDEX "by_title" ON "public"."album" ("title", "year" DESC)"#
        );
        assert_eq!(
            pg_foreign_key(
                remote,
                &fk(ForeignKeyAction::Cascade),
                "album_artist_id_fkey",
                r#""public"."artist""#
            ),
            r#"ALTER TABLE "public"."album" ADD CONSTRAINT "album_artist_id_fkey" FOREIGN KEY ("artist_id") REFERENCES "public"."artist" ("id") ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED"#
        );
    }

    #[test]
    fn local_table_constraints_and_indexes() {
        let unique = Index {
            name: Some("album_title_key".into()),
            columns: vec![column("title", false)],
            unique: true,
            constraint: true,
        };
        assert_eq!(
            sqlite_table_constraint(Ok(&unique)),
            r#"CONSTRAINT "album_title_key" UNIQUE ("title")"#
        );
        assert_eq!(
            sqlite_table_constraint(Err(&fk(ForeignKeyAction::NoAction))),
            r#"FOREIGN KEY ("artist_id") REFERENCES "artist" ("id") DEFERRABLE INITIALLY DEFERRED"#
        );
        assert_eq!(
            sqlite_index(
                "album",
                &Index {
                    constraint: false,
                    ..unique
                },
                "by_title"
            ),
            r#"CREATE UNIQUE INDEX "by_title" ON "album" ("title")"#
        );
    }

    #[test]
    fn actions_read_from_either_side_and_restrict_is_deferred() {
        assert_eq!(
            ForeignKeyAction::parse("CASCADE"),
            Some(ForeignKeyAction::Cascade)
        );
        assert_eq!(
            ForeignKeyAction::parse("n"),
            Some(ForeignKeyAction::SetNull)
        );
        assert_eq!(
            ForeignKeyAction::parse("RESTRICT"),
            Some(ForeignKeyAction::NoAction)
        );
        assert_eq!(
            ForeignKeyAction::parse("r"),
            Some(ForeignKeyAction::NoAction)
        );
        assert_eq!(ForeignKeyAction::parse("weird"), None);
    }
}
