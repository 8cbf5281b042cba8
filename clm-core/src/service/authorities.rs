//! Certificate authorities: self-signed roots and intermediates signed by a
//! CA in clm. CA keys are sealed like any other; every signature made with a
//! CA key is audited in `secure_audit_log` in the transaction that stores
//! what it signed.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::crypto::name_constraints::Subtree;
use crate::crypto::{
    CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, NameConstraints,
    NameSubtree, build_certificate, chain_check, parse_certificate_der, random_serial,
};
use crate::model::{
    Certificate, CertificateId, CertificateKind, CertificateRequest, CertificateRequestId,
    CertificateSource, CertificateStatus, OrganizationId, RequestStatus, SubjectAlternativeName,
};
use crate::service::actor::{Access, Actor};
use crate::service::audit::AuditEntry;
use crate::service::certificates::{
    CertificateWrite, IssuanceExtras, IssuanceUrls, LoadedIssuer, MAX_CRL_PARTITIONS, Ownership,
    RequestRow, certificate_row_with_id,
};
use crate::service::policy_check;
use crate::store::certificates;
use crate::{Clm, Error, Result};

/// A CA to create. The URLs are written into the certificates this CA
/// issues (not into its own certificate, which carries its issuer's).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NewCertificateAuthority {
    /// The CA's subject; must not be empty.
    pub subject: DistinguishedName,
    /// The CA's new key (default ECDSA P-256).
    pub key_algorithm: KeyAlgorithm,
    /// Lifetime of the CA certificate, 1 to 36500 days. Default: 3650
    /// days, but an intermediate ends no later than its issuer (the
    /// shortening is reported in [`CertificateAuthority::validity_clamp`]);
    /// an explicit lifetime past the issuer's end is refused.
    pub validity_days: Option<u32>,
    /// pathLenConstraint: how many CA levels may follow below this one.
    pub path_len: Option<u8>,
    /// None = a shared CA (global administrators only).
    pub organization_id: Option<OrganizationId>,
    /// cRLDistributionPoints URLs for the certificates this CA issues.
    pub crl_distribution_points: Vec<String>,
    /// OCSP responder URLs for the certificates this CA issues.
    pub ocsp_urls: Vec<String>,
    /// caIssuers URLs (where this CA's certificate is published) for the
    /// certificates it issues.
    pub ca_issuers_urls: Vec<String>,
    /// Name constraints: the only names this CA (and every CA below it) may
    /// certify, per form; a form not listed stays open. Written into a
    /// critical NameConstraints extension and enforced at issuance.
    pub permitted_subtrees: Vec<NameSubtree>,
    /// Names this CA and every CA below it must never certify; they win
    /// over `permitted_subtrees`.
    pub excluded_subtrees: Vec<NameSubtree>,
    /// Split this CA's CRL into this many partitions (1 to 1024), each
    /// with its own URL below the CA's CRL URL; none: one CRL.
    pub crl_partitions: Option<u32>,
    /// Publish delta CRLs, pointed to (freshestCRL) by complete CRLs and
    /// issued certificates.
    pub delta_crls: bool,
}

impl Default for NewCertificateAuthority {
    fn default() -> Self {
        NewCertificateAuthority {
            subject: DistinguishedName::default(),
            key_algorithm: KeyAlgorithm::EcdsaP256,
            validity_days: None,
            path_len: None,
            organization_id: None,
            crl_distribution_points: Vec::new(),
            ocsp_urls: Vec::new(),
            ca_issuers_urls: Vec::new(),
            permitted_subtrees: Vec::new(),
            excluded_subtrees: Vec::new(),
            crl_partitions: None,
            delta_crls: false,
        }
    }
}

/// Successors followed from a CA named in a request (rollovers of rollovers).
const MAX_ROLLOVER_HOPS: u8 = 16;

/// Longest validity clm gives anything (100 years).
pub const MAX_VALIDITY_DAYS: u32 = 36_500;

/// A CA's lifetime when none is given.
pub const DEFAULT_CA_VALIDITY_DAYS: u32 = 3650;

/// Issued certificates start slightly in the past so a relying party whose
/// clock runs a little behind accepts them at once.
const BACKDATE_SECONDS: i64 = 60;

