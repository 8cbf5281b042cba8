//! Revocation (RFC 5280 reasons; `certificate_hold` suspends and can be
//! released) and CRLs signed by the issuing CA.

use serde_json::json;

use crate::crypto::ocsp::OcspCertStatus;
use crate::crypto::{parse_certificates, spki_sha256};
use crate::model::{
    Certificate, CertificateId, CertificateRevocation, CertificateStatus, RevocationId,
    RevocationReason,
};
use crate::service::actor::{Access, Actor};
use crate::service::audit::{AuditEntry, append};
use crate::service::certificates::{DEFAULT_EXPIRY_THRESHOLD_DAYS, status_by_time};
use crate::store::audit::AuditLogKind;
use crate::store::certificate_revocations as revocations;
use crate::store::certificates::{self, Certificates};
use crate::store::policies::Policies;
use crate::store::{self, now};
use crate::{Clm, Error, Result};

pub use crate::service::crls::{
    CRL_CHUNK_BYTES, CrlReader, CrlSummary, DEFAULT_CRL_HOURS, GeneratedCrl, MAX_CRL_HOURS,
};

impl Clm {
    /// Reads a live certificate and checks `action` on it; out of reach it
    /// does not exist.
    pub(crate) async fn certificate_for(
        &self,
        actor: &Actor,
        id: CertificateId,
        resource: &'static str,
        action: &'static str,
    ) -> Result<Certificate> {
        let row = {
            let mut conn = self.databases().secure.acquire().await?;
            store::get::<Certificates>(&mut conn.conn(), id, false).await?
        };
        self.authorize_visible(
            actor,
            Access::new(resource, action).in_org(row.organization_id),
            "certificate",
            id,
        )
        .await?;
        Ok(row)
    }

    /// The CA whose CRL a revocation of `row` lands on (the revocation's
    /// `issuer_certificate_id`): its issuer when that CA issued it through
    /// clm, or when the CA is of the certificate's own scope (the same
    /// organization, or both shared). An imported copy in another scope is
    /// that organization's record only: if it landed on the CRL, a tenant
    /// could revoke, for every relying party, a certificate another tenant
    /// holds (same serial) by importing its public copy and revoking that.
    async fn crl_issuer(&self, row: &Certificate) -> Result<Option<CertificateId>> {
        let Some(issuer_id) = row.issuer_certificate_id else {
            return Ok(None);
        };
        if row.source == crate::model::CertificateSource::Issued {
            return Ok(Some(issuer_id));
        }
        let issuer = {
            let mut conn = self.databases().secure.acquire().await?;
            match store::get::<Certificates>(&mut conn.conn(), issuer_id, true).await {
                Ok(issuer) => issuer,
                Err(Error::NotFound { .. }) => return Ok(None),
                Err(other) => return Err(other),
            }
        };
        Ok((issuer.organization_id == row.organization_id).then_some(issuer_id))
    }

