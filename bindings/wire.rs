//! The wire shape the three bindings share (included by `clm-py`, `clm-node`
//! and `clm-ffi` with `#[path]`), so no binding parses or validates on its
//! own: operation inputs arrive as JSON objects (a Python dict, a JS object,
//! a C JSON string), become the core's request types here, and records leave
//! as the core's `serde` form.
//!
//! Field names are the core's (`snake_case`) in every language. This module
//! belongs in the core (`Deserialize` on the request types); it lives here
//! until the core has it.

use std::path::PathBuf;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use clm::crypto::{DistinguishedName, KeyAlgorithm, SecretString};
use clm::model::{
    CertificateId, CertificateKind, OrganizationId, PolicyId, PolicyRules, PolicyStatus,
    RevocationReason, SubjectAlternativeName, UserId, WorkflowId,
};
use clm::service::access::NewOrganization;
use clm::service::authorities::NewCertificateAuthority;
use clm::service::identity::{LoginContext, LoginOutcome, NewUser};
use clm::service::issuance::{IssueRequest, KeySource};
use clm::service::policies::NewPolicy;
use clm::store::audit::AuditLogKind;
use clm::{ClmConfig, Error, MasterKeySource, Result};

/// `bindings/operations.txt`: the operations every binding exposes.
pub const OPERATIONS_TXT: &str = include_str!("operations.txt");

/// The operation names of [`OPERATIONS_TXT`], in order.
pub fn operations() -> Vec<&'static str> {
    OPERATIONS_TXT
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// The library version.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Deserializes one input object; a mismatch is InvalidInput naming `what`.
pub fn input<T: DeserializeOwned>(what: &str, value: Value) -> Result<T> {
    if value.is_null() {
        return Err(Error::invalid(what, "is required"));
    }
    serde_json::from_value(value).map_err(|err| Error::invalid(what, err.to_string()))
}

/// Parses an input given as JSON text (the C binding's form).
pub fn parse_json(what: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|err| Error::invalid(what, format!("not JSON: {err}")))
}

/// A record in its wire form.
pub fn record<T: serde::Serialize>(record: &T) -> Result<Value> {
    serde_json::to_value(record)
        .map_err(|err| Error::Internal(format!("cannot serialize a record: {err}")))
}

/// Parses a typed id given as text.
pub fn id<T: std::str::FromStr<Err = Error>>(text: &str) -> Result<T> {
    text.parse()
}

/// Where the data lives and which master key opens it.
///
/// `{"sqlite_dir": "..."}` or `{"secure_url": "postgres://...", "core_url": "postgres://..."}`,
/// plus exactly one of `master_key` (base64 of 32 bytes) or `master_key_file`
/// (with `create_master_key: true` the file is created when missing), and
/// optionally `max_connections`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenOptions {
    pub sqlite_dir: Option<String>,
    pub secure_url: Option<String>,
    pub core_url: Option<String>,
    pub master_key: Option<String>,
    pub master_key_file: Option<String>,
    #[serde(default)]
    pub create_master_key: bool,
    pub max_connections: Option<u32>,
}

impl OpenOptions {
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
        let key = match (
            self.master_key,
            self.master_key_file,
            self.create_master_key,
        ) {
            (Some(key), None, false) => MasterKeySource::Base64(key),
            (None, Some(path), false) => MasterKeySource::File(PathBuf::from(path)),
            (None, Some(path), true) => MasterKeySource::FileOrCreate(PathBuf::from(path)),
            _ => {
                return Err(Error::invalid(
                    "options",
                    "give master_key, or master_key_file (with create_master_key to create it)",
                ));
            }
        };
        config = config.with_master_key(key);
        if let Some(max) = self.max_connections {
            config = config.with_max_connections(max);
        }
        Ok(config)
    }
}

/// `{"username", "email", "display_name"?, "password"?, "organization_id"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub password: Option<String>,
    pub organization_id: Option<OrganizationId>,
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

/// `{"org_code", "name", "description"?, "parent_organization_id"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationInput {
    pub org_code: String,
    pub name: String,
    pub description: Option<String>,
    pub parent_organization_id: Option<OrganizationId>,
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

/// `{"policy_code", "name", "rules", "description"?, "status"?, "organization_id"?,
/// "workflow_id"?}`; `rules` is the policy rules document as an object or as
/// JSON text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    pub policy_code: String,
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub rules: Value,
    pub status: Option<String>,
    pub organization_id: Option<OrganizationId>,
    pub workflow_id: Option<WorkflowId>,
}

