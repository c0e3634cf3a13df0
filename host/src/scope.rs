//! Scopes: the unit of discovery completeness, which decides what may be deleted. A scope is
//! one (account, region, kind) that discovery either finished, was denied, or failed;
//! entities that were not mapped from a raw item (a file of entities pushed by hand) belong to
//! a scope named after their blueprint.
//!
//! A failure that happens before discovery knows which scopes it would have read is a
//! *wildcard* scope: `account/*/*` (the account's role could not be assumed, its regions could
//! not be listed, its discovery task panicked) or `account/*/kind` (a global kind's task
//! panicked). A wildcard that did not complete covers every scope of its account (and kind),
//! also those this sync read completely: what an account could not enumerate may be anywhere in
//! it, so nothing of that account (and kind) is deleted; and since it is not complete, an
//! entity of no known scope is kept too.
//!
//! Owns: [`ScopeKey`] and its text form (kept in the state store), the [`Place`] a key's
//! lookups run in ([`ScopeKey::place`]), [`ScopeStatus`] with its reason and label, and the
//! [`ScopeBook`] of one sync. One type each for discovery (`discovery::discover`), the
//! pipeline (`pipeline::resync`) and the catalog side (`catalog`): two copies of a scope would
//! drift apart. Must not touch: how a scope's status is found out (discovery's job), what is
//! deleted (`catalog::reconcile`), or how the scopes file is read (`catalog::input`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Where calls run: an account and a region. A scope ([`ScopeKey`]) adds a kind and is what
/// completeness is tracked for; a place is only where calls run, and a scope gives its own
/// ([`ScopeKey::place`]). A batch is mapped, and its plugins' lookups answered, in its items'
/// place (`crate::plugin::lookup`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Place {
    pub account_id: String,
    pub region: String,
}

/// Where entities came from. In a push envelope it is `{"account", "region", "kind"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScopeKey {
    #[serde(rename = "account")]
    pub account_id: String,
    pub region: String,
    pub kind: String,
}

impl ScopeKey {
    pub fn new(
        account_id: impl Into<String>,
        region: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        Self {
            account_id: account_id.into(),
            region: region.into(),
            kind: kind.into(),
        }
    }

    /// The scope of `kind` in `place`: a mapped batch's, whose items all share both.
    pub fn at(place: &Place, kind: impl Into<String>) -> Self {
        Self::new(&place.account_id, &place.region, kind)
    }

    /// Where the plugins' lookups for this scope's items run: its account and region.
    pub fn place(&self) -> Place {
        Place {
            account_id: self.account_id.clone(),
            region: self.region.clone(),
        }
    }

    /// Everything of one account this sync could not enumerate (see the module doc).
    pub fn account_wide(account_id: impl Into<String>) -> Self {
        Self::new(account_id, "*", "*")
    }

    /// Every region of one (account, kind) this sync could not enumerate.
    pub fn kind_wide(account_id: impl Into<String>, kind: impl Into<String>) -> Self {
        Self::new(account_id, "*", kind)
    }

    /// The scope of entities that carry none: everything of one blueprint in the input.
    pub fn unscoped(blueprint: &str) -> Self {
        Self::new("*", "*", format!("blueprint:{blueprint}"))
    }

    /// The text form stored with each entity's state (`account/region/kind`), also how logs,
    /// failpoints and the terminal summary name a scope. Kinds contain `::` but never `/`, so
    /// the form reads back unambiguously.
    pub fn to_text(&self) -> String {
        format!("{}/{}/{}", self.account_id, self.region, self.kind)
    }

    /// Reads back [`ScopeKey::to_text`]; `None` for text not of that form.
    pub fn from_text(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '/');
        Some(Self::new(parts.next()?, parts.next()?, parts.next()?))
    }
}

/// The prose form, for `berth push`'s report; [`ScopeKey::to_text`] is the compact one.
impl fmt::Display for ScopeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in account {} region {}",
            self.kind, self.account_id, self.region
        )
    }
}

/// The reason of a scope that was read in full but some of whose entities failed to map or
/// load: its output is as incomplete as if it had not been read.
pub const ENTITIES_FAILED: &str = "some of its entities failed to map or load";