    /// Revokes a certificate for an RFC 5280 reason. `certificate_hold`
    /// suspends it (see [`Clm::release_certificate_hold`]); every other reason
    /// revokes it for good. A certificate with a standing revocation is a
    /// Conflict: release a hold before revoking for another reason.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn revoke_certificate(
        &self,
        actor: &Actor,
        id: CertificateId,
        reason: RevocationReason,
        comment: Option<String>,
    ) -> Result<CertificateRevocation> {
        let row = self
            .certificate_for(actor, id, "certificates", "revoke")
            .await?;
        if reason == RevocationReason::RemoveFromCrl {
            return Err(Error::invalid(
                "reason",
                "remove_from_crl only appears in delta CRLs; to lift a certificate_hold use release_certificate_hold",
            ));
        }
        let comment = comment
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        if comment.as_ref().is_some_and(|c| c.len() > 1000) {
            return Err(Error::invalid("comment", "must be at most 1000 characters"));
        }
        let at = now();
        let crl_issuer = self.crl_issuer(&row).await?;
        let revocation = CertificateRevocation {
            id: RevocationId::new(),
            certificate_id: id,
            issuer_certificate_id: crl_issuer,
            serial_number: row.serial_number.clone(),
            serial_number_signed: row.serial_number_signed.clone(),
            revocation_reason: reason,
            revoked_at: at,
            revoked_by_user_id: actor.user_id(),
            comment,
            released_at: None,
            released_by_user_id: None,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        let status = if reason == RevocationReason::CertificateHold {
            CertificateStatus::Suspended
        } else {
            CertificateStatus::Revoked
        };
        // A compromised key stays dead: the revocation records its hash (the
        // blocklist) in the same transaction. A CA's ca_compromise kills the
        // CA's own key; a leaf revoked for its CA's compromise keeps its key.
        let compromised_key = match reason {
            RevocationReason::KeyCompromise => Some(public_key_hash(&row)?),
            RevocationReason::CaCompromise if row.is_ca => Some(public_key_hash(&row)?),
            _ => None,
        };
        let ocsp = self
            .ocsp_update(
                id,
                crl_issuer,
                &row.serial_number,
                OcspCertStatus::Revoked { at, reason },
            )
            .await;
        let mut tx = self.databases().secure.begin().await?;
        if let Some(standing) = revocations::get_current(&mut tx.conn(), id).await? {
            return Err(already_revoked(&row, &standing));
        }
        // The partial unique index settles a race the check above lost.
        revocations::insert(&mut tx.conn(), &revocation)
            .await
            .map_err(|err| match err {
                Error::AlreadyExists { .. } => Error::conflict(format!(
                    "certificate {} is already revoked",
                    row.certificate_id
                )),
                other => other,
            })?;
        if let Some(hash) = &compromised_key {
            revocations::mark_compromised_key(&mut tx.conn(), revocation.id, hash).await?;
        }
        certificates::update_status(&mut tx.conn(), id, status).await?;
        ocsp.apply(&mut tx.conn()).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("certificate.revoked", "revoke")
                .resource("certificate", id)
                .org(row.organization_id)
                .details(json!({
                    "certificate_id": row.certificate_id,
                    "serial_number": row.serial_number,
                    "issuer_certificate_id": row.issuer_certificate_id,
                    "on_crl_of": crl_issuer,
                    "reason": reason,
                    "revocation_id": revocation.id,
                    "comment": revocation.comment,
                    "blocklisted_public_key_sha256": compromised_key,
                })),
        )
        .await?;
        tx.commit().await?;
        if row.is_ca {
            // A cached CA would keep signing with its old status.
            self.issuers().forget(id);
        }
        if let Some(owner) = row.owner_user_id {
            let mut tx = self.databases().core.begin().await?;
            let name = row
                .common_name
                .clone()
                .unwrap_or_else(|| row.subject_dn.clone());
            crate::service::notifications::notify(
                &mut tx.conn(),
                crate::service::notifications::Notice::new(
                    owner,
                    crate::model::NotificationType::CertificateRevoked,
                    "Certificate revoked",
                    format!(
                        "Certificate {name} ({}) was revoked: {reason}",
                        row.certificate_id
                    ),
                )
                .about("certificate", row.id)
                .priority(crate::model::NotificationPriority::High)
                .once(format!("certificate_revoked:{}", revocation.id)),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(revocation)
    }

    /// Ends a `certificate_hold`: the certificate returns to the status its
    /// validity gives it now (active, expiring, expired or pending). Any
    /// other revocation is final and refused.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn release_certificate_hold(
        &self,
        actor: &Actor,
        id: CertificateId,
    ) -> Result<Certificate> {
        let row = self
            .certificate_for(actor, id, "certificates", "revoke")
            .await?;
        let threshold = match row.policy_id {
            Some(policy) => {
                let mut conn = self.databases().core.acquire().await?;
                match store::get::<Policies>(&mut conn.conn(), policy, true).await {
                    Ok(policy) => i64::from(policy.policy_rules.0.renewal_threshold_days),
                    Err(Error::NotFound { .. }) => DEFAULT_EXPIRY_THRESHOLD_DAYS,
                    Err(other) => return Err(other),
                }
            }
            None => DEFAULT_EXPIRY_THRESHOLD_DAYS,
        };
        let at = now();
        let ocsp_issuer = self.crl_issuer(&row).await?;
        let ocsp = self
            .ocsp_update(id, ocsp_issuer, &row.serial_number, OcspCertStatus::Good)
            .await;
        let mut tx = self.databases().secure.begin().await?;
        let standing = revocations::get_current(&mut tx.conn(), id)
            .await?
            .ok_or_else(|| {
                Error::conflict(format!(
                    "certificate {} is not on hold; nothing to release",
                    row.certificate_id
                ))
            })?;
        if standing.revocation_reason != RevocationReason::CertificateHold {
            return Err(Error::conflict(format!(
                "certificate {} is revoked for {}, which is final; only a certificate_hold can be released",
                row.certificate_id, standing.revocation_reason
            )));
        }
        revocations::release(&mut tx.conn(), standing.id, actor.user_id(), at).await?;
        let status = status_by_time(row.not_before, row.not_after, at, threshold);
        certificates::update_status(&mut tx.conn(), id, status).await?;
        ocsp.apply(&mut tx.conn()).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("certificate.hold_released", "release")
                .resource("certificate", id)
                .org(row.organization_id)
                .details(json!({
                    "certificate_id": row.certificate_id,
                    "revocation_id": standing.id,
                    "status": status,
                })),
        )
        .await?;
        let released = store::get::<Certificates>(&mut tx.conn(), id, false).await?;
        tx.commit().await?;
        if row.is_ca {
            self.issuers().forget(id);
        }
        Ok(released)
    }

    /// Signs a complete CRL for the CA `issuer_id` listing every standing
    /// revocation of the certificates it issued, with the next CRL number
    /// (taken in the same transaction, so numbers strictly increase even
    /// under concurrent calls), and stores it as the CA's latest
    /// ([`Clm::latest_crl`]). The entries stream from the database through
    /// a temporary spool into the signature and the database's chunks, so
    /// memory does not grow with their number; what is returned is the
    /// CRL's summary, not its bytes. The use of the CA key is audited in
    /// that transaction; if anything fails the number is not consumed. A
    /// partitioned CA's partitions and deltas: [`Clm::generate_scoped_crl`].
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn generate_crl(
        &self,
        actor: &Actor,
        issuer_id: CertificateId,
        next_update_hours: Option<u32>,
    ) -> Result<CrlSummary> {
        self.generate_scoped_crl(actor, issuer_id, None, false, next_update_hours)
            .await
    }
}