impl TryFrom<PolicyInput> for NewPolicy {
    type Error = Error;
    fn try_from(input: PolicyInput) -> Result<Self> {
        let rules = match input.rules {
            Value::Null => PolicyRules::default(),
            Value::String(text) => PolicyRules::parse(&text)?,
            other => PolicyRules::parse(&other.to_string())?,
        };
        Ok(NewPolicy {
            policy_code: input.policy_code,
            name: input.name,
            description: input.description,
            rules,
            status: match input.status {
                Some(status) => status.parse::<PolicyStatus>()?,
                None => PolicyStatus::Active,
            },
            organization_id: input.organization_id,
            workflow_id: input.workflow_id,
        })
    }
}

/// `{"subject": {"common_name", ...}, "key_algorithm"? ("ecdsa_p256"),
/// "validity_days"? (3650), "path_len"?, "organization_id"?,
/// "crl_distribution_points"?, "ocsp_urls"?, "ca_issuers_urls"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityInput {
    pub subject: DistinguishedName,
    pub key_algorithm: Option<String>,
    pub validity_days: Option<u32>,
    pub path_len: Option<u8>,
    pub organization_id: Option<OrganizationId>,
    #[serde(default)]
    pub crl_distribution_points: Vec<String>,
    #[serde(default)]
    pub ocsp_urls: Vec<String>,
    #[serde(default)]
    pub ca_issuers_urls: Vec<String>,
}

impl TryFrom<AuthorityInput> for NewCertificateAuthority {
    type Error = Error;
    fn try_from(input: AuthorityInput) -> Result<Self> {
        let defaults = NewCertificateAuthority::default();
        Ok(NewCertificateAuthority {
            subject: input.subject,
            key_algorithm: match input.key_algorithm {
                Some(text) => text.parse::<KeyAlgorithm>()?,
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

/// `{"issuer_id", "validity_days", "subject"?, "sans"? ([{"type": "DNS", "value": ...}]),
/// "kind"? ("tls_server"), "key_algorithm"? ("ecdsa_p256") or "csr"? (PEM),
/// "policy_id"?, "owner_user_id"?, "organization_id"?}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueInput {
    pub issuer_id: CertificateId,
    pub validity_days: u32,
    #[serde(default)]
    pub subject: DistinguishedName,
    #[serde(default)]
    pub sans: Vec<SubjectAlternativeName>,
    pub kind: Option<String>,
    pub key_algorithm: Option<String>,
    pub csr: Option<String>,
    pub policy_id: Option<PolicyId>,
    pub owner_user_id: Option<UserId>,
    pub organization_id: Option<OrganizationId>,
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
            (None, Some(text)) => KeySource::Generate(text.parse()?),
            (None, None) => KeySource::Generate(KeyAlgorithm::EcdsaP256),
        };
        Ok(IssueRequest {
            issuer_id: input.issuer_id,
            policy_id: input.policy_id,
            subject: input.subject,
            sans: input.sans,
            kind: match input.kind {
                Some(text) => text.parse::<CertificateKind>()?,
                None => CertificateKind::TlsServer,
            },
            validity_days: input.validity_days,
            key,
            owner_user_id: input.owner_user_id,
            organization_id: input.organization_id,
        })
    }
}

pub fn certificate_id(text: &str) -> Result<CertificateId> {
    id(text)
}

pub fn revocation_reason(text: &str) -> Result<RevocationReason> {
    text.parse()
}

/// `"secure"` (the secure database's trail) or `"core"`.
pub fn audit_log(text: &str) -> Result<AuditLogKind> {
    match text {
        "secure" => Ok(AuditLogKind::Secure),
        "core" => Ok(AuditLogKind::Core),
        other => Err(Error::invalid(
            "log",
            format!("{other:?} is not one of secure, core"),
        )),
    }
}

/// `{"token", "session", "user"}`: the bearer token is shown this once.
pub fn login(outcome: &LoginOutcome) -> Result<Value> {
    Ok(json!({
        "token": outcome.token.expose(),
        "session": record(&outcome.session)?,
        "user": record(&outcome.user)?,
    }))
}

/// What a binding shows of an actor: `{"kind", "user_id", "session_id",
/// "organization_ids"}` (never its permissions as something to edit).
pub fn actor(actor: &clm::Actor) -> Value {
    let kind = match actor.kind {
        clm::ActorKind::User(_) => "user",
        clm::ActorKind::ApiKey { .. } => "api_key",
        clm::ActorKind::System => "system",
    };
    json!({
        "kind": kind,
        "user_id": actor.user_id(),
        "session_id": actor.session_id,
        "organization_ids": actor.organization_ids,
    })
}

/// Login without a context (bindings do not pass one yet).
pub fn login_context() -> LoginContext {
    LoginContext::default()
}
