//! The arguments whose wire shape differs from the core's request type:
//! open options, a master key source, a key or a CSR, PEM or DER. Every
//! other argument is the core's own request type, deserialized directly.
//!
//! Secrets arrive as plain text (that is what a binding has) and are moved
//! into [`SecretString`] at once.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::crypto::{DistinguishedName, KeyAlgorithm, SecretString};
use crate::model::{
    CertificateId, CertificateKind, OrganizationId, SubjectAlternativeName, UserId,
};
use crate::service::inventory::ImportRequest;
use crate::service::issuance::{IssueRequest, KeySource};
use crate::{ClmConfig, Error, MasterKeySource, Result};

/// Where the data lives and which master key opens it.
///
/// `{"sqlite_dir": "..."}` or `{"secure_url": "postgres://...", "core_url":
/// "postgres://..."}`, plus exactly one of `master_key` (base64 of 32 bytes)
/// or `master_key_file` (with `create_master_key: true` the file is
/// created, mode 0600, when missing), and optionally `max_connections`,
/// `cache_ttl_ms`, `ocsp_sign_with_ca_key` and, for PostgreSQL, TLS: `sslmode`, `sslrootcert`,
/// `sslcert`, `sslkey` (each overrides the same parameter of the URLs).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenOptions {
    /// Directory of the two SQLite databases (instead of the PostgreSQL URLs).
    sqlite_dir: Option<String>,
    /// `postgres://...` of the secure database (may carry a password).
    #[schemars(extend("writeOnly" = true, "x-secret" = true))]
    secure_url: Option<String>,
    /// `postgres://...` of the core database (may carry a password).
    #[schemars(extend("writeOnly" = true, "x-secret" = true))]
    core_url: Option<String>,
    /// Base64 of 32 bytes.
    #[schemars(extend("writeOnly" = true, "x-secret" = true))]
    master_key: Option<String>,
    /// File holding the master key (base64, or 32 raw bytes).
    master_key_file: Option<String>,
    /// Create `master_key_file` with a new random key (mode 0600) when it is missing.
    #[serde(default)]
    create_master_key: bool,
    /// Connections per database pool; 10 when absent, at least 1.
    max_connections: Option<u32>,
    /// How long issuers and policies stay cached, in milliseconds (`ClmConfig::cache_ttl`); 1000
    /// when absent, 0 disables the caches.
    cache_ttl_ms: Option<u64>,
    /// Sign OCSP responses with the CA key itself instead of a delegated
    /// responder certificate (`OcspSettings::sign_with_ca_key`); false when absent.
    ocsp_sign_with_ca_key: Option<bool>,
    /// Days audit rows stay in the databases, 90 to 365 (default 365).
    audit_retention_days: Option<u32>,
    /// Where `run_lifecycle` archives older audit rows; none: no archiving.
    audit_archive_dir: Option<String>,
    /// PostgreSQL TLS: `disable`, `prefer`, `require`, `verify-ca` or
    /// `verify-full`.
    sslmode: Option<String>,
    /// PEM file of the CA certificates the server's certificate must chain to.
    #[schemars(extend("x-path" = true))]
    sslrootcert: Option<String>,
    /// PEM file of a client certificate, for servers that ask for one.
    #[schemars(extend("x-path" = true))]
    sslcert: Option<String>,
    /// PEM file of the client certificate's private key.
    #[schemars(extend("x-path" = true))]
    sslkey: Option<String>,
    /// Statements running this long or longer are logged at WARN with their
    /// SQL (`PoolSettings::slow_statement_threshold`; default 1000).
    slow_statement_ms: Option<u64>,
    /// Where the host publishes CRLs, OCSP and CA certificates
    /// (`ClmConfig::public_base_url`): CAs without explicit URLs derive
    /// theirs from it.
    public_base_url: Option<String>,
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
            .field("ocsp_sign_with_ca_key", &self.ocsp_sign_with_ca_key)
            .field("audit_retention_days", &self.audit_retention_days)
            .field("audit_archive_dir", &self.audit_archive_dir)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("sslcert", &self.sslcert)
            .field("sslkey", &self.sslkey)
            .field("slow_statement_ms", &self.slow_statement_ms)
            .field("public_base_url", &self.public_base_url)
            .finish()
    }
}

impl OpenOptions {
    /// Parses the open options object.
    pub fn parse(value: Value) -> Result<Self> {
        super::arguments("options", value)
    }

