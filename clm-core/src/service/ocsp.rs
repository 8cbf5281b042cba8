//! The OCSP responder (RFC 6960, nonces per RFC 8954): a function from
//! request bytes to response bytes that the host mounts at its OCSP URL
//! (`examples/ocsp_server.rs` is one such host).
//!
//! Who it runs as: nobody. RFC 6960 responders answer anyone, so
//! [`Clm::ocsp_respond`] takes no actor and needs no permission. What it
//! tells is what a CRL of the same CA tells, per serial asked about: good,
//! revoked (time and reason) or unknown, for the CAs whose keys clm holds
//! (any other issuer is `unauthorized`). It names no certificate, subject,
//! owner or organization; a response carries only the CertID the client
//! sent. Which certificates count follows the CRL rule
//! (`revocation::crl_issuer`): issued by the CA through clm, or imported in
//! the CA's own scope; so a tenant's imported copy of another tenant's
//! certificate changes nothing another relying party sees.
//! What clm writes on its own account here (a delegated signer made on first
//! need) is audited as the system actor.
//!
//! Signing: each CA delegates to a responder certificate
//! ([`crate::crypto::ocsp::build_ocsp_responder_certificate`]) that clm
//! issues for [`SIGNER_VALIDITY_DAYS`], seals in `ocsp_signers`, and renews
//! from `run_lifecycle` once less than [`SIGNER_RENEW_BEFORE_DAYS`] remain
//! (or on first need). A signer is disposable: one whose key no longer
//! opens (its data key retired) is replaced, never re-sealed.
//! [`crate::OcspSettings::sign_with_ca_key`] signs with the CA key instead.
//!
//! Pre-signed responses: issuance signs a `good` response (SHA-1 CertID,
//! the form RFC 5019 clients send) into `ocsp_responses` with the
//! certificate, in the same secure transaction; revocation and a hold's
//! release replace it in theirs; `run_lifecycle` re-signs those within
//! [`REFRESH_BEFORE_HOURS`] of nextUpdate. A one-certificate request without
//! nonce whose CertID is that stored one is answered by one index probe.
//! Anything else (a nonce, a SHA-256 CertID, several certificates, a missing
//! or stale stored response) is signed fresh from the current status.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::crypto::envelope::Sealed;
use crate::crypto::ocsp::{
    IssuerHashes, OcspCertId, OcspCertStatus, OcspHash, OcspRequest, OcspResponseStatus,
    OcspSigner, OcspSingleResponse, build_ocsp_responder_certificate, build_ocsp_response,
    ocsp_error_response, parse_ocsp_request,
};
use crate::crypto::{KeyPair, ParsedCertificate, parse_certificates};
use crate::model::{
    CertificateId, CertificateStatus, OcspResponseId, OcspSignerId, Opaque, OrganizationId,
};
use crate::service::actor::Actor;
use crate::service::audit::{AuditEntry, append};
use crate::service::certificates::LoadedIssuer;
use crate::store::audit::AuditLogKind;
use crate::store::ocsp_responses::{self, OcspResponseRecord};
use crate::store::ocsp_signers::{self, OcspSignerRecord};
use crate::store::{certificate_revocations, certificates, now};
use crate::{Clm, Error, Result};

/// Hours from a response's thisUpdate to its nextUpdate.
pub const RESPONSE_VALIDITY_HOURS: i64 = 96;
/// The lifecycle re-signs stored responses this close to their nextUpdate.
pub const REFRESH_BEFORE_HOURS: i64 = 48;
/// Days a delegated responder certificate is valid (short: it carries
/// id-pkix-ocsp-nocheck, so nobody checks whether it was revoked).
pub const SIGNER_VALIDITY_DAYS: i64 = 30;
/// A responder certificate is replaced once fewer days than this remain.
pub const SIGNER_RENEW_BEFORE_DAYS: i64 = 10;
/// Stored responses re-signed per lifecycle run; the rest wait for the next.
const REFRESH_PER_RUN: u32 = 20_000;
/// Stored responses re-signed per transaction.
const REFRESH_BATCH: u32 = 500;
/// The issuer index is reloaded on a miss at most this often, so requests
/// naming made-up issuers cannot make every request read the CA table.
const INDEX_MISS_RELOAD: StdDuration = StdDuration::from_millis(250);

