//! Exports: a certificate (PEM, DER, the chain as a PEM bundle, PKCS #7
//! certs-only), a PKCS #12 file (certificate, chain and key under a
//! password), and a private key (PKCS #8, plain or PBES2-encrypted, PEM or
//! DER).
//!
//! Who may export what:
//! - a certificate or its chain is public data: `certificates:read` on the
//!   certificate, as for `get_certificate`; audited in `audit_log`
//!   (`certificate.exported`);
//! - anything holding the private key (plain PKCS #8, encrypted PKCS #8,
//!   PKCS #12) needs `certificates:export`, and `authorities:export_key`
//!   too for a CA. An encrypted form needs the same permission as the plain
//!   one: the caller chose the password, so the caller holds the key.
//!   Audited in `secure_audit_log` (`private_key.exported`, naming format
//!   and encryption, never the password), committed before the file is
//!   returned, so no audit row means no key.
//!
//! Input is checked before anything is read (password rules:
//! [`crate::crypto::check_export_password`]; iterations:
//! [`crate::crypto::check_iterations`]), so bad input writes nothing. The
//! key derivations run off the executor (`Clm::run_cpu`, the CPU pool) and outside
//! any transaction: a slow KDF never holds an audit chain's lock.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha1::Digest;

use crate::crypto::pbe::{self, Pbe};
use crate::crypto::{
    KeyPair, PemLabel, Pkcs12Contents, Pkcs12Encryption, SecretBytes, SecretString, build_pkcs12,
    check_export_password, check_iterations, der_to_pem, parse_certificates, pkcs7,
};
use crate::model::{Certificate, CertificateId, PrivateKeyRecord};
use crate::service::actor::{Access, Actor};
use crate::service::audit::{AuditEntry, append};
use crate::store::audit::AuditLogKind;
use crate::store::certificates::Certificates;
use crate::store::{self, private_keys};
use crate::{Clm, Error, Result};

/// How `export_certificate` writes a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateFormat {
    /// One PEM `CERTIFICATE` block (the default).
    #[default]
    Pem,
    /// The DER bytes.
    Der,
    /// PEM blocks: the certificate first, then each issuer clm holds, up to
    /// and including the root (`application/pem-certificate-chain`, RFC 8555).
    PemChain,
    /// PKCS #7 certs-only SignedData with the certificate and its chain, DER (`.p7b`).
    Pkcs7Der,
    /// The same PKCS #7 as one PEM `PKCS7` block.
    Pkcs7Pem,
}

impl CertificateFormat {
    fn as_str(self) -> &'static str {
        match self {
            CertificateFormat::Pem => "pem",
            CertificateFormat::Der => "der",
            CertificateFormat::PemChain => "pem_chain",
            CertificateFormat::Pkcs7Der => "pkcs7_der",
            CertificateFormat::Pkcs7Pem => "pkcs7_pem",
        }
    }

    fn with_chain(self) -> bool {
        matches!(
            self,
            CertificateFormat::PemChain | CertificateFormat::Pkcs7Der | CertificateFormat::Pkcs7Pem
        )
    }

    fn media_type(self) -> &'static str {
        match self {
            CertificateFormat::Pem => "application/x-pem-file",
            CertificateFormat::Der => "application/pkix-cert",
            CertificateFormat::PemChain => "application/pem-certificate-chain",
            CertificateFormat::Pkcs7Der | CertificateFormat::Pkcs7Pem => {
                "application/pkcs7-mime; smime-type=certs-only"
            }
        }
    }
}

/// Bytes cross to the bindings as base64.
fn as_base64<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// An exported certificate.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CertificateExport {
    /// The certificate exported.
    pub certificate_id: CertificateId,
    /// The format written.
    pub format: CertificateFormat,
    /// How many certificates the file holds (1, or with the chain its length).
    pub certificates: u32,
    /// The media type to serve it as.
    pub media_type: String,
    /// The file (bindings: base64 in `data_base64`).
    #[serde(rename = "data_base64", serialize_with = "as_base64")]
    #[schemars(rename = "data_base64", with = "String")]
    pub data: Vec<u8>,
    /// The file as text for the PEM formats; None for DER.
    pub text: Option<String>,
}

