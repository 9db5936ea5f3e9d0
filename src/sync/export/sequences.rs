//! Moving the remote's serial and identity sequences past the exported keys, so the remote's own
//! inserts do not collide with them.

use postgres::types::Type;
use postgres::Transaction;

use super::plan::TablePlan;
use super::sql;
use super::transaction::failed;
use crate::error::Result;

/// Moves the sequence of every key column that has one. Never moves a sequence backwards.
pub fn advance(tx: &mut Transaction, plan: &TablePlan) -> Result<()> {
    for column in plan.key() {
        let sequence: Option<String> = tx
            .query_typed_one(
                sql::SERIAL_SEQUENCE,
                &[(&plan.remote, Type::TEXT), (&column.name, Type::TEXT)],
            )
            .map_err(|e| failed(&plan.name, "sequence lookup failed", &e))?
            .get(0);
        if let Some(sequence) = sequence {
            tx.query_typed(
                &sql::advance_sequence(&plan.remote, &column.name),
                &[(&sequence, Type::TEXT)],
            )
            .map_err(|e| {
                failed(
                    &plan.name,
                    &format!("moving sequence {sequence} failed"),
                    &e,
                )
            })?;
        }
    }
    Ok(())
}
