//! Issuance under policy: from a submitted CSR or with a key clm generates,
//! dry runs, renewal, and the audited export of private keys.
//!
//! Every path resolves a `Plan` first (inputs, issuer, policy, key facts),
//! judges it, and only then signs. Nothing is written before the policy and
//! the issuer have said yes; then the certificate, its sealed key, the
//! request row and the audit rows commit in one secure transaction.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tracing::Instrument;

use crate::crypto::{
    CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, build_certificate,
    chain_check, parse_certificate_der, parse_certificates, parse_csr, spki_sha256,
};
use crate::model::{
    Certificate, CertificateId, CertificateKind, CertificateRequest, CertificateRequestId,
    CertificateSource, OrganizationId, Policy, PolicyId, RequestStatus, SubjectAlternativeName,
    UserId, WorkflowInstanceId,
};
use crate::service::actor::{Access, Actor};
use crate::service::audit::{AuditEntry, append};
use crate::service::authorities::{
    ca_key_used, ensure_issuer_usable, request_row, validity_window,
};
use crate::service::certificates::{
    CertificateWrite, IssuanceExtras, LoadedIssuer, Ownership, RequestRow, certificate_row_with_id,
};
use crate::service::policy_check::{self, PolicyInput, RuleOutcome};
use crate::service::workflows::WorkflowInstanceView;
use crate::store::audit::AuditLogKind;
use crate::store::certificate_requests::{self, CertificateRequests};
use crate::store::certificates::Certificates;
use crate::store::organizations::Organizations;
use crate::store::policies::Policies;
use crate::store::users::Users;
use crate::store::{self, private_keys};
use crate::{Clm, Error, Result};

/// Where the certificate's key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// clm generates the key and keeps it sealed (export is separate).
    Generate(KeyAlgorithm),
    /// A PKCS#10 CSR (PEM or DER as text); its signature must verify. An
    /// empty subject / SAN list in the request is taken from the CSR.
    Csr(String),
}

/// A certificate to issue.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// The CA that signs.
    pub issuer_id: CertificateId,
    /// Required unless the actor is a global administrator.
    pub policy_id: Option<PolicyId>,
    /// The subject; may be empty for a certificate named by its SANs alone
    /// (or taken from the CSR).
    pub subject: DistinguishedName,
    /// Subject alternative names (DNS, IP, email, URI); the policy checks each.
    pub sans: Vec<SubjectAlternativeName>,
    /// What the certificate is for (`tls_server`, `code_signing`...): decides
    /// its key usages and basic constraints.
    pub kind: CertificateKind,
    /// Lifetime in days, 1 to 36500 and at most the policy's `max_validity_days`.
    pub validity_days: u32,
    /// Generate a new key, or certify the key of a CSR.
    pub key: KeySource,
    /// Defaults to the requesting user.
    pub owner_user_id: Option<UserId>,
    /// The tenant the certificate belongs to; None: shared. Needs
    /// `certificates:create` there.
    pub organization_id: Option<OrganizationId>,
}

/// What an issuance did: signed, or left a request waiting for approval.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IssuanceOutcome {
    /// Signed and stored.
    Issued {
        /// The new certificate's row.
        certificate: Box<Certificate>,
    },
    /// The policy requires approval: the request waits in a workflow.
    Pending {
        /// The request, `pending_approval`, linked to its workflow instance.
        request: Box<CertificateRequest>,
    },
}

impl IssuanceOutcome {
    /// The certificate when one was issued.
    pub fn certificate(&self) -> Option<&Certificate> {
        match self {
            IssuanceOutcome::Issued { certificate } => Some(certificate),
            IssuanceOutcome::Pending { .. } => None,
        }
    }

    /// The certificate, or a Conflict naming the request that waits.
    pub fn into_certificate(self) -> Result<Certificate> {
        match self {
            IssuanceOutcome::Issued { certificate } => Ok(*certificate),
            IssuanceOutcome::Pending { request } => Err(Error::conflict(format!(
                "request {} waits for approval; no certificate was issued",
                request.request_id
            ))),
        }
    }
}

/// What a dry run would issue.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct IssuanceSummary {
    /// The CA that would sign.
    pub issuer_certificate_id: CertificateId,
    /// The CA's subject (RFC 4514), the certificate's issuer name.
    pub issuer_dn: String,
    /// The subject that would be written (RFC 4514).
    pub subject_dn: String,
    /// The SANs that would be written.
    pub subject_alternative_names: Vec<SubjectAlternativeName>,
    /// What the certificate would be for.
    pub kind: CertificateKind,
    /// "RSA", "ECDSA" or "Ed25519".
    pub key_algorithm: String,
    /// RSA modulus or curve size in bits.
    pub key_size: u32,
    /// Start of validity (issuance time, backdated a minute for clock skew).
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// The policy that would govern the issuance; None without one.
    pub policy_id: Option<PolicyId>,
    /// That policy's current version.
    pub policy_version: Option<i32>,
    /// cRLDistributionPoints URLs the CA would write.
    pub crl_distribution_points: Vec<String>,
    /// OCSP responder URLs the CA would write.
    pub ocsp_urls: Vec<String>,
    /// caIssuers URLs the CA would write.
    pub ca_issuers_urls: Vec<String>,
}