/// How a scope ended; an incomplete one says why, so reports can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeStatus {
    /// Every page was read and every item emitted: what is not in it is gone.
    Complete,
    /// AWS refused access: what was read is correct but says nothing about what else exists.
    Denied(String),
    /// Discovery (or mapping, or loading) failed part-way, after retries.
    Failed(String),
}

impl ScopeStatus {
    /// The status as the scopes file and every report spell it.
    pub fn label(&self) -> &'static str {
        match self {
            ScopeStatus::Complete => "complete",
            ScopeStatus::Denied(_) => "denied",
            ScopeStatus::Failed(_) => "failed",
        }
    }

    /// Reads [`ScopeStatus::label`] back, with the reason an incomplete status keeps; `None`
    /// for any other label.
    pub fn from_label(label: &str, reason: impl Into<String>) -> Option<Self> {
        match label {
            "complete" => Some(ScopeStatus::Complete),
            "denied" => Some(ScopeStatus::Denied(reason.into())),
            "failed" => Some(ScopeStatus::Failed(reason.into())),
            _ => None,
        }
    }

    /// Why the scope is incomplete; `None` when it is complete.
    pub fn reason(&self) -> Option<&str> {
        match self {
            ScopeStatus::Complete => None,
            ScopeStatus::Denied(why) | ScopeStatus::Failed(why) => Some(why),
        }
    }

    pub fn is_complete(&self) -> bool {
        *self == ScopeStatus::Complete
    }
}

/// The scopes of one sync and how each ended.
#[derive(Debug, Default, Clone)]
pub struct ScopeBook {
    scopes: BTreeMap<String, (ScopeKey, ScopeStatus)>,
}

impl ScopeBook {
    /// Sets a scope's status; a scope that failed or was denied stays so, with its first
    /// reason (a later "complete" for the same scope does not undo a failure).
    pub fn set(&mut self, key: &ScopeKey, status: ScopeStatus) {
        match self.scopes.get_mut(&key.to_text()) {
            Some(entry) if entry.1.is_complete() => entry.1 = status,
            Some(_) => {}
            None => {
                self.scopes.insert(key.to_text(), (key.clone(), status));
            }
        }
    }

    /// Registers a scope as complete unless it is already known.
    pub fn note(&mut self, key: &ScopeKey) {
        self.scopes
            .entry(key.to_text())
            .or_insert_with(|| (key.clone(), ScopeStatus::Complete));
    }

    /// Marks a scope failed (e.g. one of its entities could not be mapped or loaded), also one
    /// that was denied: its own output is incomplete whatever AWS allowed. A scope that had
    /// already failed keeps its first reason.
    pub fn fail(&mut self, key: &ScopeKey, why: impl Into<String>) {
        let failed = ScopeStatus::Failed(why.into());
        match self.scopes.get_mut(&key.to_text()) {
            Some(entry) if matches!(entry.1, ScopeStatus::Failed(_)) => {}
            Some(entry) => entry.1 = failed,
            None => {
                self.scopes.insert(key.to_text(), (key.clone(), failed));
            }
        }
    }

    /// The status of a scope by its text form: an incomplete wildcard that covers it
    /// (`account/*/kind`, `account/*/*`) wins over its own record; `None` when this sync did
    /// not cover it.
    pub fn status_of(&self, text: &str) -> Option<&ScopeStatus> {
        let own = self.scopes.get(text).map(|(_, s)| s);
        let Some(key) = ScopeKey::from_text(text) else {
            return own;
        };
        let covering = [
            ScopeKey::kind_wide(&key.account_id, &key.kind),
            ScopeKey::account_wide(&key.account_id),
        ]
        .map(|w| w.to_text());
        let wildcard = covering
            .iter()
            .filter(|w| w.as_str() != text)
            .filter_map(|w| self.scopes.get(w).map(|(_, s)| s))
            .find(|s| !s.is_complete());
        wildcard.or(own)
    }

    /// True when the sync covered at least one scope and every one completed.
    pub fn all_complete(&self) -> bool {
        !self.scopes.is_empty() && self.scopes.values().all(|(_, s)| s.is_complete())
    }