/// A CA as listed: its certificate row and its issuance URLs.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CertificateAuthority {
    /// The CA's certificate row.
    pub certificate: Certificate,
    /// The URLs the CA writes into what it issues.
    pub issuance_urls: IssuanceUrls,
    /// Set when the CA was just created with the default validity and that
    /// was shortened to end with its issuer; None otherwise (and in listings).
    pub validity_clamp: Option<ValidityClamp>,
}

/// How a new intermediate's default validity was fitted inside its issuer's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ValidityClamp {
    /// The default lifetime that did not fit, in days.
    pub default_days: u32,
    /// The end it got instead: its issuer's end.
    pub not_after: DateTime<Utc>,
}

/// The validity window of a certificate issued now for `days` days.
pub(crate) fn validity_window(days: u32) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    validity_window_at(Utc::now(), days)
}

/// The validity window of a certificate issued at `now` for `days` days.
fn validity_window_at(now: DateTime<Utc>, days: u32) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    if days == 0 || days > MAX_VALIDITY_DAYS {
        return Err(Error::invalid(
            "validity_days",
            format!("must be between 1 and {MAX_VALIDITY_DAYS}, got {days}"),
        ));
    }
    // X.509 times carry whole seconds; truncating keeps row and DER equal.
    let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    Ok((
        crate::service::shifted(
            "validity_days",
            now,
            chrono::Duration::seconds(BACKDATE_SECONDS.saturating_neg()),
        )?,
        crate::service::shifted(
            "validity_days",
            now,
            chrono::Duration::days(i64::from(days)),
        )?,
    ))
}

/// A CA may sign only while in service: not revoked, suspended or expired.
pub(crate) fn ensure_issuer_usable(issuer: &LoadedIssuer, not_after: DateTime<Utc>) -> Result<()> {
    let row = &issuer.row;
    if let Some(retired_at) = issuer.rollover.retired_at {
        return Err(Error::conflict(format!(
            "CA {} was retired at {retired_at} by its rollover and signs no certificates (only CRLs)",
            row.certificate_id
        )));
    }
    if !matches!(
        row.status,
        CertificateStatus::Active | CertificateStatus::Expiring
    ) {
        return Err(Error::conflict(format!(
            "CA {} is {} and cannot issue",
            row.certificate_id, row.status
        )));
    }
    let now = Utc::now();
    if row.not_after <= now || row.not_before > now {
        return Err(Error::conflict(format!(
            "CA {} is outside its validity ({} to {}) and cannot issue",
            row.certificate_id, row.not_before, row.not_after
        )));
    }
    if not_after > row.not_after {
        let remaining = row.not_after.signed_duration_since(now).num_days();
        return Err(Error::invalid(
            "validity_days",
            format!(
                "the certificate would end {not_after}, after CA {} expires ({}); at most {remaining} days remain",
                row.certificate_id, row.not_after
            ),
        ));
    }
    Ok(())
}

fn check_urls(urls: &IssuanceUrls) -> Result<()> {
    for (field, list) in [
        ("crl_distribution_points", &urls.crl_distribution_points),
        ("ocsp_urls", &urls.ocsp_urls),
        ("ca_issuers_urls", &urls.ca_issuers_urls),
    ] {
        for (index, url) in list.iter().enumerate() {
            SubjectAlternativeName::Uri(url.clone())
                .validate()
                .map_err(|reason| Error::invalid(format!("{field}[{index}]"), reason))?;
        }
    }
    Ok(())
}

impl Clm {
    /// Partitions and deltas are published under the CA's CRL URL, so they
    /// need one: given, or derived from the public base URL.
    fn check_crl_settings(&self, urls: &IssuanceUrls) -> Result<()> {
        if let Some(partitions) = urls.crl_partitions
            && !(1..=MAX_CRL_PARTITIONS).contains(&partitions)
        {
            return Err(Error::invalid(
                "crl_partitions",
                format!("must be 1 to {MAX_CRL_PARTITIONS}, got {partitions}"),
            ));
        }
        // The CA's id only shapes the derived URLs, not whether there are any.
        let has_crl_url = !urls
            .clone()
            .or_derived(
                self.config().public_base_url.as_deref(),
                crate::model::CertificateId::new(),
            )
            .crl_distribution_points
            .is_empty();
        if (urls.crl_partitions.is_some() || urls.delta_crls) && !has_crl_url {
            return Err(Error::invalid(
                if urls.crl_partitions.is_some() {
                    "crl_partitions"
                } else {
                    "delta_crls"
                },
                "needs a CRL URL to publish under: give crl_distribution_points or configure a public base URL",
            ));
        }
        Ok(())
    }
}