/// What the `ocsp_respond` operation returns to the bindings: the response bytes
/// and, for logs and tests, their status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct OcspReply {
    /// The OCSPResponse, DER in standard base64: the HTTP body to send with
    /// `Content-Type: application/ocsp-response`.
    pub response_der_base64: String,
    /// The response's status: `successful`, `malformedRequest`,
    /// `internalError`, `tryLater` or `unauthorized`.
    pub response_status: String,
}

/// What the lifecycle's OCSP step did.
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct OcspLifecycleReport {
    /// Delegated responder certificates issued to replace ones ending soon.
    pub signers_renewed: u64,
    /// Stored responses re-signed ahead of their nextUpdate.
    pub responses_refreshed: u64,
    /// `issuer or certificate id: error` for what failed (retried next run).
    pub errors: Vec<String>,
}

/// A CA the responder answers for.
#[derive(Debug)]
struct IndexedIssuer {
    id: CertificateId,
    organization_id: Option<OrganizationId>,
    status: CertificateStatus,
    certificate: ParsedCertificate,
    hashes: IssuerHashes,
}

impl IndexedIssuer {
    /// A revoked, suspended or expired CA gets no answers (its key must not
    /// sign, and a responder it delegated to stands for it).
    fn answers(&self, at: DateTime<Utc>) -> bool {
        !matches!(
            self.status,
            CertificateStatus::Revoked | CertificateStatus::Suspended
        ) && self.certificate.not_after > at
            && self.certificate.not_before <= at
    }
}

/// The key a CA's responses are signed with.
#[derive(Debug)]
enum SignerKey {
    /// A delegated responder: its certificate goes into each response.
    Delegated {
        certificate_der: Vec<u8>,
        key: Box<KeyPair>,
    },
    /// The CA itself.
    Ca(Arc<LoadedIssuer>),
}

/// A CA's signer, ready to sign.
#[derive(Debug)]
pub(crate) struct LoadedSigner {
    issuer_id: CertificateId,
    hashes: IssuerHashes,
    key: SignerKey,
    /// nextUpdate never goes past this (the responder certificate's end).
    not_after: DateTime<Utc>,
    /// After this the cache looks for a newer signer.
    renew_at: DateTime<Utc>,
}

impl LoadedSigner {
    fn signer(&self) -> OcspSigner<'_> {
        match &self.key {
            SignerKey::Delegated {
                certificate_der,
                key,
            } => OcspSigner {
                key,
                certificate: Some(certificate_der),
            },
            SignerKey::Ca(issuer) => OcspSigner {
                key: &issuer.key,
                certificate: None,
            },
        }
    }

    /// Signs one response about `cert_id`, valid from `at`.
    fn sign(
        &self,
        statuses: Vec<(OcspCertId, OcspCertStatus)>,
        at: DateTime<Utc>,
        request: Option<&OcspRequest>,
    ) -> Result<(Vec<u8>, DateTime<Utc>)> {
        let next_update = at
            .checked_add_signed(Duration::hours(RESPONSE_VALIDITY_HOURS))
            .ok_or_else(|| Error::Internal("nextUpdate out of range".into()))?
            .min(self.not_after);
        let singles: Vec<OcspSingleResponse> = statuses
            .into_iter()
            .map(|(cert_id, status)| OcspSingleResponse {
                cert_id,
                status,
                this_update: at,
                next_update,
            })
            .collect();
        let der = build_ocsp_response(self.signer(), &singles, at, request)?;
        Ok((der, next_update))
    }

    /// A stored `good` or `revoked` response for a certificate of this
    /// signer's CA: CPU only, so issuance can call it where it signs.
    pub(crate) fn presign(
        &self,
        certificate_id: CertificateId,
        serial: &[u8],
        status: OcspCertStatus,
    ) -> Result<OcspResponseRecord> {
        let at = whole_seconds(now());
        let cert_id = OcspCertId::with_hashes(&self.hashes, serial, OcspHash::Sha1)?;
        let (response_der, next_update) = self.sign(vec![(cert_id, status)], at, None)?;
        Ok(OcspResponseRecord {
            id: OcspResponseId::new(),
            certificate_id,
            issuer_certificate_id: self.issuer_id,
            serial_number: hex::encode(serial),
            cert_status: match status {
                OcspCertStatus::Revoked { .. } => "revoked",
                _ => "good",
            }
            .into(),
            response_der,
            this_update: at,
            next_update,
            // Not whole seconds: the lifecycle tells rows it signed in a run
            // from older ones by this time.
            updated_at: now(),
        })
    }
}

