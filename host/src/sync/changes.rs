//! Change detection: an entity whose body is exactly what Berth last wrote, and which Port
//! still holds, costs no Port call.
//!
//! Owns: the body hash (what makes two writes "the same") and the classification of an entity
//! as create / update / unchanged. Must not touch: the store or Port; callers look up the last
//! hash and Port's owned set and pass them in.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::port::UpsertOptions;

/// What a push will do with one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Port does not hold it for this integration: it will be written.
    Create,
    /// Port holds it but the body differs from the last write (or Berth never wrote it).
    Update,
    /// Same body as the last write, and Port still holds it: no call.
    Unchanged,
}

/// The hash of one upsert: the entity body as sent, plus the flags that change how Port
/// applies it (the same body merged or replaced is a different write).
pub fn body_hash(entity: &Value, opts: UpsertOptions) -> String {
    let mut h = Sha256::new();
    h.update([
        u8::from(opts.merge),
        u8::from(opts.create_missing_related_entities),
    ]);
    // serde_json writes objects in insertion order, which the mapping fixes; a change of
    // mapping order costs one rewrite, never a missed change.
    h.update(serde_json::to_vec(entity).unwrap_or_default());
    hex::encode(&h.finalize()[..16])
}

/// Classifies an entity. `in_port`: Port lists it among this integration's entities (`None`
/// when that list could not be read, so only the store is trusted); `last_hash`: the store's.
pub fn classify(hash: &str, last_hash: Option<&str>, in_port: Option<bool>) -> Change {
    match (in_port, last_hash) {
        (Some(false), _) => Change::Create,
        (None, None) => Change::Create,
        (_, Some(last)) if last == hash => Change::Unchanged,
        _ => Change::Update,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_sees_body_and_flags() {
        let e = json!({"identifier": "a", "properties": {"x": 1}});
        let o = UpsertOptions::default();
        assert_eq!(body_hash(&e, o), body_hash(&e.clone(), o));
        assert_ne!(
            body_hash(&e, o),
            body_hash(&json!({"identifier": "a", "properties": {"x": 2}}), o)
        );
        let merged = UpsertOptions { merge: true, ..o };
        assert_ne!(body_hash(&e, o), body_hash(&e, merged));
    }

    #[test]
    fn classification() {
        assert_eq!(classify("h", Some("h"), Some(true)), Change::Unchanged);
        // Deleted in Port behind Berth's back: written again although the hash matches.
        assert_eq!(classify("h", Some("h"), Some(false)), Change::Create);
        assert_eq!(classify("h", Some("g"), Some(true)), Change::Update);
        // Owned in Port but never written by this store (adopted from Ocean).
        assert_eq!(classify("h", None, Some(true)), Change::Update);
        assert_eq!(classify("h", Some("h"), None), Change::Unchanged);
        assert_eq!(classify("h", None, None), Change::Create);
    }
}