/// The `certificate_requests` row recording an issuance (or a request that
/// waits). Subject, SANs and key are what the certificate carries.
#[allow(clippy::too_many_arguments)]
pub(crate) fn request_row(
    actor: &Actor,
    subject: &DistinguishedName,
    sans: &[SubjectAlternativeName],
    kind: CertificateKind,
    validity_days: u32,
    key_algorithm: &str,
    key_bits: u32,
    status: RequestStatus,
) -> CertificateRequest {
    let at = crate::store::now();
    let id = CertificateRequestId::new();
    CertificateRequest {
        id,
        request_id: format!("req_{}", id.as_uuid().simple()),
        csr_pem: None,
        common_name: subject.common_name.clone().filter(|cn| !cn.is_empty()),
        subject_dn: subject.to_rfc4514(),
        subject_alternative_names: sqlx::types::Json(sans.to_vec()),
        key_algorithm: key_algorithm.to_string(),
        key_size: i32::try_from(key_bits).unwrap_or(i32::MAX),
        certificate_kind: kind,
        validity_days: i32::try_from(validity_days).unwrap_or(i32::MAX),
        status,
        issuer_certificate_id: None,
        certificate_id: None,
        renewal_of_certificate_id: None,
        reuse_key: false,
        requested_by_user_id: actor.user_id(),
        owner_user_id: None,
        organization_id: None,
        policy_id: None,
        workflow_instance_id: None,
        failure_reason: None,
        expires_at: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

/// The secure audit entry for one signature made with a CA's key.
pub(crate) fn ca_key_used(issuer: &Certificate, signed: &Certificate) -> AuditEntry {
    AuditEntry::new("ca_key.used", "sign")
        .resource("certificate", issuer.id)
        .org(issuer.organization_id)
        .details(json!({
            "ca_certificate_id": issuer.certificate_id,
            "signed_certificate_id": signed.certificate_id,
            "signed_serial_number": signed.serial_number,
        }))
}

/// A new CA's validity window. An explicit `days` is taken as given (the
/// issuer check refuses one that outlives the issuer); the default ends no
/// later than the issuer, reported as a clamp. Computed before the key is
/// generated, so a slow key does not move it.
fn ca_validity(
    parent: Option<&LoadedIssuer>,
    days: Option<u32>,
) -> Result<(DateTime<Utc>, DateTime<Utc>, Option<ValidityClamp>)> {
    let (not_before, not_after) = validity_window(days.unwrap_or(DEFAULT_CA_VALIDITY_DAYS))?;
    let Some(parent) = parent else {
        return Ok((not_before, not_after, None));
    };
    // Nested inside the issuer's window at the start too (an issuer
    // created less than the backdating ago).
    let not_before = not_before.max(parent.row.not_before);
    match days {
        None if not_after > parent.row.not_after => Ok((
            not_before,
            parent.row.not_after,
            Some(ValidityClamp {
                default_days: DEFAULT_CA_VALIDITY_DAYS,
                not_after: parent.row.not_after,
            }),
        )),
        _ => Ok((not_before, not_after, None)),
    }
}

/// Every CA above a new sub-CA must allow one more CA level below it: the
/// CAs between it and the new one, plus the new one (the issuer's own
/// limit is the builder's check).
fn check_chain_path_lengths(parent: &LoadedIssuer) -> Result<()> {
    for (depth, der) in parent.ancestors.iter().enumerate() {
        let ancestor = parse_certificate_der(der)?;
        let below = depth.saturating_add(2);
        if let Some(limit) = ancestor.path_len
            && below > usize::from(limit)
        {
            return Err(Error::invalid(
                "issuer_id",
                format!(
                    "CA {} allows {limit} CA level(s) below it (pathLenConstraint); a CA here would be level {below}",
                    ancestor.subject_dn
                ),
            ));
        }
    }
    Ok(())
}

/// A sub-CA's subject, and each of its own permitted subtrees, must stay
/// inside the name constraints of its issuer's chain: refused as a
/// `name_constraints` policy violation otherwise.
fn check_sub_ca_names(
    parent: &LoadedIssuer,
    subject: &DistinguishedName,
    constraints: Option<&NameConstraints>,
) -> Result<()> {
    let own: &[Subtree] = constraints.map_or(&[], |c| c.permitted.as_slice());
    match policy_check::name_constraints(subject, &[], Some(own), &parent.name_constraints) {
        Some(outcome) if !outcome.passed => {
            Err(policy_check::refuse(policy_check::violations(&[outcome])))
        }
        _ => Ok(()),
    }
}

/// The options that would create a CA like `ca` again (subject, key
/// algorithm, lifetime, path length, organization, URLs, name
/// constraints, CRL partitions and deltas): what a successor CA copies.
/// URLs derived from `public_base_url` name `ca` itself, so they are not
/// copied: the successor derives its own.
pub(crate) fn creation_options(
    ca: &LoadedIssuer,
    public_base_url: Option<&str>,
) -> Result<NewCertificateAuthority> {
    let certificate = &ca.certificate;
    let key = ca.key.info();
    let days = certificate
        .not_after
        .signed_duration_since(certificate.not_before)
        .num_days();
    let to_request = |list: &[Subtree]| -> Result<Vec<NameSubtree>> {
        list.iter().map(Subtree::to_request).collect()
    };
    let constraints = NameConstraints::of_certificate(&certificate.der)?.unwrap_or_default();
    let derived = IssuanceUrls::default().or_derived(public_base_url, ca.row.id);
    let urls = &ca.issuance_urls;
    let explicit = |own: &Vec<String>, derived: &Vec<String>| {
        if public_base_url.is_some() && own == derived {
            Vec::new()
        } else {
            own.clone()
        }
    };
    Ok(NewCertificateAuthority {
        subject: DistinguishedName::parse(&certificate.subject_dn)?,
        key_algorithm: key.algorithm,
        validity_days: Some(
            u32::try_from(days)
                .unwrap_or(DEFAULT_CA_VALIDITY_DAYS)
                .clamp(1, MAX_VALIDITY_DAYS),
        ),
        path_len: certificate.path_len,
        organization_id: ca.row.organization_id,
        crl_distribution_points: explicit(
            &urls.crl_distribution_points,
            &derived.crl_distribution_points,
        ),
        ocsp_urls: explicit(&urls.ocsp_urls, &derived.ocsp_urls),
        ca_issuers_urls: explicit(&urls.ca_issuers_urls, &derived.ca_issuers_urls),
        permitted_subtrees: to_request(&constraints.permitted)?,
        excluded_subtrees: to_request(&constraints.excluded)?,
        crl_partitions: urls.crl_partitions,
        delta_crls: urls.delta_crls,
    })
}

impl Clm {
    /// The CA `id` for signing on behalf of `actor`: visible to the actor
    /// (else NotFound, like a missing one), usable for `organization`, in service.
    pub(crate) async fn signing_issuer(
        &self,
        actor: &Actor,
        id: CertificateId,
        organization: Option<OrganizationId>,
    ) -> Result<Arc<LoadedIssuer>> {
        let mut issuer = match self.load_issuer(id).await {
            Err(Error::NotFound { .. }) => {
                return Err(Error::not_found("certificate authority", id));
            }
            other => other?,
        };
        if !actor.reaches(issuer.row.organization_id) {
            return Err(Error::not_found("certificate authority", id));
        }
        // A CA rolled over hands what names it to its successor (of the same
        // organization), through as many rollovers as it has had.
        let mut hops = 0u8;
        while let Some(successor) = issuer.rollover.successor {
            hops = hops.saturating_add(1);
            if hops > MAX_ROLLOVER_HOPS {
                return Err(Error::conflict(format!(
                    "CA {} has more than {MAX_ROLLOVER_HOPS} successors in a row",
                    issuer.row.certificate_id
                )));
            }
            issuer = self.load_issuer(successor).await?;
        }
        if issuer.row.organization_id.is_some() && issuer.row.organization_id != organization {
            return Err(Error::invalid(
                "issuer_id",
                format!(
                    "CA {} belongs to another organization than the certificate",
                    issuer.row.certificate_id
                ),
            ));
        }
        Ok(issuer)
    }

    /// Creates a self-signed root CA with a new key.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn create_root_ca(
        &self,
        actor: &Actor,
        new: NewCertificateAuthority,
    ) -> Result<CertificateAuthority> {
        self.authorize(
            actor,
            Access::new("authorities", "create").in_org(new.organization_id),
        )
        .await?;
        // Boxed: CA creation holds much across its awaits; callers keep a pointer.
        Box::pin(self.create_ca(actor, None, new, None)).await
    }

    /// Creates an intermediate CA with a new key, signed by the CA `issuer_id`.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn create_intermediate_ca(
        &self,
        actor: &Actor,
        issuer_id: CertificateId,
        new: NewCertificateAuthority,
    ) -> Result<CertificateAuthority> {
        self.authorize(
            actor,
            Access::new("authorities", "create").in_org(new.organization_id),
        )
        .await?;
        let parent = self
            .signing_issuer(actor, issuer_id, new.organization_id)
            .await?;
        // A subordinate CA extends its parent's trust: it is created by whoever
        // may create CAs where the parent lives (a shared root: the global
        // administrators), not by any organization that may use the parent.
        self.authorize(
            actor,
            Access::new("authorities", "create").in_org(parent.row.organization_id),
        )
        .await?;
        Box::pin(self.create_ca(actor, Some(parent), new, None)).await
    }

    /// Signs and stores a CA: self-signed without `parent`. `id` fixes the
    /// new row's id (a rollover chooses it before writing, so a stage
    /// interrupted after the write finds the CA it made).
    pub(crate) async fn create_ca(
        &self,
        actor: &Actor,
        parent: Option<Arc<LoadedIssuer>>,
        new: NewCertificateAuthority,
        id: Option<CertificateId>,
    ) -> Result<CertificateAuthority> {
        if new.subject.is_empty() {
            return Err(Error::invalid(
                "subject",
                "a CA certificate needs a non-empty subject",
            ));
        }
        // Its metadata (core) names the organization: one that does not
        // exist would leave the CA stored without metadata.
        self.ensure_core_references(actor, None, new.organization_id)
            .await?;
        new.subject.validate()?;
        let urls = IssuanceUrls {
            crl_distribution_points: new.crl_distribution_points.clone(),
            ocsp_urls: new.ocsp_urls.clone(),
            ca_issuers_urls: new.ca_issuers_urls.clone(),
            crl_partitions: new.crl_partitions,
            delta_crls: new.delta_crls,
        };
        check_urls(&urls)?;
        self.check_crl_settings(&urls)?;
        let constraints =
            NameConstraints::from_request(&new.permitted_subtrees, &new.excluded_subtrees)?;
        let (not_before, not_after, validity_clamp) =
            ca_validity(parent.as_deref(), new.validity_days)?;
        let kind = match &parent {
            None => CertificateKind::RootCa,
            Some(parent) => {
                ensure_issuer_usable(parent, not_after)?;
                check_chain_path_lengths(parent)?;
                check_sub_ca_names(parent, &new.subject, constraints.as_ref())?;
                CertificateKind::IntermediateCa
            }
        };
        let mut template =
            CertificateTemplate::new(new.subject.clone(), kind, not_before, not_after);
        template.path_len = new.path_len;
        template.serial = random_serial();
        template.name_constraints = constraints;
        if let Some(parent) = &parent {
            let parent_urls = &parent.issuance_urls;
            (template.crl_distribution_points, template.freshest_crl_urls) =
                parent_urls.revocation_pointers(&template.serial);
            template.ocsp_urls = parent_urls.ocsp_urls.clone();
            template.ca_issuers_urls = parent_urls.ca_issuers_urls.clone();
        }

        let algorithm = new.key_algorithm;
        let signer = parent.clone();
        let (key, der) = self
            .run_cpu(move || {
                let key = KeyPair::generate(algorithm)?;
                let issuer = match &signer {
                    None => Issuer::SelfSigned(&key),
                    Some(parent) => Issuer::Ca {
                        certificate: &parent.certificate,
                        key: &parent.key,
                    },
                };
                let der = build_certificate(&template, &key.public_key_der(), issuer)?;
                let chain = signer.as_ref().map(|p| p.chain_der()).unwrap_or_default();
                chain_check::verify_issued(&der, kind, &chain, Utc::now())?;
                Ok((key, der))
            })
            .await?;
        let parsed = parse_certificate_der(&der)?;

        let ownership = Ownership {
            organization_id: new.organization_id,
            ..Ownership::default()
        };
        let row = certificate_row_with_id(
            id.unwrap_or_default(),
            &parsed,
            kind,
            CertificateSource::Issued,
            parent.as_ref().map(|p| p.row.id),
            &ownership,
        );
        let private_key = self.seal_private_key(row.id, &key)?;
        let validity_days = u32::try_from(
            row.not_after
                .signed_duration_since(row.not_before)
                .num_days(),
        )
        .unwrap_or(0);
        let mut request = request_row(
            actor,
            &new.subject,
            &[],
            kind,
            validity_days,
            algorithm.as_str(),
            algorithm.bits(),
            RequestStatus::Issued,
        );
        request.issuer_certificate_id = parent.as_ref().map(|p| p.row.id);
        request.certificate_id = Some(row.id);
        request.organization_id = new.organization_id;

        let signer_row = parent.as_ref().map(|p| &p.row).unwrap_or(&row);
        let key_use = vec![ca_key_used(signer_row, &row)];
        let audit = AuditEntry::new("certificate_authority.created", "create")
            .resource("certificate", row.id)
            .org(row.organization_id)
            .details(json!({
                "certificate_id": row.certificate_id,
                "kind": kind,
                "subject_dn": row.subject_dn,
                "serial_number": row.serial_number,
                "key_algorithm": algorithm.as_str(),
                "issuer_certificate_id": row.issuer_certificate_id,
                "path_len": row.path_len,
                "issuance_urls": urls,
                "permitted_subtrees": new.permitted_subtrees,
                "excluded_subtrees": new.excluded_subtrees,
                "not_after": row.not_after,
                "validity_clamp": validity_clamp,
            }));
        let write = CertificateWrite {
            certificate: row,
            private_key: Some(private_key),
            audit,
            issuance: IssuanceExtras {
                request: Some(RequestRow::Insert(request)),
                key_use,
                issuance_urls: Some(urls.clone()),
                ..IssuanceExtras::default()
            },
        };
        let certificate = self
            .write_certificates(actor, vec![write])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("CA write returned no certificate".into()))?;
        Ok(CertificateAuthority {
            certificate,
            issuance_urls: urls,
            validity_clamp,
        })
    }

    /// CAs clm can sign with (it holds their keys), that the actor can see:
    /// its organizations' and the shared ones. Oldest first.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn list_authorities(&self, actor: &Actor) -> Result<Vec<CertificateAuthority>> {
        self.authorize(actor, Access::new("authorities", "read"))
            .await?;
        let mut conn = self.databases().acquire_secure_read().await?;
        let rows = certificates::list_signing_authorities(
            &mut conn.conn(),
            actor.organizations_where("authorities", "read").as_ref(),
        )
        .await?;
        rows.into_iter()
            .map(|(certificate, urls)| {
                let issuance_urls = match urls {
                    Some(json) => serde_json::from_value(json).map_err(|err| {
                        Error::Internal(format!(
                            "CA {} has unreadable issuance_urls: {err}",
                            certificate.certificate_id
                        ))
                    })?,
                    None => IssuanceUrls::default(),
                };
                Ok(CertificateAuthority {
                    certificate,
                    issuance_urls,
                    validity_clamp: None,
                })
            })
            .collect()
    }
}
