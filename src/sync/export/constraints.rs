//! The constraints and indexes of the remote tables an export creates: planned from what the
//! local table declares (`local::constraints`), and added around the load. NOT NULL and the
//! constant defaults are part of the CREATE TABLE; unique constraints and indexes are built once
//! the rows are in (one sort per index instead of an index update per row, like the primary
//! key); foreign keys are added last, once every table of the export is loaded, deferred so
//! that later exports may write parent and child rows in any order. Existing remote tables are
//! never altered. What cannot be created is a "not created" note of the table's summary.

use super::plan::TablePlan;
use crate::error::Result;
use crate::local::constraints::{self as local_rules, LocalRules};
use crate::local::tables::LocalTable;
use crate::mapping::{self, ForeignKey, PgType, RemoteNames};
use crate::remote::batch::Step;
use crate::remote::catalog::Catalog;
use crate::sql_text::quote;
use crate::sqlite::Db;

/// What the export adds to a table it creates.
#[derive(Debug, Default)]
pub struct RemoteRules {
    /// Columns declared NOT NULL.
    pub not_null: Vec<String>,
    /// Column, default expression.
    pub defaults: Vec<(String, String)>,
    /// CREATE INDEX and ADD CONSTRAINT ... UNIQUE statements, run after the load.
    pub indexes: Vec<String>,
    /// The referenced table and the ADD CONSTRAINT ... FOREIGN KEY statement.
    pub foreign_keys: Vec<(String, String)>,
    pub not_created: Vec<String>,
}

impl RemoteRules {
    /// What follows a column's type in the CREATE TABLE.
    pub fn column_clause(&self, column: &str) -> String {
        let mut clause = String::new();
        if self.not_null.iter().any(|c| c == column) {
            clause.push_str(" NOT NULL");
        }
        if let Some((_, default)) = self.defaults.iter().find(|(c, _)| c == column) {
            clause.push_str(&format!(" DEFAULT {default}"));
        }
        clause
    }
}

/// Plans the rules of every table the export creates; `locals` are the tables of `plans`,
/// `catalog` what the remote schema holds.
pub fn plan(
    catalog: &Catalog,
    db: &Db,
    plans: &mut [TablePlan],
    locals: &[&LocalTable],
    schema: &str,
) -> Result<()> {
    let mut taken = catalog.relations.clone();
    taken.extend(plans.iter().map(|p| p.name.clone()));
    // The primary key, added before the indexes, takes the name Postgres gives it.
    taken.extend(
        plans
            .iter()
            .filter(|p| p.create)
            .map(|p| format!("{}_pkey", p.name)),
    );
    let mut names = RemoteNames::new(taken);
    // Every created table's own rules first: a foreign key looks at its parent's unique keys.
    let mut read = Vec::new();
    for plan in plans.iter_mut().filter(|p| p.create) {
        let Some(local) = locals.iter().find(|l| l.name == plan.name) else {
            continue;
        };
        let local_read = local_rules::read(db, local)?;
        let mut rules = RemoteRules {
            not_null: local
                .columns
                .iter()
                .filter(|c| c.not_null)
                .map(|c| c.name.clone())
                .collect(),
            not_created: local_read.not_created.clone(),
            ..RemoteRules::default()
        };
        plan_columns(plan, &local_read, &mut names, &mut rules);
        plan.rules = rules;
        read.push((plan.name.clone(), local_read));
    }
    for (table, local_read) in &read {
        let child = plans
            .iter()
            .position(|p| &p.name == table)
            .expect("planned");
        for fk in &local_read.foreign_keys {
            match why_not_referenced(catalog, db, plans, &read, child, fk)? {
                Some(why) => plans[child]
                    .rules
                    .not_created
                    .push(format!("{}: {why}", shown(fk))),
                None => {
                    let columns: Vec<&str> = fk.columns.iter().map(String::as_str).collect();
                    let name = names.choose(None, table, &columns, "fkey");
                    let parent = format!("{}.{}", quote(schema), quote(&fk.parent));
                    let statement =
                        mapping::pg_foreign_key(&plans[child].remote, fk, &name, &parent);
                    plans[child]
                        .rules
                        .foreign_keys
                        .push((fk.parent.clone(), statement));
                }
            }
        }
    }
    Ok(())
}

/// The defaults the remote column types take exactly, and the indexes on exported columns.
fn plan_columns(
    plan: &TablePlan,
    read: &LocalRules,
    names: &mut RemoteNames,
    rules: &mut RemoteRules,
) {
    for (column, constant) in &read.defaults {
        let Some(planned) = plan.columns.iter().find(|c| &c.name == column) else {
            continue;
        };
        match constant.for_postgres(planned.ty) {
            Ok(expression) => rules.defaults.push((column.clone(), expression)),
            Err(why) => rules.not_created.push(format!("column {column}: {why}")),
        }
    }
    for index in &read.indexes {
        let columns = index.column_names();
        if let Some(missing) = columns
            .iter()
            .find(|c| !plan.columns.iter().any(|p| &p.name == *c))
        {
            rules.not_created.push(format!(
                "index on ({}): column {missing} is not exported (a generated column)",
                columns.join(", ")
            ));
            continue;
        }
        let distributed_by = plan.distribution.as_ref().and_then(|d| d.column());
        if let Some(column) = distributed_by.filter(|c| index.unique && !columns.contains(c)) {
            rules.not_created.push(format!(
                "unique index on ({}): Citus requires the distribution column {column} in every \
                 unique constraint",
                columns.join(", ")
            ));
            continue;
        }
        let suffix = if index.unique { "key" } else { "idx" };
        let name = names.choose(index.name.as_deref(), &plan.name, &columns, suffix);
        rules
            .indexes
            .push(mapping::pg_index(&plan.remote, index, &name));
    }
}

