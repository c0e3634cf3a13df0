//! The signing keys of `berth serve`'s OIDC issuer (`serve::identity`), shared by every worker
//! on one database so that they all publish the same JWKS and sign with the same key.
//!
//! A key is a row numbered by its *generation*: the first key is generation 1 and each rotation
//! inserts the next number. Two workers rotating at the same moment both try to insert the same
//! generation; the primary key lets exactly one win, and the loser reads the winner's key.
//! Private keys arrive already sealed; this module never sees one in the clear.
//!
//! Owns: the `berth_signing_key` table's statements. Must not touch: key material, the
//! rotation schedule or tokens.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, sql};

/// One signing key as stored. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    pub generation: i64,
    /// The JWK `kid` (the key's RFC 7638 thumbprint).
    pub kid: String,
    /// The JWS `alg` it signs with.
    pub algorithm: String,
    /// The PKCS#8 private key, sealed with the serve secret key and bound to the `kid`.
    pub sealed: String,
    /// The public key as a JWK (JSON text), as published.
    pub public_jwk: String,
    /// In the JWKS from this instant.
    pub published_at: i64,
    /// Signs tokens from this instant (until the next generation takes over).
    pub signs_from: i64,
}

fn key_from_row(row: &AnyRow) -> Result<SigningKeyRow, sqlx::Error> {
    Ok(SigningKeyRow {
        generation: row.try_get("generation")?,
        kid: row.try_get("kid")?,
        algorithm: row.try_get("algorithm")?,
        sealed: row.try_get("sealed")?,
        public_jwk: row.try_get("public_jwk")?,
        published_at: row.try_get("published_at")?,
        signs_from: row.try_get("signs_from")?,
    })
}

impl Store {
    /// Every signing key, oldest generation first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT generation, kid, algorithm, sealed, public_jwk, published_at, signs_from
             FROM berth_signing_key ORDER BY generation",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sql("read signing keys"))?;
        rows.iter()
            .map(key_from_row)
            .collect::<Result<_, _>>()
            .map_err(sql("read signing keys"))
    }

    /// Inserts `key` unless its generation exists already (another worker rotated first);
    /// true when this call inserted it.
    pub async fn insert_signing_key(&self, key: &SigningKeyRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO berth_signing_key
             (generation, kid, algorithm, sealed, public_jwk, published_at, signs_from)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (generation) DO NOTHING",
        )
        .bind(key.generation)
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.sealed)
        .bind(&key.public_jwk)
        .bind(key.published_at)
        .bind(key.signs_from)
        .execute(&self.pool)
        .await
        .map_err(sql("write a signing key"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes the keys of generations below `generation` (retired: every token they signed
    /// has expired).
    pub async fn delete_signing_keys_before(&self, generation: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM berth_signing_key WHERE generation < $1")
            .bind(generation)
            .execute(&self.pool)
            .await
            .map_err(sql("delete retired signing keys"))?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(generation: i64, kid: &str) -> SigningKeyRow {
        SigningKeyRow {
            generation,
            kid: kid.into(),
            algorithm: "ES256".into(),
            sealed: format!("sealed-{kid}"),
            public_jwk: "{}".into(),
            published_at: generation * 10,
            signs_from: generation * 10 + 5,
        }
    }

    #[tokio::test]
    async fn one_winner_per_generation_and_retired_keys_go() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
        let store = Store::open(&url).await.unwrap();
        assert!(store.signing_keys().await.unwrap().is_empty());
        assert!(store.insert_signing_key(&row(1, "a")).await.unwrap());
        // A second worker rotating to the same generation loses and keeps the winner's key.
        assert!(!store.insert_signing_key(&row(1, "b")).await.unwrap());
        assert!(store.insert_signing_key(&row(2, "c")).await.unwrap());
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys, vec![row(1, "a"), row(2, "c")]);
        assert_eq!(store.delete_signing_keys_before(2).await.unwrap(), 1);
        assert_eq!(store.signing_keys().await.unwrap(), vec![row(2, "c")]);
    }
}
