//! Input objects of the bindings' operations, each turned into the core's
//! request type. Field names are the core's, in every language.
//!
//! Secrets arrive as plain text (that is what a binding has) and are moved
//! into [`SecretString`] at once.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::crypto::{DistinguishedName, KeyAlgorithm, SecretString};
use crate::model::{
    CertificateId, CertificateKind, CertificateStatus, OrganizationId, Permissions, PolicyRules,
    PolicyStatus, ResourceId, SubjectAlternativeName, UserId, UserStatus, WorkflowDefinition,
    WorkflowId,
};
use crate::service::access::{NewOrganization, NewRole};
use crate::service::audit::AuditCheckpoint;
use crate::service::authorities::NewCertificateAuthority;
use crate::service::identity::{NewApiKey, NewUser, UserUpdate};
use crate::service::inventory::{CertificateSearch, ImportRequest};
use crate::service::issuance::{IssueRequest, KeySource, RenewOptions};
use crate::service::policies::{NewPolicy, PolicyUpdate};
use crate::service::workflows::NewWorkflow;
use crate::store::audit::{AuditFilter, AuditLogKind};
use crate::store::policies::PolicyFilter;
use crate::store::users::UserFilter;
use crate::{ClmConfig, Error, MasterKeySource, Result};

/// A JSON document given as an object or as JSON text, checked by `parse`
/// (which names the field path of a mistake).
fn document<T>(value: Value, parse: fn(&str) -> Result<T>) -> Result<T> {
    match value {
        Value::String(text) => parse(&text),
        other => parse(&other.to_string()),
    }
}

fn optional_document<T>(value: Option<Value>, parse: fn(&str) -> Result<T>) -> Result<Option<T>> {
    value.map(|value| document(value, parse)).transpose()
}

/// Where the data lives and which master key opens it.
///
/// `{"sqlite_dir": "..."}` or `{"secure_url": "postgres://...", "core_url":
/// "postgres://..."}`, plus exactly one of `master_key` (base64 of 32 bytes)
/// or `master_key_file` (with `create_master_key: true` the file is
/// created, mode 0600, when missing), and optionally `max_connections` and
/// `cache_ttl_ms`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenOptions {
    sqlite_dir: Option<String>,
    secure_url: Option<String>,
    core_url: Option<String>,
    master_key: Option<String>,
    master_key_file: Option<String>,
    #[serde(default)]
    create_master_key: bool,
    max_connections: Option<u32>,
    /// How long issuers and policies stay cached (`ClmConfig::cache_ttl`).
    cache_ttl_ms: Option<u64>,
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URLs may carry a password and the key is a secret.
        f.debug_struct("OpenOptions")
            .field("sqlite_dir", &self.sqlite_dir)
            .field(
                "secure_url",
                &self.secure_url.as_ref().map(|_| "[redacted]"),
            )
            .field("core_url", &self.core_url.as_ref().map(|_| "[redacted]"))
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "[redacted]"),
            )
            .field("master_key_file", &self.master_key_file)
            .field("create_master_key", &self.create_master_key)
            .field("max_connections", &self.max_connections)
            .field("cache_ttl_ms", &self.cache_ttl_ms)
            .finish()
    }
}

impl OpenOptions {
    /// Parses the open options object.
    pub fn parse(value: Value) -> Result<Self> {
        super::arguments("options", value)
    }

    pub fn into_config(self) -> Result<ClmConfig> {
        let mut config = match (self.sqlite_dir, self.secure_url, self.core_url) {
            (Some(dir), None, None) => ClmConfig::sqlite(dir),
            (None, Some(secure), Some(core)) => ClmConfig::postgres(secure, core),
            _ => {
                return Err(Error::invalid(
                    "options",
                    "give sqlite_dir, or both secure_url and core_url",
                ));
            }
        };
        let master_key = MasterKeyInput {
            master_key: self.master_key,
            master_key_file: self.master_key_file,
            create_master_key: self.create_master_key,
        };
        config = config.with_master_key(master_key.into_source()?);
        if let Some(max) = self.max_connections {
            config = config.with_max_connections(max);
        }
        if let Some(ms) = self.cache_ttl_ms {
            config = config.with_cache_ttl(std::time::Duration::from_millis(ms));
        }
        Ok(config)
    }
}

