//! Scopes: the unit of completeness. A scope is one (account, region, kind) that discovery
//! either finished, was denied, or failed; entities that were not mapped from a raw item (a file
//! of entities pushed by hand) belong to a scope named after their blueprint.
//!
//! A failure that happens before discovery knows which scopes it would have read is a
//! *wildcard* scope: `account/*/*` (the account's role could not be assumed, its regions could
//! not be listed, its discovery task panicked) or `account/*/kind` (a global kind's task
//! panicked). A wildcard that did not complete covers every scope of its account (and kind),
//! also those this sync read completely: what an account could not enumerate may be anywhere in
//! it, so nothing of that account (and kind) is deleted; and since it is not complete, an
//! entity of no known scope is kept too.
//!
//! Owns: [`ScopeKey`] and its text form (kept in the state store), [`ScopeStatus`] and the
//! [`ScopeBook`] of one sync. Must not touch: how a scope's status is found out (discovery's
//! job) or what is deleted (`reconcile`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Where entities came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScopeKey {
    pub account: String,
    pub region: String,
    pub kind: String,
}

impl ScopeKey {
    pub fn new(
        account: impl Into<String>,
        region: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        Self {
            account: account.into(),
            region: region.into(),
            kind: kind.into(),
        }
    }

    /// Everything of one account this sync could not enumerate (see the module doc).
    pub fn account_wide(account: impl Into<String>) -> Self {
        Self::new(account, "*", "*")
    }

    /// Every region of one (account, kind) this sync could not enumerate.
    pub fn kind_wide(account: impl Into<String>, kind: impl Into<String>) -> Self {
        Self::new(account, "*", kind)
    }

    /// The scope of entities that carry none: everything of one blueprint in the input.
    pub fn unscoped(blueprint: &str) -> Self {
        Self::new("*", "*", format!("blueprint:{blueprint}"))
    }

    /// The text form stored with each entity's state (`account/region/kind`). Kinds contain
    /// `::` but never `/`, so the form reads back unambiguously.
    pub fn to_text(&self) -> String {
        format!("{}/{}/{}", self.account, self.region, self.kind)
    }

    /// Reads back [`ScopeKey::to_text`]; `None` for text not of that form.
    pub fn from_text(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '/');
        Some(Self::new(parts.next()?, parts.next()?, parts.next()?))
    }
}

impl fmt::Display for ScopeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in account {} region {}",
            self.kind, self.account, self.region
        )
    }
}

/// How discovery of a scope ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeStatus {
    /// Every page was read: what is not in it is gone.
    Complete,
    /// AWS refused access: says nothing about what exists.
    Denied,
    /// Discovery (or mapping, or loading) failed part-way.
    Failed,
}

/// The scopes of one sync and how each ended.
#[derive(Debug, Default, Clone)]
pub struct ScopeBook {
    scopes: BTreeMap<String, (ScopeKey, ScopeStatus)>,
}

impl ScopeBook {
    /// Sets a scope's status; a scope that failed or was denied stays so (a later "complete"
    /// for the same scope does not undo a failure).
    pub fn set(&mut self, key: &ScopeKey, status: ScopeStatus) {
        let entry = self
            .scopes
            .entry(key.to_text())
            .or_insert_with(|| (key.clone(), status));
        if entry.1 == ScopeStatus::Complete {
            entry.1 = status;
        }
    }

    /// Registers a scope as complete unless it is already known.
    pub fn note(&mut self, key: &ScopeKey) {
        self.scopes
            .entry(key.to_text())
            .or_insert_with(|| (key.clone(), ScopeStatus::Complete));
    }

    /// Marks a scope failed (e.g. one of its entities could not be mapped or loaded).
    pub fn fail(&mut self, key: &ScopeKey) {
        self.set(key, ScopeStatus::Failed);
        if let Some(e) = self.scopes.get_mut(&key.to_text()) {
            e.1 = ScopeStatus::Failed;
        }
    }

    /// The status of a scope by its text form: an incomplete wildcard that covers it
    /// (`account/*/kind`, `account/*/*`) wins over its own record; `None` when this sync did
    /// not cover it.
    pub fn status_of(&self, text: &str) -> Option<ScopeStatus> {
        let own = self.scopes.get(text).map(|(_, s)| *s);
        let Some(key) = ScopeKey::from_text(text) else {
            return own;
        };
        let covering = [
            ScopeKey::kind_wide(&key.account, &key.kind),
            ScopeKey::account_wide(&key.account),
        ]
        .map(|w| w.to_text());
        let wildcard = covering
            .iter()
            .filter(|w| w.as_str() != text)
            .filter_map(|w| self.scopes.get(w).map(|(_, s)| *s))
            .find(|s| *s != ScopeStatus::Complete);
        wildcard.or(own)
    }

    /// True when the sync covered at least one scope and every one completed.
    pub fn all_complete(&self) -> bool {
        !self.scopes.is_empty()
            && self
                .scopes
                .values()
                .all(|(_, s)| *s == ScopeStatus::Complete)
    }

    /// Scopes that did not complete.
    pub fn incomplete(&self) -> impl Iterator<Item = (&ScopeKey, ScopeStatus)> {
        self.scopes
            .values()
            .filter(|(_, s)| *s != ScopeStatus::Complete)
            .map(|(k, s)| (k, *s))
    }

    pub fn len(&self) -> usize {
        self.scopes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_is_sticky() {
        let k = ScopeKey::new("1", "eu-west-1", "AWS::S3::Bucket");
        let mut b = ScopeBook::default();
        b.note(&k);
        assert!(b.all_complete());
        b.set(&k, ScopeStatus::Denied);
        b.set(&k, ScopeStatus::Complete);
        assert_eq!(b.status_of(&k.to_text()), Some(ScopeStatus::Denied));
        b.fail(&k);
        assert_eq!(b.status_of(&k.to_text()), Some(ScopeStatus::Failed));
        assert!(!b.all_complete());
        assert!(!ScopeBook::default().all_complete());
        assert_eq!(k.to_text(), "1/eu-west-1/AWS::S3::Bucket");
        assert_eq!(ScopeKey::from_text(&k.to_text()), Some(k));
        assert_eq!(ScopeKey::from_text("1/eu-west-1"), None);
    }

    #[test]
    fn incomplete_wildcards_cover_every_scope_of_their_account() {
        let mut b = ScopeBook::default();
        let read = ScopeKey::new("1", "us-east-1", "K");
        b.note(&read);
        b.set(&ScopeKey::account_wide("1"), ScopeStatus::Failed);
        b.set(&ScopeKey::kind_wide("2", "G"), ScopeStatus::Denied);
        // Even a region that was read completely: the account's resources may be anywhere.
        assert_eq!(b.status_of(&read.to_text()), Some(ScopeStatus::Failed));
        assert_eq!(b.status_of("1/af-south-1/K"), Some(ScopeStatus::Failed));
        let other = ScopeKey::new("3", "us-east-1", "K");
        b.note(&other);
        assert_eq!(b.status_of(&other.to_text()), Some(ScopeStatus::Complete));
        assert_eq!(b.status_of("2/eu-west-1/G"), Some(ScopeStatus::Denied));
        assert_eq!(b.status_of("2/eu-west-1/K"), None);
        assert_eq!(b.status_of("3/eu-west-1/K"), None);
        assert!(!b.all_complete());
    }
}
