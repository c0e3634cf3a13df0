//! Change detection: an entity whose body is exactly what Berth last wrote, and which Port
//! still holds, costs no Port call.
//!
//! Owns: the body hash (what makes two writes "the same") and the classification of an entity
//! as create / update / unchanged. Must not touch: the store or Port; callers look up the last
//! hash and Port's owned set and pass them in.

use sha2::{Digest, Sha256};

use crate::catalog::port::{Entity, UpsertOptions};

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

/// The hash of one upsert: the flags that change how Port applies it (the same body merged or
/// replaced is a different write), the blueprint it goes to, and the body bytes exactly as
/// sent.
///
/// The body is hashed as the plugin produced it, never re-serialised: the same mapping on the
/// same item gives the same bytes, and a Berth or plugin upgrade that changes key order or
/// number formatting costs one rewrite of the entities it touches, never a missed change.
pub fn body_hash(entity: &Entity, opts: UpsertOptions) -> String {
    let mut h = Sha256::new();
    h.update([
        u8::from(opts.merge),
        u8::from(opts.create_missing_related_entities),
    ]);
    // Length-prefixed, so no blueprint and body pair can run into another's bytes.
    h.update((entity.blueprint.len() as u64).to_le_bytes());
    h.update(entity.blueprint.as_bytes());
    h.update(entity.body.as_bytes());
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

    fn entity(blueprint: &str, body: &str) -> Entity {
        Entity {
            blueprint: blueprint.into(),
            identifier: "a".into(),
            relation_targets: Vec::new(),
            body: body.into(),
        }
    }

    #[test]
    fn hash_sees_body_blueprint_and_flags() {
        let e = entity("svc", r#"{"identifier":"a","properties":{"x":1}}"#);
        let o = UpsertOptions::default();
        assert_eq!(body_hash(&e, o), body_hash(&e.clone(), o));
        assert_ne!(
            body_hash(&e, o),
            body_hash(
                &entity("svc", r#"{"identifier":"a","properties":{"x":2}}"#),
                o
            )
        );
        assert_ne!(body_hash(&e, o), body_hash(&entity("other", &e.body), o));
        // The boundary between blueprint and body counts.
        assert_ne!(
            body_hash(&entity("ab", "{}"), o),
            body_hash(&entity("a", "b{}"), o)
        );
        let merged = UpsertOptions { merge: true, ..o };
        assert_ne!(body_hash(&e, o), body_hash(&e, merged));
        let missing = UpsertOptions {
            create_missing_related_entities: true,
            ..o
        };
        assert_ne!(body_hash(&e, o), body_hash(&e, missing));
    }

    #[test]
    fn hash_is_of_the_bytes_and_ignores_what_the_body_does_not_carry() {
        let e = entity("svc", r#"{"identifier":"a","title":"t"}"#);
        let o = UpsertOptions::default();
        // Relation targets and the identifier are read from the body; they add nothing.
        let mut same = e.clone();
        same.relation_targets = vec!["x".into()];
        same.identifier = "other".into();
        assert_eq!(body_hash(&e, o), body_hash(&same, o));
        // Reordered keys are another write (one rewrite), not the same one.
        let reordered = entity("svc", r#"{"title":"t","identifier":"a"}"#);
        assert_ne!(body_hash(&e, o), body_hash(&reordered, o));
        // Pinned: a change here changes every stored hash, so every entity is rewritten once.
        assert_eq!(body_hash(&e, o), "e332362244f75f4f6e0e9a447d879a80");
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
