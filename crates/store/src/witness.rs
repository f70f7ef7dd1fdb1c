//! Writes witnessed before they commit: the audit trail.
//!
//! A service that must not store a change unless it is also audited runs
//! the write inside [`witnessed`]. Every write that creates, updates or
//! deletes then calls the [`Witness`] inside its own transaction, after
//! writing and before committing, with what it wrote. The witness either
//! hands back resources to write in that same transaction (an AuditEvent,
//! when the audit trail is in this store) or records elsewhere and hands
//! back nothing. When the witness fails, the write is rolled back: a change
//! is never stored unaudited.
//!
//! Not witnessed: a replayed idempotent write and a conditional create that
//! found a match (they store nothing new), and writes outside [`witnessed`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use corridor_fhir::Validated;

use crate::{Store, StoreError, Stored, Tx};

/// A future returned by [`Witness::witness`].
pub type Witnessing<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Validated>, StoreError>> + Send + 'a>>;

/// Sees each write before it commits; see the module docs.
pub trait Witness: Send + Sync {
    /// `written` is about to commit. Resources returned are created in the
    /// same transaction; an error rolls the write back.
    fn witness<'a>(&'a self, written: &'a [Stored]) -> Witnessing<'a>;
}

tokio::task_local! {
    static WITNESS: Arc<dyn Witness>;
}

/// Run `future` with its writes witnessed by `witness`.
pub async fn witnessed<F: Future>(witness: Arc<dyn Witness>, future: F) -> F::Output {
    WITNESS.scope(witness, future).await
}

impl Store {
    /// Let the current witness, if any, see `written` inside `tx`, and
    /// write what it hands back there too.
    pub(crate) async fn witness_in(
        &self,
        tx: &mut Tx,
        written: &[Stored],
    ) -> Result<(), StoreError> {
        if written.is_empty() {
            return Ok(());
        }
        let Ok(witness) = WITNESS.try_with(Arc::clone) else {
            return Ok(());
        };
        for resource in witness.witness(written).await? {
            let def = self.def(&resource.resource_type)?;
            let id = uuid::Uuid::new_v4().to_string();
            self.write_version(tx, def, &id, None, Some(&resource.object), "create")
                .await?;
        }
        Ok(())
    }
}