/// A dry run's verdict: what would be issued, and every check with its result.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DryRunReport {
    /// The certificate that would be issued if every rule passes.
    pub would_issue: IssuanceSummary,
    /// The policy's rules, `name_constraints` when the issuer's chain has
    /// any, then `issuer` (the CA can sign this validity).
    pub rules: Vec<RuleOutcome>,
    /// True when every rule passed.
    pub allowed: bool,
    /// True when the policy makes the request wait for approval.
    pub requires_approval: bool,
    /// What would be issued but deserves a look: a TLS server certificate
    /// without any revocation pointer (no CRL URL, no OCSP URL), which
    /// public-trust linters flag.
    pub warnings: Vec<String>,
}

/// How to renew.
#[derive(
    Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields, default)]
pub struct RenewOptions {
    /// Keep the current key (default: a new key of the same algorithm).
    pub reuse_key: bool,
    /// Default: the current certificate's validity, capped by the policy.
    pub validity_days: Option<u32>,
}

/// The key a plan signs for.
enum PlannedKey {
    Generate(KeyAlgorithm),
    /// Only the public key is known (a CSR, or a certificate issued from one).
    Public {
        spki: Vec<u8>,
        family: String,
        bits: u32,
    },
    /// A key clm holds, reused on renewal.
    Existing(Box<KeyPair>),
}

impl PlannedKey {
    /// The public key when it is not fresh: a CSR's, or a reused one. Only
    /// those can be compromised keys.
    fn known_spki(&self) -> Option<Vec<u8>> {
        match self {
            PlannedKey::Generate(_) => None,
            PlannedKey::Public { spki, .. } => Some(spki.clone()),
            PlannedKey::Existing(key) => Some(key.public_key_der()),
        }
    }

    fn facts(&self) -> (String, u32, String) {
        match self {
            PlannedKey::Generate(algorithm) => (
                algorithm.family().to_string(),
                algorithm.bits(),
                algorithm.as_str().to_string(),
            ),
            PlannedKey::Public { family, bits, .. } => (family.clone(), *bits, family.clone()),
            PlannedKey::Existing(key) => {
                let info = key.info();
                (
                    info.family.to_string(),
                    info.bits,
                    info.algorithm.as_str().to_string(),
                )
            }
        }
    }
}

/// Everything resolved and judged, nothing written yet.
struct Plan {
    issuer: Arc<LoadedIssuer>,
    /// Shared with the policy cache, not copied per issuance.
    policy: Option<Arc<Policy>>,
    subject: DistinguishedName,
    sans: Vec<SubjectAlternativeName>,
    kind: CertificateKind,
    validity_days: u32,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    key: PlannedKey,
    csr_pem: Option<String>,
    ownership: Ownership,
    renewal_of: Option<CertificateId>,
    reuse_key: bool,
    /// Audit entries for key material opened while planning (a reused key).
    key_use: Vec<AuditEntry>,
    outcomes: Vec<RuleOutcome>,
    /// Why the issuer cannot sign this (inactive, validity past its own).
    issuer_problem: Option<Error>,
}

impl Plan {
    fn summary(&self) -> IssuanceSummary {
        let (family, bits, _) = self.key.facts();
        let urls = &self.issuer.issuance_urls;
        IssuanceSummary {
            issuer_certificate_id: self.issuer.row.id,
            issuer_dn: self.issuer.row.subject_dn.clone(),
            subject_dn: self.subject.to_rfc4514(),
            subject_alternative_names: self.sans.clone(),
            kind: self.kind,
            key_algorithm: family,
            key_size: bits,
            not_before: self.not_before,
            not_after: self.not_after,
            policy_id: self.policy.as_ref().map(|p| p.id),
            policy_version: self.policy.as_ref().map(|p| p.version),
            crl_distribution_points: urls.crl_distribution_points.clone(),
            ocsp_urls: urls.ocsp_urls.clone(),
            ca_issuers_urls: urls.ca_issuers_urls.clone(),
        }
    }

    fn requires_approval(&self) -> bool {
        self.policy
            .as_ref()
            .is_some_and(|p| p.policy_rules.0.require_approval)
    }

    /// The refusal, if any: every violated policy rule at once, then the issuer.
    fn refusal(&mut self) -> Option<Error> {
        let violations = policy_check::violations(&self.outcomes);
        if !violations.is_empty() {
            return Some(policy_check::refuse(violations));
        }
        self.issuer_problem.take()
    }