/// The refusal of a blocklisted key: it names the key's hash and the
/// reason, never whose certificate it was.
pub(crate) fn compromised_key_error(hash: &str, reason: RevocationReason) -> Error {
    crate::service::policy_check::refuse(vec![crate::error::Violation::new(
        "compromised_key",
        format!("public key SHA-256 {hash} was revoked for {reason} and is never certified again"),
    )])
}

/// The blocklist hash of a stored certificate's public key.
fn public_key_hash(row: &Certificate) -> Result<String> {
    let parsed = parse_certificates(row.certificate_pem.as_bytes())?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Internal(format!("certificate {} has no PEM", row.certificate_id)))?;
    spki_sha256(&parsed.public_key_der)
}

impl Clm {
    /// Which of `hashes` (see [`spki_sha256`]) belong to compromised keys,
    /// with the reason each was revoked for.
    pub(crate) async fn compromised_keys(
        &self,
        hashes: &[String],
    ) -> Result<Vec<(String, RevocationReason)>> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.databases().secure.acquire().await?;
        revocations::compromised_keys(&mut conn.conn(), hashes).await
    }

    /// Refuses a public key (SubjectPublicKeyInfo DER) that was revoked for
    /// key_compromise, or a CA key revoked for ca_compromise: no later
    /// issuance, renewal, key reuse or import with a private key certifies
    /// it again. The message names the key's hash, never whose it was.
    pub(crate) async fn refuse_compromised_key(&self, spki_der: &[u8]) -> Result<()> {
        let hash = spki_sha256(spki_der)?;
        match self
            .compromised_keys(std::slice::from_ref(&hash))
            .await?
            .first()
        {
            None => Ok(()),
            Some((hash, reason)) => Err(compromised_key_error(hash, *reason)),
        }
    }

    /// Refuses to renew a certificate with a standing revocation: revoked
    /// for any reason, or on hold while the hold stands.
    pub(crate) async fn refuse_revoked_renewal(&self, old: &Certificate) -> Result<()> {
        let standing = {
            let mut conn = self.databases().secure.acquire().await?;
            revocations::get_current(&mut conn.conn(), old.id).await?
        };
        match standing {
            None => Ok(()),
            Some(standing) => Err(Error::conflict(format!(
                "certificate {} is revoked ({}); a revoked certificate is not renewed{}",
                old.certificate_id,
                standing.revocation_reason,
                if standing.revocation_reason == RevocationReason::CertificateHold {
                    " while the hold stands"
                } else {
                    ""
                }
            ))),
        }
    }
}

fn already_revoked(row: &Certificate, standing: &CertificateRevocation) -> Error {
    Error::conflict(format!(
        "certificate {} is already revoked ({} since {})",
        row.certificate_id, standing.revocation_reason, standing.revoked_at
    ))
}