/// `FOREIGN KEY (a, b) REFERENCES parent (x, y)`, for notes.
fn shown(fk: &ForeignKey) -> String {
    format!(
        "FOREIGN KEY ({}) REFERENCES {} ({})",
        fk.columns.join(", "),
        fk.parent,
        fk.parent_columns.join(", ")
    )
}

/// Why the foreign key `fk` of the `child`th plan cannot be created remotely, `None` when it
/// can: its parent must be exported too, with a primary key or unique constraint on exactly the
/// referenced columns, of types Postgres compares with the child's, and every local child row
/// must have its parent (Postgres checks the rows already there when the key is added).
fn why_not_referenced(
    catalog: &Catalog,
    db: &Db,
    plans: &[TablePlan],
    read: &[(String, LocalRules)],
    child: usize,
    fk: &ForeignKey,
) -> Result<Option<String>> {
    let Some(parent) = plans.iter().find(|p| p.name == fk.parent) else {
        return Ok(Some("the referenced table is not in this export".into()));
    };
    for (column, parent_column) in fk.columns.iter().zip(&fk.parent_columns) {
        let ty = |plan: &TablePlan, name: &str| {
            plan.columns.iter().find(|c| c.name == name).map(|c| c.ty)
        };
        match (ty(&plans[child], column), ty(parent, parent_column)) {
            (Some(a), Some(b)) if comparable(a, b) => {}
            (Some(a), Some(b)) => {
                return Ok(Some(format!(
                    "column {column} is {} and {}.{parent_column} is {}",
                    a.sql(),
                    parent.name,
                    b.sql()
                )))
            }
            _ => return Ok(Some("a referenced column is not exported".into())),
        }
    }
    let referenced: Vec<&str> = fk.parent_columns.iter().map(String::as_str).collect();
    let keyed = if parent.create {
        let mut key: Vec<&str> = parent.key().map(|c| c.name.as_str()).collect();
        let mut wanted = referenced.clone();
        key.sort_unstable();
        wanted.sort_unstable();
        // The parent's unique indexes that the export creates (the others are notes).
        let created_unique = read
            .iter()
            .filter(|(t, _)| t == &parent.name)
            .flat_map(|(_, r)| r.indexes.iter().filter(|i| i.unique))
            .filter(|i| {
                i.columns
                    .iter()
                    .all(|c| parent.columns.iter().any(|p| p.name == c.name))
            });
        key == wanted
            || created_unique.into_iter().any(|i| {
                let mut columns = i.column_names();
                columns.sort_unstable();
                columns == wanted
            })
    } else {
        catalog.has_unique_key(&parent.remote, &referenced)
    };
    if !keyed {
        return Ok(Some(
            "the referenced columns are not the referenced table's primary key or a unique \
             constraint"
                .into(),
        ));
    }
    let orphans = local_rules::orphans(db, &plans[child].name, fk)?;
    Ok((orphans > 0).then(|| {
        format!(
            "{orphans} local rows reference no row of {} (PRAGMA foreign_key_check lists them)",
            fk.parent
        )
    }))
}

/// Whether Postgres compares the two types in a foreign key (one btree operator family).
fn comparable(a: PgType, b: PgType) -> bool {
    use PgType::*;
    let family = |t: PgType| match t {
        SmallInt | Integer | BigInt => 1,
        Text | Varchar(_) => 2,
        Numeric(_) => 3,
        Real | Double => 4,
        Timestamp(_) => 5,
        Timestamptz(_) => 6,
        _ => 0,
    };
    a == b || (family(a) != 0 && family(a) == family(b))
}

/// The statements that add the foreign keys of the tables the export created, once all are
/// loaded. In a dry run a table with problems is not created, and neither are the foreign keys
/// that reference it.
pub fn foreign_keys(plans: &[TablePlan]) -> Vec<Step> {
    let exported = |name: &str| {
        plans
            .iter()
            .any(|p| p.name == name && p.problems.is_empty())
    };
    let mut steps = Vec::new();
    for plan in plans.iter().filter(|p| p.create && p.problems.is_empty()) {
        for (parent, statement) in &plan.rules.foreign_keys {
            if exported(parent) {
                let what = "adding a foreign key failed";
                steps.push(Step::of_table(&plan.name, what, statement.clone()));
            }
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_keys_need_types_postgres_compares() {
        assert!(comparable(PgType::Integer, PgType::BigInt));
        assert!(comparable(PgType::Varchar(Some(10)), PgType::Text));
        assert!(comparable(PgType::Uuid, PgType::Uuid));
        assert!(!comparable(PgType::Text, PgType::BigInt));
        assert!(!comparable(PgType::Uuid, PgType::Text));
    }

    #[test]
    fn not_null_and_defaults_follow_the_type() {
        let rules = RemoteRules {
            not_null: vec!["name".into()],
            defaults: vec![("name".into(), "'new'".into()), ("n".into(), "0".into())],
            ..RemoteRules::default()
        };
        assert_eq!(rules.column_clause("name"), " NOT NULL DEFAULT 'new'");
        assert_eq!(rules.column_clause("n"), " DEFAULT 0");
        assert_eq!(rules.column_clause("other"), "");
    }
}