    fn request(&self, actor: &Actor, status: RequestStatus) -> CertificateRequest {
        let (_, bits, algorithm) = self.key.facts();
        let mut request = request_row(
            actor,
            &self.subject,
            &self.sans,
            self.kind,
            self.validity_days,
            &algorithm,
            bits,
            status,
        );
        request.csr_pem = self.csr_pem.clone();
        request.issuer_certificate_id = Some(self.issuer.row.id);
        request.renewal_of_certificate_id = self.renewal_of;
        request.reuse_key = self.reuse_key;
        request.owner_user_id = self.ownership.owner_user_id;
        request.organization_id = self.ownership.organization_id;
        request.policy_id = self.ownership.policy_id;
        request
    }
}

/// Key algorithm of a stored key from its row's family and size.
pub(crate) fn algorithm_of(family: &str, bits: i32) -> Result<KeyAlgorithm> {
    match (family, bits) {
        ("RSA", 2048) => Ok(KeyAlgorithm::Rsa2048),
        ("RSA", 3072) => Ok(KeyAlgorithm::Rsa3072),
        ("RSA", 4096) => Ok(KeyAlgorithm::Rsa4096),
        ("ECDSA", 256) => Ok(KeyAlgorithm::EcdsaP256),
        ("ECDSA", 384) => Ok(KeyAlgorithm::EcdsaP384),
        ("Ed25519", _) => Ok(KeyAlgorithm::Ed25519),
        _ => Err(Error::invalid(
            "key_algorithm",
            format!("clm cannot generate a {family} {bits}-bit key"),
        )),
    }
}

/// The SANs as they are signed ([`SubjectAlternativeName::normalized`]),
/// repeats dropped; a name that does not normalize is an error naming it.
fn normalized_sans(sans: Vec<SubjectAlternativeName>) -> Result<Vec<SubjectAlternativeName>> {
    let mut out: Vec<SubjectAlternativeName> = Vec::with_capacity(sans.len());
    for (index, san) in sans.iter().enumerate() {
        let san = san.normalized().map_err(|reason| {
            Error::invalid(format!("subject_alternative_names[{index}]"), reason)
        })?;
        if !out.contains(&san) {
            out.push(san);
        }
    }
    Ok(out)
}

fn subject_of(subject_dn: &str) -> Result<DistinguishedName> {
    if subject_dn.trim().is_empty() {
        Ok(DistinguishedName::default())
    } else {
        DistinguishedName::parse(subject_dn)
    }
}

impl Clm {
    /// Resolves and judges an issuance. Reads only.
    #[allow(clippy::too_many_arguments)]
    async fn plan(
        &self,
        actor: &Actor,
        request: IssueRequest,
        key: Option<PlannedKey>,
        renewal_of: Option<CertificateId>,
        reuse_key: bool,
        key_use: Vec<AuditEntry>,
    ) -> Result<Plan> {
        if matches!(
            request.kind,
            CertificateKind::RootCa | CertificateKind::IntermediateCa | CertificateKind::Imported
        ) {
            return Err(Error::invalid(
                "kind",
                format!(
                    "{} is not issued here; create CAs with create_root_ca / create_intermediate_ca",
                    request.kind
                ),
            ));
        }
        let (not_before, not_after) = validity_window(request.validity_days)?;
        let mut subject = request.subject;
        let mut sans = request.sans;
        let mut csr_pem = None;
        let key = match (key, request.key) {
            (Some(key), _) => key,
            (None, KeySource::Generate(algorithm)) => PlannedKey::Generate(algorithm),
            (None, KeySource::Csr(pem)) => {
                let csr = parse_csr(pem.as_bytes())?;
                if subject.is_empty() {
                    subject = csr.subject.clone();
                }
                if sans.is_empty() {
                    sans = csr.subject_alternative_names.clone();
                }
                csr_pem = Some(crate::crypto::der_to_pem(
                    crate::crypto::PemLabel::CertificateRequest,
                    &csr.der,
                ));
                PlannedKey::Public {
                    spki: csr.public_key_der,
                    family: csr.key_algorithm,
                    bits: csr.key_size,
                }
            }
        };
        subject.validate()?;
        if subject.is_empty() && sans.is_empty() {
            return Err(Error::invalid(
                "subject",
                "is empty; give a subject or at least one subject alternative name",
            ));
        }
        // What is signed is what the policy judges: normalized names.
        let sans = normalized_sans(sans)?;

        let issuer = self
            .signing_issuer(actor, request.issuer_id, request.organization_id)
            .await?;
        let issuer_problem = ensure_issuer_usable(&issuer, not_after).err();
        // Nested inside the issuer's window at the start too (an issuer
        // created less than the backdating ago).
        let not_before = not_before.max(issuer.row.not_before);

        let policy = self
            .governing_policy(actor, request.policy_id, &issuer, request.organization_id)
            .await?;

        let owner_user_id = request.owner_user_id.or(actor.user_id());
        self.ensure_core_references(actor, owner_user_id, request.organization_id)
            .await?;

        let (family, bits, _) = key.facts();
        let mut outcomes = match &policy {
            Some(policy) => policy_check::evaluate(
                policy,
                &PolicyInput {
                    organization_id: request.organization_id,
                    subject: &subject,
                    sans: &sans,
                    kind: request.kind,
                    validity_days: request.validity_days,
                    key_family: &family,
                    key_bits: bits,
                    issuer: Some((issuer.row.id, issuer.row.organization_id)),
                    issuer_predecessors: &issuer.rollover.predecessors,
                },
            ),
            None => Vec::new(),
        };
        // The issuer chain's name constraints bind every issuance, with a
        // policy or without one.
        outcomes.extend(policy_check::name_constraints(
            &subject,
            &sans,
            None,
            &issuer.name_constraints,
        ));
        let ownership = Ownership {
            owner_user_id,
            organization_id: request.organization_id,
            policy_id: policy.as_ref().map(|p| p.id),
            policy_version: policy.as_ref().map(|p| p.version),
            workflow_id: None,
        };
        Ok(Plan {
            issuer,
            policy,
            subject,
            sans,
            kind: request.kind,
            validity_days: request.validity_days,
            not_before,
            not_after,
            key,
            csr_pem,
            ownership,
            renewal_of,
            reuse_key,
            key_use,
            outcomes,
            issuer_problem,
        })
    }