type IssuerIndex = Vec<IndexedIssuer>;

/// The responder's per-process state: the index of the CAs it answers for
/// (reloaded after the handle's cache TTL, or on a miss) and the opened
/// signers (kept until their renewal time).
#[derive(Debug)]
pub struct OcspState {
    ttl: StdDuration,
    index: RwLock<Option<(Instant, Arc<IssuerIndex>)>>,
    index_loading: tokio::sync::Mutex<()>,
    signers: RwLock<HashMap<CertificateId, Arc<LoadedSigner>>>,
    signer_loading: tokio::sync::Mutex<()>,
}

impl OcspState {
    /// Empty state; the issuer index lives `ttl` (ClmConfig::cache_ttl).
    pub fn new(ttl: StdDuration) -> Self {
        OcspState {
            ttl,
            index: RwLock::new(None),
            index_loading: tokio::sync::Mutex::new(()),
            signers: RwLock::new(HashMap::new()),
            signer_loading: tokio::sync::Mutex::new(()),
        }
    }

    fn cached_index(&self, max_age: StdDuration) -> Option<Arc<IssuerIndex>> {
        let guard = self.index.read().ok()?;
        let (loaded_at, index) = guard.as_ref()?;
        (loaded_at.elapsed() < max_age).then(|| index.clone())
    }

    fn cached_signer(&self, issuer: CertificateId) -> Option<Arc<LoadedSigner>> {
        let guard = self.signers.read().ok()?;
        let signer = guard.get(&issuer)?;
        (signer.renew_at > Utc::now()).then(|| signer.clone())
    }

    fn forget_signer(&self, issuer: CertificateId) {
        if let Ok(mut signers) = self.signers.write() {
            signers.remove(&issuer);
        }
    }
}

/// OCSP times carry whole seconds.
fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

fn signer_aad(id: OcspSignerId) -> [String; 3] {
    [
        "ocsp_signers".into(),
        "encrypted_key_material".into(),
        id.to_string(),
    ]
}

/// The status a failure answers with: a database that cannot be reached
/// says `tryLater`, anything else `internalError`.
fn failure_status(err: &Error) -> OcspResponseStatus {
    match err {
        Error::Database(..) | Error::StorageFull(..) | Error::Closed => {
            OcspResponseStatus::TryLater
        }
        Error::InvalidInput { .. } => OcspResponseStatus::MalformedRequest,
        _ => OcspResponseStatus::InternalError,
    }
}

/// The change a revocation or release makes to a certificate's stored
/// response, prepared before its transaction and written inside it.
#[derive(Debug)]
#[must_use]
pub(crate) enum OcspUpdate {
    /// The new response replaces the stored one.
    Replace(Box<OcspResponseRecord>),
    /// No response could be signed: the stored one goes, so no stale answer
    /// outlives the change (requests are then signed fresh).
    Drop(CertificateId),
}

impl OcspUpdate {
    /// Writes the change in the caller's transaction.
    pub(crate) async fn apply(self, conn: &mut crate::db::Conn<'_>) -> Result<()> {
        match self {
            OcspUpdate::Replace(row) => ocsp_responses::upsert(conn, &row).await,
            OcspUpdate::Drop(id) => ocsp_responses::delete_for_certificate(conn, id).await,
        }
    }
}

