//! `ocsp_signers`: the delegated OCSP responder of each CA (its certificate
//! and its sealed key), newest last.

use crate::db::Conn;
use crate::model::{CertificateId, EncryptionKeyId, OcspSignerId, Opaque, Timestamp};
use crate::{Result, exec, on_conn};

/// One responder certificate with its sealed key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OcspSignerRecord {
    /// Row id (also in the sealed key's associated data).
    pub id: OcspSignerId,
    /// The CA that issued the responder certificate.
    pub issuer_certificate_id: CertificateId,
    /// The responder certificate (DER).
    pub certificate_der: Vec<u8>,
    /// Data key the private key is sealed under.
    pub encryption_key_id: EncryptionKeyId,
    /// PKCS#8 DER, sealed.
    pub encrypted_key_material: Opaque,
    /// The sealing nonce.
    pub nonce: Opaque,
    /// `RSA`, `ECDSA` or `Ed25519`.
    pub key_algorithm: String,
    /// Start of the certificate's validity.
    pub not_before: Timestamp,
    /// End of the certificate's validity.
    pub not_after: Timestamp,
    /// When the row was written.
    pub created_at: Timestamp,
}

/// Writes a new signer.
pub async fn insert(conn: &mut Conn<'_>, signer: &OcspSignerRecord) -> Result<()> {
    exec!(conn, |c| sqlx::query(
        "INSERT INTO ocsp_signers (id, issuer_certificate_id, certificate_der, encryption_key_id,
            encrypted_key_material, nonce, key_algorithm, not_before, not_after, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )
    .bind(signer.id)
    .bind(signer.issuer_certificate_id)
    .bind(&signer.certificate_der)
    .bind(signer.encryption_key_id)
    .bind(&signer.encrypted_key_material)
    .bind(&signer.nonce)
    .bind(&signer.key_algorithm)
    .bind(signer.not_before)
    .bind(signer.not_after)
    .bind(signer.created_at))?;
    Ok(())
}

/// The signer of `issuer` that ends last, if any.
pub async fn newest(
    conn: &mut Conn<'_>,
    issuer: CertificateId,
) -> Result<Option<OcspSignerRecord>> {
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, OcspSignerRecord>(
        "SELECT * FROM ocsp_signers WHERE issuer_certificate_id = $1
         ORDER BY not_after DESC, created_at DESC LIMIT 1"
    )
    .bind(issuer)
    .fetch_optional(&mut *c)
    .await)?)
}