/// Exactly one of `master_key` (base64 of 32 bytes) or `master_key_file`
/// (with `create_master_key: true` the file is created, mode 0600, when
/// missing).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterKeyInput {
    master_key: Option<String>,
    master_key_file: Option<String>,
    #[serde(default)]
    create_master_key: bool,
}

impl std::fmt::Debug for MasterKeyInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeyInput")
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "[redacted]"),
            )
            .field("master_key_file", &self.master_key_file)
            .field("create_master_key", &self.create_master_key)
            .finish()
    }
}

impl MasterKeyInput {
    pub fn into_source(self) -> Result<MasterKeySource> {
        match (
            self.master_key,
            self.master_key_file,
            self.create_master_key,
        ) {
            (Some(key), None, false) => Ok(MasterKeySource::Base64(key)),
            (None, Some(path), false) => Ok(MasterKeySource::File(PathBuf::from(path))),
            (None, Some(path), true) => Ok(MasterKeySource::FileOrCreate(PathBuf::from(path))),
            _ => Err(Error::invalid(
                "master_key",
                "give master_key, or master_key_file (with create_master_key to create it)",
            )),
        }
    }
}

/// `{"username", "email", "display_name"?, "password"?, "organization_id"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    username: String,
    email: String,
    display_name: Option<String>,
    password: Option<String>,
    organization_id: Option<OrganizationId>,
}

impl From<UserInput> for NewUser {
    fn from(input: UserInput) -> Self {
        NewUser {
            username: input.username,
            email: input.email,
            display_name: input.display_name,
            password: input.password.map(SecretString::new),
            organization_id: input.organization_id,
        }
    }
}

/// `{"email"?, "display_name"?, "status"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserUpdateInput {
    email: Option<String>,
    display_name: Option<String>,
    status: Option<UserStatus>,
}

impl From<UserUpdateInput> for UserUpdate {
    fn from(input: UserUpdateInput) -> Self {
        UserUpdate {
            email: input.email,
            display_name: input.display_name,
            status: input.status,
        }
    }
}

/// `{"status"?, "search"?, "organization_ids"?}`
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFilterInput {
    status: Option<UserStatus>,
    search: Option<String>,
    organization_ids: Option<Vec<OrganizationId>>,
}

impl From<UserFilterInput> for UserFilter {
    fn from(input: UserFilterInput) -> Self {
        UserFilter {
            status: input.status,
            search: input.search,
            organization_ids: input.organization_ids,
        }
    }
}

/// `{"name", "scopes"? (permissions document), "expires_at"?, "organization_id"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyInput {
    name: String,
    scopes: Option<Value>,
    expires_at: Option<DateTime<Utc>>,
    organization_id: Option<OrganizationId>,
}

impl TryFrom<ApiKeyInput> for NewApiKey {
    type Error = Error;
    fn try_from(input: ApiKeyInput) -> Result<Self> {
        Ok(NewApiKey {
            name: input.name,
            scopes: optional_document(input.scopes, Permissions::parse)?,
            expires_at: input.expires_at,
            organization_id: input.organization_id,
        })
    }
}

/// `{"role_code", "role_name", "permissions", "description"?, "organization_id"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    role_code: String,
    role_name: String,
    description: Option<String>,
    permissions: Value,
    organization_id: Option<OrganizationId>,
}

impl TryFrom<RoleInput> for NewRole {
    type Error = Error;
    fn try_from(input: RoleInput) -> Result<Self> {
        Ok(NewRole {
            role_code: input.role_code,
            role_name: input.role_name,
            description: input.description,
            permissions: document(input.permissions, Permissions::parse)?,
            organization_id: input.organization_id,
        })
    }
}