    /// The policy that governs issuing from `issuer` for `organization`:
    /// the one named, if it is visible (its organization and binding of the
    /// CA are rules of its own, judged with the others by
    /// [`policy_check::evaluate`]); a shared policy only when
    /// the organization has none of its own for that CA, so an
    /// organization's rules (approval, names) cannot be stepped around by
    /// naming a laxer shared policy. Only a global administrator issues
    /// without a policy.
    async fn governing_policy(
        &self,
        actor: &Actor,
        named: Option<PolicyId>,
        issuer: &LoadedIssuer,
        organization: Option<OrganizationId>,
    ) -> Result<Option<Arc<Policy>>> {
        let Some(id) = named else {
            if actor.is_global() {
                return Ok(None);
            }
            return Err(Error::invalid(
                "policy_id",
                "is required: only a global administrator issues without a policy",
            ));
        };
        let policy = match self.policy_for_issuance(id).await {
            Err(Error::NotFound { .. }) => return Err(Error::not_found("policy", id)),
            other => other?,
        };
        if !actor.reaches(policy.organization_id) {
            return Err(Error::not_found("policy", id));
        }
        let ca = &issuer.row;
        if policy.organization_id.is_none()
            && let Some(org) = organization
        {
            let own = self.own_policies_binding(org, issuer).await?;
            if !own.is_empty() {
                return Err(Error::invalid(
                    "policy_id",
                    format!(
                        "the organization's own policies govern CA {}: {}",
                        ca.certificate_id,
                        own.join(", ")
                    ),
                ));
            }
        }
        Ok(Some(policy))
    }

    /// Codes of `organization`'s live active policies that bind `ca`.
    async fn own_policies_binding(
        &self,
        organization: OrganizationId,
        ca: &LoadedIssuer,
    ) -> Result<Vec<String>> {
        let mut conn = self.databases().core.acquire().await?;
        let filter = store::policies::PolicyFilter {
            status: Some(crate::model::PolicyStatus::Active),
            organization_ids: Some(vec![organization]),
            ..Default::default()
        };
        let mut codes = Vec::new();
        let mut page = store::PageRequest::first(500);
        loop {
            let found = store::policies::list_policies(&mut conn.conn(), &filter, &page).await?;
            codes.extend(
                found
                    .items
                    .iter()
                    .filter(|p| {
                        policy_check::policy_binds(
                            p,
                            ca.row.id,
                            &ca.rollover.predecessors,
                            ca.row.organization_id,
                            Some(organization),
                        )
                    })
                    .map(|p| p.policy_code.clone()),
            );
            match found.next_cursor {
                Some(next) => page = store::PageRequest::after(500, Some(next)),
                None => return Ok(codes),
            }
        }
    }

    /// The live policy `id`, from the per-process cache when fresh.
    async fn policy_for_issuance(&self, id: PolicyId) -> Result<Arc<Policy>> {
        self.policies()
            .get_or_load(id, || async {
                let mut conn = self.databases().core.acquire().await?;
                store::get::<Policies>(&mut conn.conn(), id, false).await
            })
            .await
    }

    /// The owner and organization a certificate will name must exist in core:
    /// its metadata references them, and a certificate whose metadata can
    /// never be written would stay half-done. The actor's own user and
    /// organizations are known to exist.
    pub(crate) async fn ensure_core_references(
        &self,
        actor: &Actor,
        owner: Option<UserId>,
        organization: Option<OrganizationId>,
    ) -> Result<()> {
        let check_owner = owner.filter(|id| Some(*id) != actor.user_id());
        let check_org = organization.filter(|id| !actor.organization_ids().contains(id));
        if check_owner.is_none() && check_org.is_none() {
            return Ok(());
        }
        let mut conn = self.databases().core.acquire().await?;
        if let Some(id) = check_owner
            && store::find_by::<Users>(&mut conn.conn(), "id", store::id_value(id))
                .await?
                .is_none()
        {
            return Err(Error::invalid("owner_user_id", format!("no user {id}")));
        }
        if let Some(id) = check_org
            && store::find_by::<Organizations>(&mut conn.conn(), "id", store::id_value(id))
                .await?
                .is_none()
        {
            return Err(Error::invalid(
                "organization_id",
                format!("no organization {id}"),
            ));
        }
        Ok(())
    }