/// Options of `export_pkcs12`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Pkcs12Options {
    /// `modern` (default: AES-256-CBC, PBKDF2-SHA256, HMAC-SHA256) or
    /// `legacy` (3DES / RC2-40 / SHA-1, for old consumers only).
    pub encryption: Pkcs12Encryption,
    /// The `friendlyName` of key and certificate; default the certificate's
    /// CN, else its certificate_id. 1 to 256 characters, no control characters.
    pub friendly_name: Option<String>,
    /// Put the issuers clm holds (up to the root) in the file; default true.
    pub include_chain: bool,
    /// PBKDF2 and MAC iterations; default 600,000, within 10,000..=10,000,000.
    pub iterations: Option<u32>,
}

impl Default for Pkcs12Options {
    fn default() -> Self {
        Pkcs12Options {
            encryption: Pkcs12Encryption::Modern,
            friendly_name: None,
            include_chain: true,
            iterations: None,
        }
    }
}

/// An exported PKCS #12 file.
#[derive(Clone, Serialize, JsonSchema)]
pub struct Pkcs12Export {
    /// The certificate whose key it holds.
    pub certificate_id: CertificateId,
    /// How it is encrypted.
    pub encryption: Pkcs12Encryption,
    /// The PBKDF2 / MAC iterations used.
    pub iterations: u32,
    /// How many certificates it holds (the certificate and its chain).
    pub certificates: u32,
    /// The `friendlyName` of key and certificate.
    pub friendly_name: String,
    /// The `localKeyId` of key and certificate (SHA-1 of the certificate, as
    /// OpenSSL sets it), lowercase hex.
    pub local_key_id: String,
    /// The `.p12` / `.pfx` file (bindings: base64 in `data_base64`). It
    /// holds the key, so bindings keep it out of their `repr`s.
    #[serde(rename = "data_base64", serialize_with = "as_base64")]
    #[schemars(rename = "data_base64", with = "String", extend("x-secret" = true))]
    pub data: Vec<u8>,
}

/// The file holds the key (encrypted): `Debug` gives its length only.
impl std::fmt::Debug for Pkcs12Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs12Export")
            .field("certificate_id", &self.certificate_id)
            .field("encryption", &self.encryption)
            .field("iterations", &self.iterations)
            .field("certificates", &self.certificates)
            .field("friendly_name", &self.friendly_name)
            .field("local_key_id", &self.local_key_id)
            .field("data", &format_args!("[{} bytes]", self.data.len()))
            .finish()
    }
}

/// How `export_private_key` writes a key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyFormat {
    /// PEM: `PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with a password.
    #[default]
    Pem,
    /// DER (bindings: base64).
    Der,
}

/// Options of `export_private_key`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PrivateKeyExportOptions {
    /// PEM (default) or DER.
    pub format: KeyFormat,
    /// With a password: PKCS #8 `EncryptedPrivateKeyInfo` under PBES2
    /// (PBKDF2-HMAC-SHA256, AES-256-CBC); 8 to 1024 characters, no control
    /// characters. Without: the plain PKCS #8.
    #[serde(skip_serializing)]
    pub password: Option<SecretString>,
    /// PBKDF2 iterations when encrypted; default 600,000, within
    /// 10,000..=10,000,000.
    pub iterations: Option<u32>,
}

/// An exported private key.
#[derive(Debug, Clone)]
pub struct PrivateKeyExport {
    /// The format written.
    pub format: KeyFormat,
    /// Whether it is encrypted under a password.
    pub encrypted: bool,
    /// The key: PEM text (as bytes) or DER.
    pub data: SecretBytes,
}

