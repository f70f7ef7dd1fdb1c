//! The registry of partner systems that obtain access tokens, and the
//! client assertions they have used (identity's tables, see
//! `corridor-auth`).

use sqlx::Row;

use crate::{Store, StoreError, now_instant};

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    /// `Organization/<id>`.
    pub organization: String,
    /// Its public keys, a JWKS as JSON.
    pub jwks: String,
    /// The scopes it may be granted, space-separated.
    pub scopes: String,
    pub registered_at: String,
    pub registered_by: String,
    /// Tokens only over mutual TLS, bound to the client's certificate.
    pub require_certificate: bool,
}

impl Store {
    /// Register `client`; a client id already registered is refused
    /// ([`StoreError::Invalid`], naming `client_id`).
    pub async fn register_client(&self, client: &Client) -> Result<(), StoreError> {
        let (_gate, mut tx) = self.begin().await?;
        let exists = sqlx::query("SELECT 1 AS one FROM auth_clients WHERE client_id = $1")
            .bind(client.client_id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            return Err(StoreError::Invalid(
                corridor_fhir::Issue::new(
                    "duplicate",
                    format!(
                        "client '{}' is already registered; choose another client id",
                        client.client_id
                    ),
                )
                .at("client_id"),
            ));
        }
        sqlx::query(
            "INSERT INTO auth_clients (client_id, organization, jwks, scopes, registered_at, registered_by, require_certificate) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(client.client_id.as_str())
        .bind(client.organization.as_str())
        .bind(client.jwks.as_str())
        .bind(client.scopes.as_str())
        .bind(now_instant())
        .bind(client.registered_by.as_str())
        .bind(i64::from(client.require_certificate))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The client registered as `client_id`, if any.
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, organization, jwks, scopes, registered_at, registered_by, require_certificate \
             FROM auth_clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.inner.pool)
        .await?;
        row.map(|row| {
            Ok(Client {
                client_id: row.try_get("client_id")?,
                organization: row.try_get("organization")?,
                jwks: row.try_get("jwks")?,
                scopes: row.try_get("scopes")?,
                registered_at: row.try_get("registered_at")?,
                registered_by: row.try_get("registered_by")?,
                require_certificate: row.try_get::<i64, _>("require_certificate")? != 0,
            })
        })
        .transpose()
    }

    /// Record that `client` used assertion `jti` (valid until `expires_at`,
    /// seconds since the epoch). False when it was used before: the
    /// assertion must be refused. Assertions expired before `now` are
    /// forgotten.
    pub async fn first_use_of_assertion(
        &self,
        client: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (_gate, mut tx) = self.begin().await?;
        sqlx::query("DELETE FROM auth_assertions WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO auth_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(client)
        .bind(jti)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }
}