    /// The configuration these options describe. InvalidInput when neither or both database
    /// locations are given, or not exactly one master key source.
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
        if let Some(sign_with_ca_key) = self.ocsp_sign_with_ca_key {
            config = config.with_ocsp(crate::config::OcspSettings { sign_with_ca_key });
        }
        if let Some(url) = self.public_base_url {
            config = config.with_public_base_url(crate::config::check_public_base_url(
                "public_base_url",
                &url,
            )?);
        }
        if let Some(ms) = self.slow_statement_ms {
            config = config.with_slow_statement_threshold(std::time::Duration::from_millis(ms));
        }
        config = config.with_database_tls(crate::db::DatabaseTls {
            sslmode: self
                .sslmode
                .map(|mode| crate::db::SslMode::parse("sslmode", &mode))
                .transpose()?,
            sslrootcert: self.sslrootcert.map(PathBuf::from),
            sslcert: self.sslcert.map(PathBuf::from),
            sslkey: self.sslkey.map(PathBuf::from),
        });
        let mut retention = crate::AuditRetention::default();
        if let Some(days) = self.audit_retention_days {
            retention.retention_days = days;
        }
        retention.archive_dir = self.audit_archive_dir.map(PathBuf::from);
        // Name the option as the binding spells it.
        retention.validate().map_err(|err| match err {
            Error::InvalidInput { field, reason, .. } => Error::invalid(
                field
                    .replace("audit_retention.retention_days", "audit_retention_days")
                    .replace("audit_retention.archive_dir", "audit_archive_dir"),
                reason,
            ),
            other => other,
        })?;
        Ok(config.with_audit_retention(retention))
    }
}

/// Exactly one of `master_key` (base64 of 32 bytes) or `master_key_file`
/// (with `create_master_key: true` the file is created, mode 0600, when
/// missing).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MasterKeyInput {
    /// Base64 of 32 bytes.
    #[schemars(extend("writeOnly" = true, "x-secret" = true))]
    master_key: Option<String>,
    /// File holding the master key (base64, or 32 raw bytes).
    master_key_file: Option<String>,
    /// Create `master_key_file` with a new random key (mode 0600) when it is missing.
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
    /// The master key source; InvalidInput unless exactly one source is given.
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

/// `{"issuer_id", "validity_days", "subject"?, "sans"? ([{"type": "DNS",
/// "value": ...}]), "kind"? ("tls_server"), "key_algorithm"? ("ecdsa_p256")
/// or "csr"? (PEM), "policy_id"?, "owner_user_id"?, "organization_id"?}`
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueInput {
    /// The CA that signs.
    issuer_id: CertificateId,
    /// Days of validity; at most the policy's `max_validity_days`.
    validity_days: u32,
    /// Subject name; empty when the names are in `sans` only.
    #[serde(default)]
    subject: DistinguishedName,
    /// Subject alternative names.
    #[serde(default)]
    sans: Vec<SubjectAlternativeName>,
    /// What the certificate is for; `tls_server` when absent.
    kind: Option<CertificateKind>,
    /// Key clm generates and keeps sealed; `ecdsa_p256` when neither this nor `csr` is given.
    key_algorithm: Option<KeyAlgorithm>,
    /// A PKCS#10 CSR in PEM (instead of key_algorithm).
    csr: Option<String>,
    /// The policy to issue under; required unless the actor is a global administrator.
    policy_id: Option<crate::model::PolicyId>,
    /// Owner of the certificate; the acting user when absent.
    owner_user_id: Option<UserId>,
    /// Organization the certificate belongs to; None for a shared one.
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
            (None, Some(algorithm)) => KeySource::Generate(algorithm),
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

/// `{"pem"? (one certificate or a bundle) | "der_base64"?, "private_key_pem"?,
/// "organization_id"?, "owner_user_id"?}`
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportInput {
    /// One PEM certificate or a PEM bundle (instead of `der_base64`).
    pem: Option<String>,
    /// One DER certificate in base64 (instead of `pem`).
    der_base64: Option<String>,
    /// The one certificate's private key (PKCS#8, PKCS#1 or SEC1 PEM).
    #[schemars(extend("writeOnly" = true, "x-secret" = true))]
    private_key_pem: Option<String>,
    /// Organization the certificates belong to; None for shared ones.
    organization_id: Option<OrganizationId>,
    /// Owner of the certificates.
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