    /// Scopes that did not complete.
    pub fn incomplete(&self) -> impl Iterator<Item = (&ScopeKey, &ScopeStatus)> {
        self.scopes
            .values()
            .filter(|(_, s)| !s.is_complete())
            .map(|(k, s)| (k, s))
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

    fn denied(why: &str) -> ScopeStatus {
        ScopeStatus::Denied(why.into())
    }

    fn failed(why: &str) -> ScopeStatus {
        ScopeStatus::Failed(why.into())
    }

    #[test]
    fn failure_is_sticky_and_keeps_its_first_reason() {
        let k = ScopeKey::new("1", "eu-west-1", "AWS::S3::Bucket");
        let mut b = ScopeBook::default();
        b.note(&k);
        assert!(b.all_complete());
        b.set(&k, denied("AccessDenied"));
        b.set(&k, ScopeStatus::Complete);
        b.set(&k, failed("later"));
        assert_eq!(b.status_of(&k.to_text()), Some(&denied("AccessDenied")));
        b.fail(&k, "an item failed to map");
        assert_eq!(
            b.status_of(&k.to_text()),
            Some(&failed("an item failed to map"))
        );
        b.fail(&k, "another");
        assert_eq!(
            b.status_of(&k.to_text()).and_then(ScopeStatus::reason),
            Some("an item failed to map")
        );
        b.fail(&ScopeKey::new("2", "r", "K"), "never noted");
        assert_eq!(b.status_of("2/r/K"), Some(&failed("never noted")));
        assert_eq!(b.incomplete().count(), 2);
        assert!(!b.all_complete());
        assert!(!ScopeBook::default().all_complete());
    }

    #[test]
    fn text_forms_read_back_and_the_place_has_no_kind() {
        let k = ScopeKey::new("1", "eu-west-1", "AWS::S3::Bucket");
        assert_eq!(k.to_text(), "1/eu-west-1/AWS::S3::Bucket");
        assert_eq!(
            k.to_string(),
            "AWS::S3::Bucket in account 1 region eu-west-1"
        );
        assert_eq!(ScopeKey::from_text(&k.to_text()), Some(k.clone()));
        assert_eq!(ScopeKey::from_text("1/eu-west-1"), None);
        let place = k.place();
        assert_eq!(
            (place.account_id.as_str(), place.region.as_str()),
            ("1", "eu-west-1")
        );
        assert_eq!(ScopeKey::at(&place, "AWS::S3::Bucket"), k);
        // The push envelope spells the account `account`.
        let json = serde_json::to_value(&k).unwrap();
        assert_eq!(json["account"], "1");
        let back: ScopeKey = serde_json::from_value(json).unwrap();
        assert_eq!(back, k);
    }

    #[test]
    fn labels_read_back_with_their_reason() {
        for s in [ScopeStatus::Complete, denied("why"), failed("why")] {
            assert_eq!(ScopeStatus::from_label(s.label(), "why"), Some(s.clone()));
        }
        assert_eq!(ScopeStatus::from_label("gone", "why"), None);
        assert_eq!(ScopeStatus::Complete.reason(), None);
        assert_eq!(denied("AccessDenied").reason(), Some("AccessDenied"));
    }

    #[test]
    fn incomplete_wildcards_cover_every_scope_of_their_account() {
        let mut b = ScopeBook::default();
        let read = ScopeKey::new("1", "us-east-1", "K");
        b.note(&read);
        b.set(&ScopeKey::account_wide("1"), failed("no regions"));
        b.set(&ScopeKey::kind_wide("2", "G"), denied("no IAM"));
        // Even a region that was read completely: the account's resources may be anywhere.
        assert_eq!(b.status_of(&read.to_text()), Some(&failed("no regions")));
        assert_eq!(b.status_of("1/af-south-1/K"), Some(&failed("no regions")));
        let other = ScopeKey::new("3", "us-east-1", "K");
        b.note(&other);
        assert_eq!(b.status_of(&other.to_text()), Some(&ScopeStatus::Complete));
        assert_eq!(b.status_of("2/eu-west-1/G"), Some(&denied("no IAM")));
        assert_eq!(b.status_of("2/eu-west-1/K"), None);
        assert_eq!(b.status_of("3/eu-west-1/K"), None);
        assert!(!b.all_complete());
    }
}