/// A permissions document (object or JSON text).
pub fn permissions(value: Value) -> Result<Permissions> {
    document(value, Permissions::parse)
}

/// `{"org_code", "name", "description"?, "parent_organization_id"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationInput {
    org_code: String,
    name: String,
    description: Option<String>,
    parent_organization_id: Option<OrganizationId>,
}

impl From<OrganizationInput> for NewOrganization {
    fn from(input: OrganizationInput) -> Self {
        NewOrganization {
            org_code: input.org_code,
            name: input.name,
            description: input.description,
            parent_organization_id: input.parent_organization_id,
        }
    }
}

/// `{"policy_code", "name", "rules"?, "description"?, "status"? ("active"),
/// "organization_id"?, "workflow_id"?}`; `rules` is the policy rules
/// document as an object or as JSON text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    policy_code: String,
    name: String,
    description: Option<String>,
    rules: Option<Value>,
    status: Option<PolicyStatus>,
    organization_id: Option<OrganizationId>,
    workflow_id: Option<WorkflowId>,
}

impl TryFrom<PolicyInput> for NewPolicy {
    type Error = Error;
    fn try_from(input: PolicyInput) -> Result<Self> {
        Ok(NewPolicy {
            policy_code: input.policy_code,
            name: input.name,
            description: input.description,
            rules: optional_document(input.rules, PolicyRules::parse)?.unwrap_or_default(),
            status: input.status.unwrap_or(PolicyStatus::Active),
            organization_id: input.organization_id,
            workflow_id: input.workflow_id,
        })
    }
}

/// `{"name"?, "description"?, "rules"?, "status"?, "workflow_id"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdateInput {
    name: Option<String>,
    description: Option<String>,
    rules: Option<Value>,
    status: Option<PolicyStatus>,
    workflow_id: Option<WorkflowId>,
}

impl TryFrom<PolicyUpdateInput> for PolicyUpdate {
    type Error = Error;
    fn try_from(input: PolicyUpdateInput) -> Result<Self> {
        Ok(PolicyUpdate {
            name: input.name,
            description: input.description,
            rules: optional_document(input.rules, PolicyRules::parse)?,
            status: input.status,
            workflow_id: input.workflow_id,
        })
    }
}

/// `{"status"?, "workflow_id"?, "organization_ids"?}`
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFilterInput {
    status: Option<PolicyStatus>,
    workflow_id: Option<WorkflowId>,
    organization_ids: Option<Vec<OrganizationId>>,
}

impl From<PolicyFilterInput> for PolicyFilter {
    fn from(input: PolicyFilterInput) -> Self {
        PolicyFilter {
            status: input.status,
            workflow_id: input.workflow_id,
            organization_ids: input.organization_ids,
        }
    }
}

/// `{"workflow_code", "name", "definition", "description"?,
/// "organization_id"?, "is_default"? (false)}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowInput {
    workflow_code: String,
    name: String,
    description: Option<String>,
    definition: Value,
    organization_id: Option<OrganizationId>,
    #[serde(default)]
    is_default: bool,
}

impl TryFrom<WorkflowInput> for NewWorkflow {
    type Error = Error;
    fn try_from(input: WorkflowInput) -> Result<Self> {
        Ok(NewWorkflow {
            workflow_code: input.workflow_code,
            name: input.name,
            description: input.description,
            definition: document(input.definition, WorkflowDefinition::parse)?,
            organization_id: input.organization_id,
            is_default: input.is_default,
        })
    }
}