/// A key export's plan, checked before anything is read.
struct KeyExportPlan {
    encryption: Option<(SecretString, u32)>,
    format: KeyFormat,
}

fn check_friendly_name(name: &str) -> Result<()> {
    let chars = name.chars().count();
    if chars == 0 || chars > 256 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "options.friendly_name",
            "must be 1 to 256 characters without control characters",
        ));
    }
    Ok(())
}

fn certificate_der(row: &Certificate) -> Result<Vec<u8>> {
    parse_certificates(row.certificate_pem.as_bytes())?
        .into_iter()
        .next()
        .map(|parsed| parsed.der)
        .ok_or_else(|| {
            Error::Internal(format!(
                "certificate {} has no stored certificate",
                row.certificate_id
            ))
        })
}

impl Clm {
    /// A certificate as PEM, DER, a PEM chain (the certificate first, then
    /// its issuers up to and including the root, as far as clm holds them)
    /// or PKCS #7 certs-only (DER or PEM). Needs `certificates:read`;
    /// audited as `certificate.exported`.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn export_certificate(
        &self,
        actor: &Actor,
        id: CertificateId,
        format: CertificateFormat,
    ) -> Result<CertificateExport> {
        self.gate(actor, "certificates", "read").await?;
        let certificate = {
            let mut conn = self.databases().secure.acquire().await?;
            store::get::<Certificates>(&mut conn.conn(), id, false).await?
        };
        self.authorize_visible(
            actor,
            Access::new("certificates", "read").in_org(certificate.organization_id),
            "certificate",
            id,
        )
        .await?;
        let chain = if format.with_chain() {
            self.issuers_within_reach(actor, &certificate).await?
        } else {
            Vec::new()
        };
        let mut ders = vec![certificate_der(&certificate)?];
        for issuer in &chain {
            ders.push(certificate_der(issuer)?);
        }
        let (data, text) = match format {
            CertificateFormat::Pem => {
                let pem = der_to_pem(PemLabel::Certificate, &ders[0]);
                (pem.clone().into_bytes(), Some(pem))
            }
            CertificateFormat::Der => (ders[0].clone(), None),
            CertificateFormat::PemChain => {
                let pem: String = ders
                    .iter()
                    .map(|der| der_to_pem(PemLabel::Certificate, der))
                    .collect();
                (pem.clone().into_bytes(), Some(pem))
            }
            CertificateFormat::Pkcs7Der => (pkcs7::certs_only(&ders)?, None),
            CertificateFormat::Pkcs7Pem => {
                let pem = der_to_pem(PemLabel::Pkcs7, &pkcs7::certs_only(&ders)?);
                (pem.clone().into_bytes(), Some(pem))
            }
        };
        let count = u32::try_from(ders.len()).unwrap_or(u32::MAX);
        let mut tx = self.databases().core.begin().await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("certificate.exported", "export")
                .resource("certificate", id)
                .org(certificate.organization_id)
                .details(json!({
                    "certificate_id": certificate.certificate_id,
                    "format": format.as_str(),
                    "certificates": count,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(CertificateExport {
            certificate_id: id,
            format,
            certificates: count,
            media_type: format.media_type().to_string(),
            data,
            text,
        })
    }

    /// A PKCS #12 file with the certificate, its chain (unless
    /// `options.include_chain` is false) and its private key under
    /// `password` (8 to 1024 characters; never empty). Modern encryption
    /// unless `options.encryption` is `legacy`. Needs `certificates:export`
    /// (and `authorities:export_key` for a CA); audited in the same way as
    /// `export_private_key`.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn export_pkcs12(
        &self,
        actor: &Actor,
        id: CertificateId,
        password: SecretString,
        options: Pkcs12Options,
    ) -> Result<Pkcs12Export> {
        check_export_password(&password)?;
        let iterations = check_iterations(options.iterations)?;
        if let Some(name) = &options.friendly_name {
            check_friendly_name(name)?;
        }
        let (certificate, record, key) = self.key_for_export(actor, id).await?;
        let chain = if options.include_chain {
            self.issuers_within_reach(actor, &certificate).await?
        } else {
            Vec::new()
        };
        let leaf = certificate_der(&certificate)?;
        let chain: Vec<Vec<u8>> = chain.iter().map(certificate_der).collect::<Result<_>>()?;
        let friendly_name = options.friendly_name.clone().unwrap_or_else(|| {
            certificate
                .common_name
                .clone()
                .filter(|cn| check_friendly_name(cn).is_ok())
                .unwrap_or_else(|| certificate.certificate_id.clone())
        });
        let local_key_id = sha1::Sha1::digest(&leaf).to_vec();
        let count = u32::try_from(chain.len().saturating_add(1)).unwrap_or(u32::MAX);
        let encryption = options.encryption;
        let data = {
            let pkcs8 = key.to_pkcs8_der();
            let friendly_name = friendly_name.clone();
            let local_key_id = local_key_id.clone();
            self.run_cpu(move || {
                build_pkcs12(
                    &Pkcs12Contents {
                        private_key_pkcs8: pkcs8.expose(),
                        certificate: &leaf,
                        chain: &chain,
                        friendly_name: &friendly_name,
                        local_key_id: &local_key_id,
                    },
                    &password,
                    encryption,
                    iterations,
                )
            })
            .await?
        };
        self.audit_key_export(
            actor,
            &certificate,
            &record,
            json!({
                "format": "PKCS#12",
                "encryption": encryption.as_str(),
                "iterations": iterations,
                "certificates": count,
            }),
        )
        .await?;
        Ok(Pkcs12Export {
            certificate_id: id,
            encryption,
            iterations,
            certificates: count,
            friendly_name,
            local_key_id: hex::encode(local_key_id),
            data,
        })
    }

    /// The private key of a certificate as PKCS #8 PEM. Needs
    /// `certificates:export` (and `authorities:export_key` for a CA); the
    /// read is audited (`private_key.exported`) before the key is returned,
    /// so no audit row means no key. [`Clm::export_private_key_with`] gives
    /// DER and password-encrypted forms.
    // No span of its own: the one of `export_private_key_with`, named after
    // the operation both serve, covers it (one span per export, as the
    // bindings' calls show it).
    pub async fn export_private_key(
        &self,
        actor: &Actor,
        certificate_id: CertificateId,
    ) -> Result<SecretString> {
        let export = self
            .export_private_key_with(actor, certificate_id, PrivateKeyExportOptions::default())
            .await?;
        let text = std::str::from_utf8(export.data.expose())
            .map_err(|_| Error::Internal("a PEM key is not UTF-8".into()))?;
        Ok(SecretString::from(text))
    }

    /// The private key of a certificate as PKCS #8, PEM or DER, plain or
    /// (with `options.password`) encrypted under PBES2 with
    /// PBKDF2-HMAC-SHA256 and AES-256-CBC. Encrypted or not, it needs
    /// `certificates:export` (and `authorities:export_key` for a CA): the
    /// caller chose the password. Audited like [`Clm::export_private_key`].
    #[tracing::instrument(name = "export_private_key", skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn export_private_key_with(
        &self,
        actor: &Actor,
        certificate_id: CertificateId,
        options: PrivateKeyExportOptions,
    ) -> Result<PrivateKeyExport> {
        let plan = KeyExportPlan {
            encryption: match options.password {
                Some(password) => {
                    check_export_password(&password)?;
                    Some((password, check_iterations(options.iterations)?))
                }
                None if options.iterations.is_some() => {
                    return Err(Error::invalid(
                        "options.iterations",
                        "applies only to an encrypted export (give a password)",
                    ));
                }
                None => None,
            },
            format: options.format,
        };
        let (certificate, record, key) = self.key_for_export(actor, certificate_id).await?;
        let pkcs8 = key.to_pkcs8_der();
        let (der, label, iterations) = match plan.encryption {
            Some((password, iterations)) => {
                let der = self
                    .run_cpu(move || {
                        pbe::encrypt_private_key_info(
                            pkcs8.expose(),
                            &password,
                            Pbe::Pbes2Aes256 { iterations },
                        )
                        .map(SecretBytes::new)
                    })
                    .await?;
                (der, PemLabel::EncryptedPrivateKey, Some(iterations))
            }
            None => (pkcs8, PemLabel::PrivateKey, None),
        };
        let data = match plan.format {
            KeyFormat::Der => der,
            KeyFormat::Pem => SecretBytes::new(der_to_pem(label, der.expose()).into_bytes()),
        };
        let encrypted = iterations.is_some();
        self.audit_key_export(
            actor,
            &certificate,
            &record,
            json!({
                "format": match (plan.format, encrypted) {
                    (KeyFormat::Pem, false) => "PKCS#8 PEM",
                    (KeyFormat::Der, false) => "PKCS#8 DER",
                    (KeyFormat::Pem, true) => "encrypted PKCS#8 PEM",
                    (KeyFormat::Der, true) => "encrypted PKCS#8 DER",
                },
                "encryption": if encrypted { "PBES2 PBKDF2-SHA256 AES-256-CBC" } else { "none" },
                "iterations": iterations,
            }),
        )
        .await?;
        Ok(PrivateKeyExport {
            format: plan.format,
            encrypted,
            data,
        })
    }

    /// Authorizes a key export and opens the key. Reads on plain
    /// connections: nothing is written until the export is audited.
    async fn key_for_export(
        &self,
        actor: &Actor,
        certificate_id: CertificateId,
    ) -> Result<(Certificate, PrivateKeyRecord, KeyPair)> {
        self.gate(actor, "certificates", "export").await?;
        let certificate = {
            let mut conn = self.databases().secure.acquire().await?;
            store::get::<Certificates>(&mut conn.conn(), certificate_id, false).await?
        };
        self.authorize_visible(
            actor,
            Access::new("certificates", "export").in_org(certificate.organization_id),
            "certificate",
            certificate_id,
        )
        .await?;
        // A CA's key signs for everyone under it: its own permission, which
        // no built-in role but ADMIN holds.
        if certificate.is_ca {
            self.authorize(
                actor,
                Access::new("authorities", "export_key").in_org(certificate.organization_id),
            )
            .await?;
        }
        let record = {
            let mut conn = self.databases().secure.acquire().await?;
            match private_keys::get_by_certificate(&mut conn.conn(), certificate_id).await {
                Err(Error::NotFound { .. }) => {
                    return Err(Error::not_found(
                        "private key",
                        format!(
                            "certificate {} (clm holds no key for it)",
                            certificate.certificate_id
                        ),
                    ));
                }
                other => other?,
            }
        };
        self.load_data_key(record.encryption_key_id).await?;
        let key = self.open_private_key(&record)?;
        Ok((certificate, record, key))
    }

    /// Writes `private_key.exported` to `secure_audit_log` and commits;
    /// the caller returns the key only after this succeeded.
    async fn audit_key_export(
        &self,
        actor: &Actor,
        certificate: &Certificate,
        record: &PrivateKeyRecord,
        mut details: serde_json::Value,
    ) -> Result<()> {
        if let Some(map) = details.as_object_mut() {
            map.insert("certificate_id".into(), json!(certificate.certificate_id));
            map.insert("private_key_id".into(), json!(record.id));
        }
        let mut tx = self.databases().secure.begin().await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("private_key.exported", "export")
                .resource("certificate", certificate.id)
                .org(certificate.organization_id)
                .details(details),
        )
        .await?;
        tx.commit().await
    }
}