impl Clm {
    /// Answers an OCSP request (DER, as POSTed with `Content-Type:
    /// application/ocsp-request` or base64-decoded from a GET path; RFC 6960
    /// appendix A) with a DER OCSPResponse. Never fails: a malformed request
    /// gets `malformedRequest`, an issuer clm holds no key for (or a revoked
    /// or expired one) `unauthorized`, an unreachable database `tryLater`,
    /// anything else `internalError`. Public: no actor (see the module
    /// documentation for what it reveals).
    #[tracing::instrument(skip_all, fields(actor = "public", organization))]
    pub async fn ocsp_respond(&self, request_der: &[u8]) -> Vec<u8> {
        // Boxed, as the other entry points below: the callers' futures
        // (revocation, issuance, the lifecycle) stay small.
        match Box::pin(self.ocsp_answer(request_der)).await {
            Ok(der) => der,
            Err(err) => {
                let status = failure_status(&err);
                tracing::warn!(error = %err, status = status.as_str(), "ocsp: request not answered");
                ocsp_error_response(status)
            }
        }
    }

    /// [`Clm::ocsp_respond`] for the bindings: the request and the response
    /// as base64 text. Text that is not base64 is a malformed request.
    #[tracing::instrument(skip_all, fields(actor = "public", organization), err(level = "info"))]
    pub(crate) async fn ocsp_reply(&self, request_der_base64: &str) -> Result<OcspReply> {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let response = match engine.decode(request_der_base64.trim()) {
            Ok(request) => self.ocsp_respond(&request).await,
            Err(_) => ocsp_error_response(OcspResponseStatus::MalformedRequest),
        };
        let status = crate::crypto::ocsp::ocsp_response_status(&response)
            .map_or("internalError", |s| s.as_str());
        Ok(OcspReply {
            response_status: status.into(),
            response_der_base64: engine.encode(&response),
        })
    }

    async fn ocsp_answer(&self, request_der: &[u8]) -> Result<Vec<u8>> {
        let request = match parse_ocsp_request(request_der) {
            Ok(request) => request,
            Err(err) => {
                tracing::debug!(error = %err, "ocsp: malformed request");
                return Ok(ocsp_error_response(OcspResponseStatus::MalformedRequest));
            }
        };
        let at = whole_seconds(now());
        let Some(first) = request.certificates.first() else {
            return Ok(ocsp_error_response(OcspResponseStatus::MalformedRequest));
        };
        let index = self.ocsp_issuer_index(first).await?;
        // One signature per response, and a delegated responder speaks for
        // its own CA only: every certificate must name the same issuer.
        let Some(issuer) = index.iter().find(|i| i.hashes.matches(first)) else {
            return Ok(ocsp_error_response(OcspResponseStatus::Unauthorized));
        };
        if !request
            .certificates
            .iter()
            .all(|id| issuer.hashes.matches(id))
            || !issuer.answers(at)
        {
            return Ok(ocsp_error_response(OcspResponseStatus::Unauthorized));
        }
        if !request.has_nonce()
            && let [only] = request.certificates.as_slice()
            && let Some(stored) = self.ocsp_stored(issuer, only, at).await?
        {
            return Ok(stored);
        }
        let mut statuses = Vec::with_capacity(request.certificates.len());
        {
            let mut conn = self.databases().secure.acquire().await?;
            for id in &request.certificates {
                let status = self.ocsp_status(&mut conn.conn(), issuer, id).await?;
                statuses.push((id.clone(), status));
            }
        }
        let signer = self.ocsp_signer(issuer.id).await?;
        self.run_cpu(move || {
            signer
                .sign(statuses, at, Some(&request))
                .map(|(der, _)| der)
        })
        .await
    }