/// `{"subject": {"common_name", ...}, "key_algorithm"? ("ecdsa_p256"),
/// "validity_days"? (3650), "path_len"?, "organization_id"?,
/// "crl_distribution_points"?, "ocsp_urls"?, "ca_issuers_urls"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityInput {
    subject: DistinguishedName,
    key_algorithm: Option<KeyAlgorithmName>,
    validity_days: Option<u32>,
    path_len: Option<u8>,
    organization_id: Option<OrganizationId>,
    #[serde(default)]
    crl_distribution_points: Vec<String>,
    #[serde(default)]
    ocsp_urls: Vec<String>,
    #[serde(default)]
    ca_issuers_urls: Vec<String>,
}

impl TryFrom<AuthorityInput> for NewCertificateAuthority {
    type Error = Error;
    fn try_from(input: AuthorityInput) -> Result<Self> {
        let defaults = NewCertificateAuthority::default();
        Ok(NewCertificateAuthority {
            subject: input.subject,
            key_algorithm: match input.key_algorithm {
                Some(name) => name.parse()?,
                None => defaults.key_algorithm,
            },
            validity_days: input.validity_days.unwrap_or(defaults.validity_days),
            path_len: input.path_len,
            organization_id: input.organization_id,
            crl_distribution_points: input.crl_distribution_points,
            ocsp_urls: input.ocsp_urls,
            ca_issuers_urls: input.ca_issuers_urls,
        })
    }
}

/// A key algorithm by name (`rsa2048`, `ecdsa_p256`, `ed25519`, ...).
#[derive(Deserialize)]
#[serde(transparent)]
pub struct KeyAlgorithmName(String);

impl KeyAlgorithmName {
    pub fn parse(&self) -> Result<KeyAlgorithm> {
        self.0.parse()
    }
}

/// `{"issuer_id", "validity_days", "subject"?, "sans"? ([{"type": "DNS",
/// "value": ...}]), "kind"? ("tls_server"), "key_algorithm"? ("ecdsa_p256")
/// or "csr"? (PEM), "policy_id"?, "owner_user_id"?, "organization_id"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueInput {
    issuer_id: CertificateId,
    validity_days: u32,
    #[serde(default)]
    subject: DistinguishedName,
    #[serde(default)]
    sans: Vec<SubjectAlternativeName>,
    kind: Option<CertificateKind>,
    key_algorithm: Option<KeyAlgorithmName>,
    csr: Option<String>,
    policy_id: Option<crate::model::PolicyId>,
    owner_user_id: Option<UserId>,
    organization_id: Option<OrganizationId>,
}

impl TryFrom<IssueInput> for IssueRequest {
    type Error = Error;
    fn try_from(input: IssueInput) -> Result<Self> {
        let key = match (input.csr, input.key_algorithm) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "key_algorithm",
                    "give a csr or a key_algorithm, not both",
                ));
            }
            (Some(csr), None) => KeySource::Csr(csr),
            (None, Some(name)) => KeySource::Generate(name.parse()?),
            (None, None) => KeySource::Generate(KeyAlgorithm::EcdsaP256),
        };
        Ok(IssueRequest {
            issuer_id: input.issuer_id,
            policy_id: input.policy_id,
            subject: input.subject,
            sans: input.sans,
            kind: input.kind.unwrap_or(CertificateKind::TlsServer),
            validity_days: input.validity_days,
            key,
            owner_user_id: input.owner_user_id,
            organization_id: input.organization_id,
        })
    }
}

/// `{"reuse_key"? (false), "validity_days"?}`
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewInput {
    #[serde(default)]
    reuse_key: bool,
    validity_days: Option<u32>,
}

impl From<RenewInput> for RenewOptions {
    fn from(input: RenewInput) -> Self {
        RenewOptions {
            reuse_key: input.reuse_key,
            validity_days: input.validity_days,
        }
    }
}

/// `{"pem"? (one certificate or a bundle) | "der_base64"?, "private_key_pem"?,
/// "organization_id"?, "owner_user_id"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportInput {
    pem: Option<String>,
    der_base64: Option<String>,
    private_key_pem: Option<String>,
    organization_id: Option<OrganizationId>,
    owner_user_id: Option<UserId>,
}