    /// Issues a certificate under a policy, or records a request that waits
    /// for approval when the policy requires it. A refusal lists every
    /// violated rule (`Error::PolicyViolation`) and writes nothing.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn issue_certificate(
        &self,
        actor: &Actor,
        request: IssueRequest,
    ) -> Result<IssuanceOutcome> {
        self.authorize(
            actor,
            Access::new("certificates", "create").in_org(request.organization_id),
        )
        .await?;
        let plan = self
            .plan(actor, request, None, None, false, Vec::new())
            .await?;
        self.carry_out(actor, plan).await
    }

    /// What [`Clm::issue_certificate`] would do, with every rule's verdict.
    /// Writes nothing.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn dry_run_issuance(
        &self,
        actor: &Actor,
        request: IssueRequest,
    ) -> Result<DryRunReport> {
        self.authorize(
            actor,
            Access::new("certificates", "create").in_org(request.organization_id),
        )
        .await?;
        let plan = self
            .plan(actor, request, None, None, false, Vec::new())
            .await?;
        if let Some(spki) = plan.key.known_spki() {
            self.refuse_compromised_key(&spki).await?;
        }
        let mut rules = plan.outcomes.clone();
        rules.push(RuleOutcome {
            rule: "issuer".into(),
            passed: plan.issuer_problem.is_none(),
            detail: match &plan.issuer_problem {
                Some(problem) => problem.to_string(),
                None => format!(
                    "CA {} can sign until {}",
                    plan.issuer.row.certificate_id, plan.issuer.row.not_after
                ),
            },
        });
        let would_issue = plan.summary();
        let mut warnings = Vec::new();
        if matches!(
            would_issue.kind,
            CertificateKind::TlsServer | CertificateKind::TlsServerClient
        ) && would_issue.crl_distribution_points.is_empty()
            && would_issue.ocsp_urls.is_empty()
        {
            warnings.push(format!(
                "CA {} writes no CRL or OCSP URL: this TLS server certificate would carry no revocation information; give the CA URLs or configure a public base URL",
                plan.issuer.row.certificate_id
            ));
        }
        Ok(DryRunReport {
            would_issue,
            allowed: rules.iter().all(|r| r.passed),
            requires_approval: plan.requires_approval(),
            rules,
            warnings,
        })
    }

    /// Refuses, parks for approval, or signs and stores.
    async fn carry_out(&self, actor: &Actor, mut plan: Plan) -> Result<IssuanceOutcome> {
        if let Some(refusal) = plan.refusal() {
            return Err(refusal);
        }
        if plan.requires_approval() {
            // Issuance checks again when it writes; a request for a dead key
            // should not wait for approvers first.
            if let Some(spki) = plan.key.known_spki() {
                self.refuse_compromised_key(&spki).await?;
            }
            let request = plan.request(actor, RequestStatus::PendingApproval);
            let mut tx = self.databases().secure.begin().await?;
            certificate_requests::insert(&mut tx.conn(), &request).await?;
            append(
                &mut tx.conn(),
                AuditLogKind::Secure,
                actor,
                AuditEntry::new("certificate_request.created", "create")
                    .resource("certificate_request", request.id)
                    .org(request.organization_id)
                    .details(json!({
                        "request_id": request.request_id,
                        "status": request.status,
                        "policy_id": request.policy_id,
                        "subject_dn": request.subject_dn,
                        "renewal_of_certificate_id": request.renewal_of_certificate_id,
                    })),
            )
            .await?;
            tx.commit().await?;
            let request = self
                .route_for_approval(actor, request, plan.policy.as_deref())
                .await?;
            return Ok(IssuanceOutcome::Pending {
                request: Box::new(request),
            });
        }
        let request = RequestRow::Insert(plan.request(actor, RequestStatus::Issued));
        let certificate = self.sign_and_store(actor, plan, request).await?;
        Ok(IssuanceOutcome::Issued {
            certificate: Box::new(certificate),
        })
    }

    /// Signs the plan and writes certificate, sealed key, request and audit
    /// in one secure transaction (then metadata in core).
    async fn sign_and_store(
        &self,
        actor: &Actor,
        plan: Plan,
        request: RequestRow,
    ) -> Result<Certificate> {
        let issuer = plan.issuer.clone();
        let mut template = CertificateTemplate::new(
            plan.subject.clone(),
            plan.kind,
            plan.not_before,
            plan.not_after,
        );
        template.subject_alternative_names = plan.sans.clone();
        template.serial = crate::crypto::random_serial();
        (template.crl_distribution_points, template.freshest_crl_urls) =
            issuer.issuance_urls.revocation_pointers(&template.serial);
        template.ocsp_urls = issuer.issuance_urls.ocsp_urls.clone();
        template.ca_issuers_urls = issuer.issuance_urls.ca_issuers_urls.clone();

        let key_source = match &plan.key {
            PlannedKey::Generate(_) => "generated",
            PlannedKey::Public { .. } => "public_key",
            PlannedKey::Existing(_) => "reused",
        };
        let signer = issuer.clone();
        let planned_key = plan.key;
        let ocsp_signer = self.ocsp_presigner(issuer.row.id).await;
        let certificate_id = CertificateId::new();
        // Its duration less `work_ms` is the wait for a CPU slot and thread.
        let signing = tracing::debug_span!("issuance_signing", work_ms = tracing::field::Empty);
        let signing_inside = signing.clone();
        let (key, parsed, known_key_sha256, ocsp_response) = self
            .run_cpu(move || {
                let started = std::time::Instant::now();
                let known_key_sha256 = planned_key
                    .known_spki()
                    .map(|spki| spki_sha256(&spki))
                    .transpose()?;
                let (key, spki) = match planned_key {
                    PlannedKey::Generate(algorithm) => {
                        let key = KeyPair::generate(algorithm)?;
                        let spki = key.public_key_der();
                        (Some(key), spki)
                    }
                    PlannedKey::Existing(key) => {
                        let spki = key.public_key_der();
                        (Some(*key), spki)
                    }
                    PlannedKey::Public { spki, .. } => (None, spki),
                };
                let der = build_certificate(
                    &template,
                    &spki,
                    Issuer::Ca {
                        certificate: &signer.certificate,
                        key: &signer.key,
                    },
                )?;
                chain_check::verify_issued(&der, template.kind, &signer.chain_der(), Utc::now())?;
                let parsed = parse_certificate_der(&der)?;
                let ocsp = crate::service::ocsp::presign_good(ocsp_signer, certificate_id, &parsed);
                signing_inside.record("work_ms", started.elapsed().as_secs_f64() * 1000.0);
                Ok((key, parsed, known_key_sha256, ocsp))
            })
            .instrument(signing)
            .await?;

        let mut row = certificate_row_with_id(
            certificate_id,
            &parsed,
            plan.kind,
            CertificateSource::Issued,
            Some(issuer.row.id),
            &plan.ownership,
        );
        row.replaces_certificate_id = plan.renewal_of;
        let private_key = key
            .as_ref()
            .map(|key| self.seal_private_key(row.id, key))
            .transpose()?;
        let request = match request {
            RequestRow::Insert(mut r) => {
                r.status = RequestStatus::Issued;
                r.certificate_id = Some(row.id);
                RequestRow::Insert(r)
            }
            RequestRow::Update(mut r) => {
                r.status = RequestStatus::Issued;
                r.certificate_id = Some(row.id);
                r.failure_reason = None;
                r.issuer_certificate_id = Some(issuer.row.id);
                r.policy_id = plan.ownership.policy_id;
                RequestRow::Update(r)
            }
        };
        let request_id = match &request {
            RequestRow::Insert(r) | RequestRow::Update(r) => r.request_id.clone(),
        };
        let mut key_use = plan.key_use;
        key_use.push(ca_key_used(&issuer.row, &row));
        let audit = AuditEntry::new(
            if plan.renewal_of.is_some() {
                "certificate.renewed"
            } else {
                "certificate.issued"
            },
            if plan.renewal_of.is_some() {
                "renew"
            } else {
                "issue"
            },
        )
        .resource("certificate", row.id)
        .org(row.organization_id)
        .details(json!({
            "certificate_id": row.certificate_id,
            "serial_number": row.serial_number,
            "subject_dn": row.subject_dn,
            "kind": row.certificate_kind,
            "issuer_certificate_id": issuer.row.id,
            "policy_id": row.policy_id,
            "policy_version": row.policy_version,
            "request_id": request_id,
            "key": key_source,
            "replaces_certificate_id": row.replaces_certificate_id,
        }));
        let write = CertificateWrite {
            certificate: row,
            private_key,
            audit,
            issuance: IssuanceExtras {
                request: Some(request),
                key_use,
                issuance_urls: None,
                public_key_sha256: known_key_sha256,
                ocsp_response,
            },
        };
        self.write_certificates(actor, vec![write])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("issuance write returned no certificate".into()))
    }

    /// The key of `old` for reuse: its sealed private key when clm holds one
    /// (opening it is audited with the new certificate), else its public key.
    async fn reusable_key(&self, old: &Certificate) -> Result<(PlannedKey, Vec<AuditEntry>)> {
        let record = {
            let mut conn = self.databases().secure.acquire().await?;
            match private_keys::get_by_certificate(&mut conn.conn(), old.id).await {
                Ok(record) => Some(record),
                Err(Error::NotFound { .. }) => None,
                Err(other) => return Err(other),
            }
        };
        match record {
            Some(record) => {
                self.load_data_key(record.encryption_key_id).await?;
                let key = self.open_private_key(&record)?;
                let audit = AuditEntry::new("private_key.used", "reuse")
                    .resource("certificate", old.id)
                    .org(old.organization_id)
                    .details(json!({"certificate_id": old.certificate_id, "purpose": "renewal with the same key"}));
                Ok((PlannedKey::Existing(Box::new(key)), vec![audit]))
            }
            None => {
                let parsed = parse_certificates(old.certificate_pem.as_bytes())?
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        Error::Internal(format!("certificate {} has no PEM", old.certificate_id))
                    })?;
                Ok((
                    PlannedKey::Public {
                        spki: parsed.public_key_der,
                        family: parsed.key_algorithm,
                        bits: parsed.key_size,
                    },
                    Vec::new(),
                ))
            }
        }
    }

    /// Renews a certificate issued by a CA in clm: same subject, SANs, kind
    /// and issuer, validity under the policy's current version, a new key of
    /// the same algorithm unless `reuse_key`. The new certificate records
    /// the one it replaces; its request records the renewal.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn renew_certificate(
        &self,
        actor: &Actor,
        certificate_id: CertificateId,
        options: RenewOptions,
    ) -> Result<IssuanceOutcome> {
        let old = {
            let mut conn = self.databases().secure.acquire().await?;
            store::get::<Certificates>(&mut conn.conn(), certificate_id, false).await?
        };
        self.authorize_visible(
            actor,
            Access::new("certificates", "renew").in_org(old.organization_id),
            "certificate",
            certificate_id,
        )
        .await?;
        self.refuse_revoked_renewal(&old).await?;
        let Some(issuer_id) = old
            .issuer_certificate_id
            .filter(|_| old.source == CertificateSource::Issued && !old.is_ca)
        else {
            return Err(Error::invalid(
                "certificate_id",
                format!(
                    "certificate {} was not issued by a CA in clm (or is a CA); renew it where it was issued",
                    old.certificate_id
                ),
            ));
        };
        let holds_key = {
            let mut conn = self.databases().secure.acquire().await?;
            match private_keys::get_by_certificate(&mut conn.conn(), old.id).await {
                Ok(_) => true,
                Err(Error::NotFound { .. }) => false,
                Err(other) => return Err(other),
            }
        };
        let (key, key_use) = if options.reuse_key {
            self.reusable_key(&old).await?
        } else if holds_key {
            (
                PlannedKey::Generate(algorithm_of(&old.key_algorithm, old.key_size)?),
                Vec::new(),
            )
        } else {
            return Err(Error::invalid(
                "reuse_key",
                format!(
                    "certificate {} was issued from a CSR and clm holds no key for it: renew with reuse_key, or submit a new CSR",
                    old.certificate_id
                ),
            ));
        };
        let original_days = u32::try_from(
            old.not_after
                .signed_duration_since(old.not_before)
                .num_days()
                .max(1),
        )
        .unwrap_or(1);
        let validity_days = match options.validity_days {
            Some(days) => days,
            None => {
                let max = match old.policy_id {
                    Some(id) => {
                        let mut conn = self.databases().core.acquire().await?;
                        store::find_by::<Policies>(&mut conn.conn(), "id", store::id_value(id))
                            .await?
                            .map(|p| p.policy_rules.0.max_validity_days)
                    }
                    None => None,
                };
                max.map_or(original_days, |max| original_days.min(max))
            }
        };
        let request = IssueRequest {
            issuer_id,
            policy_id: old.policy_id,
            subject: subject_of(&old.subject_dn)?,
            sans: old.subject_alternative_names.0.clone(),
            kind: old.certificate_kind,
            validity_days,
            key: KeySource::Generate(KeyAlgorithm::EcdsaP256), // replaced by `key`
            owner_user_id: old.owner_user_id,
            organization_id: old.organization_id,
        };
        let plan = self
            .plan(
                actor,
                request,
                Some(key),
                Some(old.id),
                options.reuse_key,
                key_use,
            )
            .await?;
        self.carry_out(actor, plan).await
    }

    /// Approves or rejects the waiting step of an instance. Only an eligible
    /// approver may, never the requester; each approver counts once; the
    /// instance is locked so two approvers at once reach one outcome. When
    /// the last approval lands the request is issued.
    ///
    /// Here rather than in `workflows.rs`: issuance depends on the approval
    /// engine (it routes requests into it and takes approved ones out of it),
    /// never the other way round.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn decide_approval(
        &self,
        actor: &Actor,
        instance_id: WorkflowInstanceId,
        approve: bool,
        comment: Option<String>,
    ) -> Result<WorkflowInstanceView> {
        if self
            .record_decision(actor, instance_id, approve, comment)
            .await?
        {
            self.issue_approved(actor, instance_id).await?;
        }
        self.workflow_instance_view(instance_id).await
    }

    /// Retries issuance of an instance that failed after approval.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn retry_workflow(
        &self,
        actor: &Actor,
        instance_id: WorkflowInstanceId,
    ) -> Result<WorkflowInstanceView> {
        self.reopen_for_retry(actor, instance_id).await?;
        self.issue_approved(actor, instance_id).await?;
        self.workflow_instance_view(instance_id).await
    }

    /// Issues the request of an approved instance and has the workflow
    /// record the outcome. An issuance failure is not an error of this call
    /// (the caller reads it from the instance); bookkeeping failures are.
    ///
    /// A request already issued (an earlier run stopped before recording
    /// it, or another caller issued it meanwhile) is not issued again: its
    /// certificate is the outcome. So is one whose write failed after the
    /// certificate was stored (only its metadata is missing, which
    /// [`Clm::reconcile`] repairs).
    pub(crate) async fn issue_approved(
        &self,
        actor: &Actor,
        instance_id: WorkflowInstanceId,
    ) -> Result<()> {
        let (request_id, workflow_id) = self.approved_request(instance_id).await?;
        let outcome = match self.certificate_of_issued_request(request_id).await? {
            Some(certificate) => Ok(certificate),
            None => {
                match self
                    .issue_from_request(actor, request_id, workflow_id)
                    .await
                {
                    Err(err) => self
                        .certificate_of_issued_request(request_id)
                        .await?
                        .ok_or(err),
                    issued => issued,
                }
            }
        };
        failpoint!("workflow.issued")?;
        self.record_issuance_outcome(actor, instance_id, &outcome)
            .await
    }

    /// The certificate of `request_id` when the request is issued.
    async fn certificate_of_issued_request(
        &self,
        request_id: CertificateRequestId,
    ) -> Result<Option<Certificate>> {
        let mut conn = self.databases().secure.acquire().await?;
        let request = store::get::<CertificateRequests>(&mut conn.conn(), request_id, true).await?;
        match (request.status, request.certificate_id) {
            (RequestStatus::Issued, Some(id)) => Ok(Some(
                store::get::<Certificates>(&mut conn.conn(), id, true).await?,
            )),
            _ => Ok(None),
        }
    }

    /// Issues the certificate of a request that waited for approval, under
    /// the policy's current version, once the request is approved;
    /// authorization is the workflow's (approvals). The certificate names
    /// that workflow (`certificates.workflow_id`).
    async fn issue_from_request(
        &self,
        actor: &Actor,
        request_id: CertificateRequestId,
        workflow_id: crate::model::WorkflowId,
    ) -> Result<Certificate> {
        let stored = {
            let mut conn = self.databases().secure.acquire().await?;
            store::get::<CertificateRequests>(&mut conn.conn(), request_id, false).await?
        };
        if !matches!(
            stored.status,
            RequestStatus::PendingApproval | RequestStatus::Approved
        ) {
            return Err(Error::conflict(format!(
                "request {} is {}; only a request waiting for approval (or approved) is issued",
                stored.request_id, stored.status
            )));
        }
        let issuer_id = stored.issuer_certificate_id.ok_or_else(|| {
            Error::invalid(
                "request",
                format!("request {} names no issuer", stored.request_id),
            )
        })?;
        if let Some(old_id) = stored.renewal_of_certificate_id {
            // Revoked while the renewal waited for approval.
            let old = {
                let mut conn = self.databases().secure.acquire().await?;
                store::get::<Certificates>(&mut conn.conn(), old_id, false).await?
            };
            self.refuse_revoked_renewal(&old).await?;
        }
        let (key, key_use) = match (&stored.csr_pem, stored.renewal_of_certificate_id) {
            (Some(_), _) => (None, Vec::new()),
            (None, Some(old_id)) if stored.reuse_key => {
                let old = {
                    let mut conn = self.databases().secure.acquire().await?;
                    store::get::<Certificates>(&mut conn.conn(), old_id, false).await?
                };
                let (key, audit) = self.reusable_key(&old).await?;
                (Some(key), audit)
            }
            (None, _) => (
                Some(PlannedKey::Generate(stored.key_algorithm.parse()?)),
                Vec::new(),
            ),
        };
        let request = IssueRequest {
            issuer_id,
            policy_id: stored.policy_id,
            subject: subject_of(&stored.subject_dn)?,
            sans: stored.subject_alternative_names.0.clone(),
            kind: stored.certificate_kind,
            validity_days: u32::try_from(stored.validity_days).unwrap_or(0),
            key: match &stored.csr_pem {
                Some(pem) => KeySource::Csr(pem.clone()),
                None => KeySource::Generate(KeyAlgorithm::EcdsaP256), // replaced by `key`
            },
            owner_user_id: stored.owner_user_id,
            organization_id: stored.organization_id,
        };
        let mut plan = self
            .plan(
                actor,
                request,
                key,
                stored.renewal_of_certificate_id,
                stored.reuse_key,
                key_use,
            )
            .await?;
        if let Some(refusal) = plan.refusal() {
            return Err(refusal);
        }
        plan.ownership.workflow_id = Some(workflow_id);
        self.sign_and_store(actor, plan, RequestRow::Update(stored))
            .await
    }
}