    /// The stored response for `id`, when it is the one asked for (same
    /// CertID encoding) and has not passed its nextUpdate.
    async fn ocsp_stored(
        &self,
        issuer: &IndexedIssuer,
        id: &OcspCertId,
        at: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>> {
        let Some(serial) = id.serial_hex() else {
            return Ok(None);
        };
        if !OcspCertId::with_hashes(&issuer.hashes, &id.serial, OcspHash::Sha1)?.encodes_like(id) {
            return Ok(None);
        }
        let mut conn = self.databases().secure.acquire().await?;
        Ok(ocsp_responses::lookup(&mut conn.conn(), issuer.id, &serial)
            .await?
            .filter(|(_, next_update)| *next_update > at)
            .map(|(der, _)| der))
    }

    /// The current status of `id` under `issuer`, by the CRL's rule.
    async fn ocsp_status(
        &self,
        conn: &mut crate::db::Conn<'_>,
        issuer: &IndexedIssuer,
        id: &OcspCertId,
    ) -> Result<OcspCertStatus> {
        let Some(serial) = id.serial_hex() else {
            return Ok(OcspCertStatus::Unknown);
        };
        if let Some((at, reason)) =
            certificate_revocations::standing_by_serial(conn, issuer.id, &serial).await?
        {
            return Ok(OcspCertStatus::Revoked { at, reason });
        }
        let (issued, imported) = certificates::by_issuer_serial(conn, issuer.id, &serial).await?;
        if issued || imported.contains(&issuer.organization_id) {
            Ok(OcspCertStatus::Good)
        } else {
            Ok(OcspCertStatus::Unknown)
        }
    }

    /// The CAs the responder answers for. A CertID naming none of them
    /// reloads the index (a CA created a moment ago, perhaps in another
    /// process), at most every [`INDEX_MISS_RELOAD`].
    async fn ocsp_issuer_index(&self, wanted: &OcspCertId) -> Result<Arc<IssuerIndex>> {
        let state = self.ocsp_state();
        if let Some(index) = state.cached_index(state.ttl)
            && index.iter().any(|i| i.hashes.matches(wanted))
        {
            return Ok(index);
        }
        let _loading = state.index_loading.lock().await;
        if let Some(index) = state.cached_index(INDEX_MISS_RELOAD.min(state.ttl)) {
            return Ok(index);
        }
        let loaded_at = Instant::now();
        let rows = {
            let mut conn = self.databases().secure.acquire().await?;
            certificates::held_authorities(&mut conn.conn()).await?
        };
        let index = self
            .run_cpu(move || {
                let mut index = Vec::with_capacity(rows.len());
                for (id, organization_id, status, pem) in rows {
                    // A CA whose stored certificate does not parse answers nothing.
                    let Some(certificate) = parse_certificates(pem.as_bytes())
                        .ok()
                        .and_then(|c| c.into_iter().next())
                    else {
                        continue;
                    };
                    let Ok(hashes) = IssuerHashes::of(&certificate) else {
                        continue;
                    };
                    index.push(IndexedIssuer {
                        id,
                        organization_id,
                        status,
                        certificate,
                        hashes,
                    });
                }
                Ok(Arc::new(index))
            })
            .await?;
        if let Ok(mut slot) = state.index.write() {
            *slot = Some((loaded_at, index.clone()));
        }
        Ok(index)
    }

    /// The signer of CA `issuer_id`: the CA itself when configured so, else
    /// its newest delegated responder, issued now when there is none with
    /// enough life left or its key no longer opens.
    pub(crate) async fn ocsp_signer(&self, issuer_id: CertificateId) -> Result<Arc<LoadedSigner>> {
        let state = self.ocsp_state();
        if let Some(signer) = state.cached_signer(issuer_id) {
            return Ok(signer);
        }
        let _loading = state.signer_loading.lock().await;
        if let Some(signer) = state.cached_signer(issuer_id) {
            return Ok(signer);
        }
        let issuer = self.load_issuer(issuer_id).await?;
        let hashes = IssuerHashes::of(&issuer.certificate)?;
        let signer = if self.config().ocsp.sign_with_ca_key {
            let not_after = issuer.certificate.not_after;
            LoadedSigner {
                issuer_id,
                hashes,
                key: SignerKey::Ca(issuer),
                not_after,
                // The CA's status is re-read with the issuer cache.
                renew_at: Utc::now()
                    .checked_add_signed(Duration::seconds(60))
                    .unwrap_or(not_after),
            }
        } else {
            let at = now();
            let stored = {
                let mut conn = self.databases().secure.acquire().await?;
                ocsp_signers::newest(&mut conn.conn(), issuer_id).await?
            };
            let minimum = at
                .checked_add_signed(Duration::hours(RESPONSE_VALIDITY_HOURS))
                .unwrap_or(at);
            let mut opened = None;
            if let Some(record) = stored.filter(|record| record.not_after > minimum) {
                // A data key made by another process's rotation is loaded first.
                let loaded = self.load_data_key(record.encryption_key_id).await;
                match loaded.and_then(|()| self.open_signer(&record)) {
                    Ok(key) => opened = Some((record, key)),
                    Err(err) => {
                        tracing::warn!(error = %err, issuer = %issuer_id, "ocsp: responder key does not open; issuing a new one");
                    }
                }
            }
            let (record, key) = match opened {
                Some(found) => found,
                None => Box::pin(self.provision_signer(&issuer)).await?,
            };
            delegated(issuer_id, hashes, record, key)
        };
        let signer = Arc::new(signer);
        if let Ok(mut signers) = state.signers.write() {
            signers.insert(issuer_id, signer.clone());
        }
        Ok(signer)
    }

    /// [`Clm::ocsp_signer`] for the write paths (issuance, revocation):
    /// from the cache at once, else loaded (or issued) on a task of its own,
    /// so their callers' stacks do not grow by the loading's depth.
    async fn ocsp_signer_task(&self, issuer_id: CertificateId) -> Result<Arc<LoadedSigner>> {
        if let Some(signer) = self.ocsp_state().cached_signer(issuer_id) {
            return Ok(signer);
        }
        let clm = self.clone();
        tokio::spawn(async move { clm.ocsp_signer(issuer_id).await }).await?
    }

    /// The signer for responses pre-signed at issuance, or None (logged)
    /// when it cannot be had: issuance goes on, and the certificate's first
    /// requests are signed fresh until the lifecycle stores one.
    pub(crate) async fn ocsp_presigner(
        &self,
        issuer_id: CertificateId,
    ) -> Option<Arc<LoadedSigner>> {
        match self.ocsp_signer_task(issuer_id).await {
            Ok(signer) => Some(signer),
            Err(err) => {
                tracing::warn!(error = %err, issuer = %issuer_id, "ocsp: no signer; issuing without a pre-signed response");
                None
            }
        }
    }

    /// The stored-response change for a status change of `certificate`
    /// (revocation, hold, release), signed before the caller's transaction.
    pub(crate) async fn ocsp_update(
        &self,
        certificate: CertificateId,
        issuer: Option<CertificateId>,
        serial_hex: &str,
        status: OcspCertStatus,
    ) -> OcspUpdate {
        let (Some(issuer), Ok(serial)) = (issuer, hex::decode(serial_hex)) else {
            return OcspUpdate::Drop(certificate);
        };
        let signed = match self.ocsp_signer_task(issuer).await {
            Ok(signer) => {
                self.run_cpu(move || signer.presign(certificate, &serial, status))
                    .await
            }
            Err(err) => Err(err),
        };
        match signed {
            Ok(row) => OcspUpdate::Replace(Box::new(row)),
            Err(err) => {
                tracing::warn!(error = %err, certificate = %certificate, "ocsp: status change not pre-signed; answers are signed fresh");
                OcspUpdate::Drop(certificate)
            }
        }
    }

    fn open_signer(&self, record: &OcspSignerRecord) -> Result<KeyPair> {
        let aad = signer_aad(record.id);
        let aad_refs: Vec<&str> = aad.iter().map(String::as_str).collect();
        let sealed = Sealed {
            nonce: record.nonce.0.clone(),
            ciphertext: record.encrypted_key_material.0.clone(),
        };
        let der = self
            .keyring()
            .open(record.encryption_key_id, &sealed, &aad_refs)?;
        let key = KeyPair::from_der(der.expose())?;
        let certificate = crate::crypto::parse_certificate_der(&record.certificate_der)?;
        if !key.matches_public_key(&certificate.public_key_der) {
            return Err(Error::Internal(format!(
                "OCSP signer {} holds a key that is not its certificate's",
                record.id
            )));
        }
        Ok(key)
    }

    /// Issues a delegated responder for `issuer` and stores it, sealed; the
    /// CA key's use is audited (as the system actor) in that transaction.
    async fn provision_signer(
        &self,
        issuer: &Arc<LoadedIssuer>,
    ) -> Result<(OcspSignerRecord, KeyPair)> {
        let at = now();
        let not_before = whole_seconds(at)
            .checked_sub_signed(Duration::minutes(5))
            .unwrap_or(at)
            .max(issuer.certificate.not_before);
        let not_after = whole_seconds(at)
            .checked_add_signed(Duration::days(SIGNER_VALIDITY_DAYS))
            .unwrap_or(at)
            .min(issuer.certificate.not_after);
        let minimum = at
            .checked_add_signed(Duration::hours(RESPONSE_VALIDITY_HOURS))
            .unwrap_or(at);
        if not_after <= minimum {
            return Err(Error::conflict(format!(
                "CA {} ends at {}: too soon to delegate OCSP signing",
                issuer.row.certificate_id, issuer.certificate.not_after
            )));
        }
        let ca = issuer.clone();
        let (key, der) = self
            .run_cpu(move || {
                let key = KeyPair::generate(ca.key.algorithm())?;
                let der = build_ocsp_responder_certificate(
                    &ca.certificate,
                    &ca.key,
                    &key,
                    not_before,
                    not_after,
                )?;
                crate::crypto::chain_check::verify_ocsp_responder(
                    &der,
                    &ca.chain_der(),
                    Utc::now(),
                )?;
                Ok((key, der))
            })
            .await?;
        let id = OcspSignerId::new();
        let aad = signer_aad(id);
        let aad_refs: Vec<&str> = aad.iter().map(String::as_str).collect();
        let (encryption_key_id, sealed) = self
            .keyring()
            .seal(key.to_pkcs8_der().expose(), &aad_refs)?;
        let record = OcspSignerRecord {
            id,
            issuer_certificate_id: issuer.row.id,
            certificate_der: der,
            encryption_key_id,
            encrypted_key_material: Opaque(sealed.ciphertext),
            nonce: Opaque(sealed.nonce),
            key_algorithm: key.info().family.to_string(),
            not_before,
            not_after,
            created_at: at,
        };
        let mut tx = self.databases().secure.begin().await?;
        ocsp_signers::insert(&mut tx.conn(), &record).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            &Actor::system(),
            AuditEntry::new("ocsp_signer.created", "sign")
                .resource("certificate", issuer.row.id)
                .org(issuer.row.organization_id)
                .details(json!({
                    "ca_certificate_id": issuer.row.certificate_id,
                    "ca_key_used": "ocsp_delegation",
                    "ocsp_signer_id": id,
                    "not_before": not_before,
                    "not_after": not_after,
                })),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(issuer = %issuer.row.id, signer = %id, "ocsp: delegated responder issued");
        Ok((record, key))
    }

    /// The lifecycle's OCSP step as of `at`: replaces delegated responders
    /// that end within [`SIGNER_RENEW_BEFORE_DAYS`], then re-signs stored
    /// responses whose nextUpdate falls within [`REFRESH_BEFORE_HOURS`]
    /// (certificates still valid at `at`), up to a bound per run.
    pub(crate) async fn ocsp_lifecycle(&self, at: DateTime<Utc>) -> Result<OcspLifecycleReport> {
        let mut report = OcspLifecycleReport::default();
        if !self.config().ocsp.sign_with_ca_key {
            self.renew_signers(at, &mut report).await?;
        }
        let due = crate::service::shifted("at", at, Duration::hours(REFRESH_BEFORE_HOURS))?;
        // Rows signed in this run are not due again in it, even when `at`
        // lies so far ahead that their new nextUpdate falls before `due`.
        let started = now();
        let mut refreshed: u32 = 0;
        while refreshed < REFRESH_PER_RUN {
            let rows = {
                let mut conn = self.databases().secure.acquire().await?;
                ocsp_responses::due(&mut conn.conn(), due, at, started, REFRESH_BATCH).await?
            };
            if rows.is_empty() {
                break;
            }
            let mut signed = Vec::with_capacity(rows.len());
            let mut failed = false;
            for (certificate, issuer, serial) in &rows {
                let status = {
                    let mut conn = self.databases().secure.acquire().await?;
                    certificate_revocations::get_current(&mut conn.conn(), *certificate).await?
                }
                .map_or(OcspCertStatus::Good, |r| OcspCertStatus::Revoked {
                    at: r.revoked_at,
                    reason: r.revocation_reason,
                });
                match self
                    .ocsp_update(*certificate, Some(*issuer), serial, status)
                    .await
                {
                    OcspUpdate::Replace(row) => signed.push(row),
                    // Could not be signed: left for the next run.
                    OcspUpdate::Drop(_) => {
                        failed = true;
                        report.errors.push(format!(
                            "{certificate}: OCSP response not re-signed (see the log)"
                        ));
                    }
                }
            }
            let mut tx = self.databases().secure.begin().await?;
            for row in &signed {
                ocsp_responses::upsert(&mut tx.conn(), row).await?;
            }
            tx.commit().await?;
            report.responses_refreshed = report
                .responses_refreshed
                .saturating_add(signed.len() as u64);
            refreshed = refreshed.saturating_add(REFRESH_BATCH);
            if failed {
                // The same rows would come back first: stop until the next run.
                break;
            }
        }
        Ok(report)
    }

    /// Issues a new delegated responder for every held CA whose newest one
    /// ends within [`SIGNER_RENEW_BEFORE_DAYS`] of `at` (those with none
    /// get theirs on first need).
    async fn renew_signers(
        &self,
        at: DateTime<Utc>,
        report: &mut OcspLifecycleReport,
    ) -> Result<()> {
        let horizon = crate::service::shifted("at", at, Duration::days(SIGNER_RENEW_BEFORE_DAYS))?;
        let authorities = {
            let mut conn = self.databases().secure.acquire().await?;
            certificates::held_authorities(&mut conn.conn()).await?
        };
        for (id, _, status, _) in authorities {
            if matches!(
                status,
                CertificateStatus::Revoked
                    | CertificateStatus::Suspended
                    | CertificateStatus::Expired
            ) {
                continue;
            }
            let newest = {
                let mut conn = self.databases().secure.acquire().await?;
                ocsp_signers::newest(&mut conn.conn(), id).await?
            };
            let Some(newest) = newest else { continue };
            if newest.not_after > horizon {
                continue;
            }
            let outcome = match self.load_issuer(id).await {
                Ok(issuer) => Box::pin(self.provision_signer(&issuer)).await.map(|_| ()),
                Err(err) => Err(err),
            };
            match outcome {
                Ok(()) => {
                    self.ocsp_state().forget_signer(id);
                    report.signers_renewed = report.signers_renewed.saturating_add(1);
                }
                Err(err) => report.errors.push(format!("{id}: {err}")),
            }
        }
        Ok(())
    }
}

fn delegated(
    issuer_id: CertificateId,
    hashes: IssuerHashes,
    record: OcspSignerRecord,
    key: KeyPair,
) -> LoadedSigner {
    // A signer found with less than the renewal margin left (the lifecycle
    // has not run) is still kept a minute rather than reloaded per request.
    let renew_at = record
        .not_after
        .checked_sub_signed(Duration::days(SIGNER_RENEW_BEFORE_DAYS))
        .unwrap_or(record.not_after)
        .max(
            Utc::now()
                .checked_add_signed(Duration::seconds(60))
                .unwrap_or(record.not_after),
        );
    LoadedSigner {
        issuer_id,
        hashes,
        key: SignerKey::Delegated {
            certificate_der: record.certificate_der,
            key: Box::new(key),
        },
        not_after: record.not_after,
        renew_at,
    }
}

/// The pre-signed `good` response of a certificate being issued (CPU only:
/// called where issuance signs). None, logged, when it cannot be signed:
/// the certificate is issued all the same and answered fresh meanwhile.
pub(crate) fn presign_good(
    signer: Option<Arc<LoadedSigner>>,
    certificate_id: CertificateId,
    certificate: &ParsedCertificate,
) -> Option<Box<OcspResponseRecord>> {
    let signer = signer?;
    match signer.presign(
        certificate_id,
        &certificate.serial_bytes(),
        OcspCertStatus::Good,
    ) {
        Ok(row) => Some(Box::new(row)),
        Err(err) => {
            tracing::warn!(error = %err, certificate = %certificate_id, "ocsp: response not pre-signed");
            None
        }
    }
}