impl TryFrom<ImportInput> for ImportRequest {
    type Error = Error;
    fn try_from(input: ImportInput) -> Result<Self> {
        use base64::Engine as _;
        let private_key_pem = input.private_key_pem.map(SecretString::new);
        let data = match (input.pem, input.der_base64) {
            (Some(pem), None) => pem.into_bytes(),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|err| Error::invalid("der_base64", format!("is not base64: {err}")))?,
            _ => {
                return Err(Error::invalid(
                    "pem",
                    "give the certificates as pem or as der_base64 (one of them)",
                ));
            }
        };
        Ok(ImportRequest {
            data,
            private_key_pem,
            organization_id: input.organization_id,
            owner_user_id: input.owner_user_id,
        })
    }
}

/// `{"common_name"?, "san"?, "issuer_certificate_id"?, "status"? ([...]),
/// "expires_before"?, "expires_after"?, "owner_user_id"?, "organization_id"?,
/// "is_ca"?, "with_pem"? (false)}`
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchInput {
    common_name: Option<String>,
    san: Option<String>,
    issuer_certificate_id: Option<CertificateId>,
    status: Option<Vec<CertificateStatus>>,
    expires_before: Option<DateTime<Utc>>,
    expires_after: Option<DateTime<Utc>>,
    owner_user_id: Option<UserId>,
    organization_id: Option<OrganizationId>,
    is_ca: Option<bool>,
    #[serde(default)]
    with_pem: bool,
}

impl From<SearchInput> for CertificateSearch {
    fn from(input: SearchInput) -> Self {
        CertificateSearch {
            common_name: input.common_name,
            san: input.san,
            issuer_certificate_id: input.issuer_certificate_id,
            status: input.status,
            expires_before: input.expires_before,
            expires_after: input.expires_after,
            owner_user_id: input.owner_user_id,
            organization_id: input.organization_id,
            is_ca: input.is_ca,
            with_pem: input.with_pem,
        }
    }
}

/// `"secure"` (the secure database's trail) or `"core"`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditLogName {
    Secure,
    Core,
}

impl From<AuditLogName> for AuditLogKind {
    fn from(name: AuditLogName) -> Self {
        match name {
            AuditLogName::Secure => AuditLogKind::Secure,
            AuditLogName::Core => AuditLogKind::Core,
        }
    }
}

/// `{"version", "log", "sequence_number", "row_hash", "created_at",
/// "key_id", "signature"}`: a checkpoint exactly as `audit_checkpoint`
/// returned it (its text form parsed as JSON).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditCheckpointInput {
    pub version: u32,
    pub log: String,
    pub sequence_number: i64,
    pub row_hash: String,
    pub created_at: String,
    pub key_id: String,
    pub signature: String,
}

impl From<AuditCheckpointInput> for AuditCheckpoint {
    fn from(input: AuditCheckpointInput) -> Self {
        AuditCheckpoint {
            version: input.version,
            log: input.log,
            sequence_number: input.sequence_number,
            row_hash: input.row_hash,
            created_at: input.created_at,
            key_id: input.key_id,
            signature: input.signature,
        }
    }
}

/// `{"user_id"?, "resource_type"?, "resource_id"?, "event_type"?,
/// "organization_ids"?, "since"?, "until"?}`
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilterInput {
    user_id: Option<UserId>,
    resource_type: Option<String>,
    resource_id: Option<ResourceId>,
    event_type: Option<String>,
    organization_ids: Option<Vec<OrganizationId>>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl From<AuditFilterInput> for AuditFilter {
    fn from(input: AuditFilterInput) -> Self {
        AuditFilter {
            user_id: input.user_id,
            resource_type: input.resource_type,
            resource_id: input.resource_id,
            event_type: input.event_type,
            organization_ids: input.organization_ids,
            since: input.since,
            until: input.until,
        }
    }
}
