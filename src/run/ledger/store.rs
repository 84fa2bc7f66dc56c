//! Where ledgers live: the compare-and-swap contract both stores keep.

use super::{Ledger, LedgerError};

/// A store's version of the record, for optimistic concurrency: a ConfigMap's
/// `resourceVersion`, or the counter inside a state file. Opaque to everyone else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revision(pub String);

/// A record as loaded, with the revision to write over.
#[derive(Clone, Debug)]
pub struct Stored {
    pub ledger: Ledger,
    pub revision: Revision,
}

/// A record read only to be shown (`--history`), never to be written back: one written
/// by a newer version is read as far as this one understands it, and `note` says so.
#[derive(Clone, Debug)]
pub struct ForShowing {
    pub ledger: Ledger,
    pub note: Option<String>,
}

/// Writes are compare-and-swap: `expected` None means "create, it must not exist yet",
/// Some means "replace, it must still be at that revision"; otherwise
/// [`LedgerError::Conflict`].
pub trait LedgerStore: std::fmt::Debug + Send + Sync {
    fn release(&self) -> &str;
    fn namespace(&self) -> &str;
    /// Where the record lives, in words: "ConfigMap x in namespace y", or a path.
    fn location(&self) -> String;
    /// The record, or None if this release has none yet.
    fn load(&self) -> Result<Option<Stored>, LedgerError>;
    /// The record to show, or None if this release has none: like [`LedgerStore::load`],
    /// except that a newer schema is read as far as understood
    /// ([`Ledger::from_json_for_reading`]) instead of refused. Writes nothing.
    fn load_for_showing(&self) -> Result<Option<ForShowing>, LedgerError>;
    fn write(&self, ledger: &Ledger, expected: Option<&Revision>) -> Result<Revision, LedgerError>;
}
