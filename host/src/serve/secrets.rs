//! Encryption at rest of tenant documents (their secrets inside) with AES-256-GCM.
//!
//! The key comes from the environment (`serve.secretKeyEnv`, default `BERTH_SECRET_KEY`: 32
//! bytes, base64), never from the config file or the database, so a copy of the database alone
//! reveals no secret. Every seal uses a fresh random 96-bit nonce; the tenant id is bound as
//! associated data, so a sealed document moved to another tenant's row does not open.
//!
//! Owns: [`SecretKey`] (seal/open). Must not touch: what is sealed, or where it is stored.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// Prefix of a sealed value: algorithm and format version, so the format can change later.
const PREFIX: &str = "berth-aes256gcm-v1:";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "secret key: environment variable {0} is not set (32 random bytes, base64: `openssl rand -base64 32`)"
    )]
    Missing(String),
    #[error("secret key in {0}: must be 32 bytes, base64-encoded")]
    BadKey(String),
    #[error("a sealed value cannot be opened (wrong key, or the data was altered)")]
    Open,
}

/// The key tenant documents are sealed with.
pub struct SecretKey {
    key: LessSafeKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    /// Reads the key from environment variable `var`.
    pub fn from_env(var: &str) -> Result<Self, SecretError> {
        let text = std::env::var(var).map_err(|_| SecretError::Missing(var.into()))?;
        Self::from_base64(text.trim()).map_err(|_| SecretError::BadKey(var.into()))
    }

    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = B64
            .decode(text)
            .map_err(|_| SecretError::BadKey("key".into()))?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() != 32 {
            return Err(SecretError::BadKey("key".into()));
        }
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SecretError::BadKey("key".into()))?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Seals `plaintext`, bound to `context` (e.g. the tenant id).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the system random generator failed");
        let mut data = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut data,
            )
            .expect("AES-GCM sealing cannot fail for in-memory data");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// Opens what [`seal`](Self::seal) made with the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .ok_or(SecretError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Open);
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Open)?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| SecretError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_bytes(&[b; 32]).unwrap()
    }

    #[test]
    fn round_trip_and_nothing_readable() {
        let k = key(7);
        let sealed = k.seal("acme", b"{\"clientSecret\":\"hunter2\"}");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            k.open("acme", &sealed).unwrap(),
            b"{\"clientSecret\":\"hunter2\"}"
        );
        // A fresh nonce each time.
        assert_ne!(sealed, k.seal("acme", b"{\"clientSecret\":\"hunter2\"}"));
    }

    #[test]
    fn wrong_key_context_or_tampering_fail() {
        let sealed = key(1).seal("acme", b"secret");
        assert_eq!(key(2).open("acme", &sealed), Err(SecretError::Open));
        assert_eq!(key(1).open("other", &sealed), Err(SecretError::Open));
        let mut raw = B64.decode(sealed.strip_prefix(PREFIX).unwrap()).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("{PREFIX}{}", B64.encode(raw));
        assert_eq!(key(1).open("acme", &tampered), Err(SecretError::Open));
        assert_eq!(key(1).open("acme", "garbage"), Err(SecretError::Open));
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let e = SecretKey::from_base64("c2hvcnQ=").unwrap_err();
        assert!(!e.to_string().contains("c2hvcnQ"));
        assert!(SecretKey::from_env("BERTH_TEST_UNSET_KEY_VAR").is_err());
        assert_eq!(format!("{:?}", key(3)), "SecretKey(***)");
    }
}
