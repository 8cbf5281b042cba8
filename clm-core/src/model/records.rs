//! One record struct per table, field for column. Secret columns are wrapped so
//! they never print: `Debug` is derived only where no field is secret.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use crate::model::documents::{
    Permissions, PolicyRules, SubjectAlternativeName, WorkflowDefinition,
};
use crate::model::ids::*;
use crate::model::status::*;

/// A point in time: UTC, microsecond precision, RFC 3339 text in JSON.
pub type Timestamp = DateTime<Utc>;

/// Bytes that must never be printed (sealed key material, hashes of secrets).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, schemars::JsonSchema)]
#[sqlx(transparent)]
pub struct Opaque(pub Vec<u8>);

impl std::fmt::Debug for Opaque {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} bytes redacted]", self.0.len())
    }
}

/// Text that must never be printed (password hashes, key hashes).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, schemars::JsonSchema)]
#[sqlx(transparent)]
pub struct OpaqueText(pub String);

impl std::fmt::Debug for OpaqueText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

// ---------------------------------------------------------------- clm_secure_db

/// A data key (`encryption_keys`): seals private keys and MFA secrets, itself wrapped by the
/// master key. Its key material is never serialized.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct EncryptionKey {
    /// Primary key (UUID v7).
    pub id: EncryptionKeyId,
    /// Readable name, `dek-v<key_version>`; unique.
    pub key_id: String,
    /// What the key seals; `data_encryption` (private keys, MFA secrets) is the only type.
    pub key_type: KeyType,
    /// `active` seals new data (at most one at a time), `decrypt_only` still opens old data during
    /// a rotation, `retired` is used by nothing.
    pub key_status: KeyStatus,
    /// Cipher of the data it seals; always `AES-256-GCM`.
    pub algorithm: String,
    /// 1 for the first data key, one more for each rotation; unique per key type.
    pub key_version: i32,
    /// The data key sealed by the master key (never serialized).
    #[serde(skip)]
    pub wrapped_key: Opaque,
    /// Nonce of `wrapped_key`'s sealing (never serialized).
    #[serde(skip)]
    pub wrap_nonce: Opaque,
    /// Non-secret id of the master key that wrapped it (`local:` and 16 hex digits for a local
    /// key): a wrong master key is detected at open.
    pub master_key_id: String,
    /// Records that data-key rotations re-sealed under this key (new seals are not counted).
    pub encryption_count: i64,
    /// When it became the active key; None before.
    pub activated_at: Option<Timestamp>,
    /// When it was retired; None while it is active or decrypt-only.
    pub retired_at: Option<Timestamp>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// A serial as the signed integer its bytes encode, in hex (`0x4d`, `-0x4316693ed`): what
/// [`signed_serial`](crate::crypto::signed_serial) makes of a stored `serial_number`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct SignedSerial(pub String);

impl From<String> for SignedSerial {
    /// From the stored form, lowercase hex of the DER content bytes (rows read it so).
    fn from(serial_hex: String) -> Self {
        SignedSerial(crate::crypto::signed_serial(&serial_hex))
    }
}

/// A certificate clm issued or imported (`certificates`), with what it read from it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Certificate {
    /// Primary key (UUID v7).
    pub id: CertificateId,
    /// Readable unique id, `cert_` and the 32 hex digits of `id`.
    pub certificate_id: String,
    /// The subject's CN; None when the subject has none.
    pub common_name: Option<String>,
    /// Subject name, RFC 4514, most specific first (`CN=server.example.com,O=Example`).
    pub subject_dn: String,
    /// Issuer name, RFC 4514.
    pub issuer_dn: String,
    /// Lowercase hex of the serial's DER content bytes (lossless even for negative or over-long
    /// serials); unique per issuer for issued certificates.
    pub serial_number: String,
    /// `serial_number` as the signed integer it encodes, in hex (`0x4d`; `-0x4316693ed` for the
    /// bytes `fbce996c13`, a negative serial), as openssl and pyca/cryptography show it.
    #[sqlx(rename = "serial_number", try_from = "String")]
    pub serial_number_signed: SignedSerial,
    /// Start of validity (UTC).
    pub not_before: Timestamp,
    /// End of validity (UTC); expiry reports and renewals go by it.
    pub not_after: Timestamp,
    /// Lifecycle state: by time (pending, active, expiring, expired) or by revocation (revoked,
    /// suspended); `refresh_certificate_statuses` (run by `run_lifecycle`) keeps it current.
    pub status: CertificateStatus,
    /// Lowercase hex SHA-256 of the DER; unique within an organization (and among shared rows).
    pub fingerprint_sha256: String,
    /// Subject key family: `RSA`, `ECDSA`, `Ed25519`, `Ed448`, or the key algorithm's OID.
    pub key_algorithm: String,
    /// RSA modulus or curve size in bits; 0 when unknown.
    pub key_size: i32,
    /// How the issuer signed it, e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA256`, `Ed25519`.
    pub signature_algorithm: String,
    /// basicConstraints cA: the certificate may sign others.
    pub is_ca: bool,
    /// basicConstraints pathLenConstraint of a CA; None for no limit or no CA.
    pub path_len: Option<i32>,
    /// What it is for; for an import, read from its extensions (`imported` when none fits).
    pub certificate_kind: CertificateKind,
    /// `issued` by clm or `imported`.
    pub source: CertificateSource,
    /// The issuing CA's row when clm knows it; None for a root or an unknown issuer.
    pub issuer_certificate_id: Option<CertificateId>,
    /// The certificate this one renewed; None for a first issuance.
    pub replaces_certificate_id: Option<CertificateId>,
    /// Subject key identifier extension, lowercase hex; None when absent.
    pub subject_key_id: Option<String>,
    /// Authority key identifier's key id, lowercase hex; None when absent.
    pub authority_key_id: Option<String>,
    /// Subject alternative names, in the order of the certificate.
    #[schemars(with = "Vec<SubjectAlternativeName>")]
    pub subject_alternative_names: Json<Vec<SubjectAlternativeName>>,
    /// Oddities an import accepted: `serial_negative`, `serial_zero`, `serial_too_long`,
    /// `version_1`, `version_2`, `version_unknown:N` (version INTEGER N past v3), `not_der` (read,
    /// but not in DER: a DEFAULT value written out, a SET OF out of order),
    /// `validity_inverted` (notAfter before notBefore),
    /// `validity_empty` (notAfter equal to notBefore), `validity_misencoded` (a time not in
    /// RFC 5280's encoding), `signature_algorithm_mismatch`,
    /// `key_compromised`, `unknown_critical_extension:OID`, `malformed_extension:OID`,
    /// `duplicate_extension:OID`, `unsupported_san:KIND`, `san_not_ascii` (a DNS, email or URI
    /// SAN in UTF-8 beyond ASCII). Empty for issued certificates.
    #[schemars(with = "Vec<String>")]
    pub import_flags: Json<Vec<String>>,
    /// The certificate, PEM. Empty in light list rows (see `CertificateSearch::with_pem`).
    pub certificate_pem: String,
    /// The user responsible for it, who gets its expiry notices; None when nobody is.
    pub owner_user_id: Option<UserId>,
    /// The organization it belongs to; None for a shared row.
    pub organization_id: Option<OrganizationId>,
    /// The policy it was issued under; None for imports and issuance without a policy.
    pub policy_id: Option<PolicyId>,
    /// The policy's `version` when it was issued.
    pub policy_version: Option<i32>,
    /// The approval workflow its request went through; None when it needed no approval.
    pub workflow_id: Option<WorkflowId>,
    /// For a CA: number of the last CRL it signed (0 before the first).
    pub crl_number: i64,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// The sealed private key of a certificate (`private_keys`); never leaves the core as a record.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PrivateKeyRecord {
    /// Primary key (UUID v7).
    pub id: PrivateKeyId,
    /// The certificate whose key this is (1:1).
    pub certificate_id: CertificateId,
    /// The data key that sealed it.
    pub encryption_key_id: EncryptionKeyId,
    /// PKCS#8 DER sealed with AES-256-GCM under the data key, bound to its certificate.
    pub encrypted_key_material: Opaque,
    /// Nonce of the sealing.
    pub nonce: Opaque,
    /// Key family: `RSA`, `ECDSA` or `Ed25519`.
    pub key_algorithm: String,
    /// RSA modulus or curve size in bits.
    pub key_size: i32,
    /// Lowercase hex SHA-256 of the public key DER: matches a key without opening it.
    pub public_key_sha256: String,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// A request to issue or renew a certificate (`certificate_requests`).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertificateRequest {
    /// Primary key (UUID v7).
    pub id: CertificateRequestId,
    /// Readable unique id, `req_` and the 32 hex digits of `id`.
    pub request_id: String,
    /// The caller's PKCS#10 CSR, PEM; None when clm makes or keeps the key.
    pub csr_pem: Option<String>,
    /// Requested CN; None when the subject has none.
    pub common_name: Option<String>,
    /// Requested subject, RFC 4514.
    pub subject_dn: String,
    /// Requested subject alternative names (normalized).
    #[schemars(with = "Vec<SubjectAlternativeName>")]
    pub subject_alternative_names: Json<Vec<SubjectAlternativeName>>,
    /// Key algorithm: canonical name (`ECDSA-P256`, `RSA-2048`, `Ed25519`) for a key clm makes or
    /// keeps, the family (`RSA`, `ECDSA`, ...) for a CSR's key.
    pub key_algorithm: String,
    /// RSA modulus or curve size in bits.
    pub key_size: i32,
    /// Requested kind (drives key usage and extended key usage).
    pub certificate_kind: CertificateKind,
    /// Requested validity in days (at least 1).
    pub validity_days: i32,
    /// Where the request stands; `pending_approval` while its workflow waits.
    pub status: RequestStatus,
    /// The CA asked to sign it.
    pub issuer_certificate_id: Option<CertificateId>,
    /// The certificate it produced; None until issued.
    pub certificate_id: Option<CertificateId>,
    /// The certificate this request renews; None for a new issuance.
    pub renewal_of_certificate_id: Option<CertificateId>,
    /// A renewal that keeps the old certificate's key instead of a new one.
    pub reuse_key: bool,
    /// Who asked; None for the system actor.
    pub requested_by_user_id: Option<UserId>,
    /// Owner the certificate will get.
    pub owner_user_id: Option<UserId>,
    /// Organization the certificate will belong to; None for shared.
    pub organization_id: Option<OrganizationId>,
    /// The policy that judged it; None when none applied.
    pub policy_id: Option<PolicyId>,
    /// Its approval workflow run; None when it needed no approval.
    pub workflow_instance_id: Option<WorkflowInstanceId>,
    /// Why it failed, was rejected, cancelled or expired; None otherwise.
    pub failure_reason: Option<String>,
    /// Not set by clm (None): a request awaiting approval expires with its workflow instance's
    /// `expires_at`.
    pub expires_at: Option<Timestamp>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// A revocation of a certificate (`certificate_revocations`); at most one standing per
/// certificate.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertificateRevocation {
    /// Primary key (UUID v7).
    pub id: RevocationId,
    /// The revoked certificate.
    pub certificate_id: CertificateId,
    /// The CA whose CRL lists it; None when its issuer is unknown, or is of another scope than this
    /// (imported) copy.
    pub issuer_certificate_id: Option<CertificateId>,
    /// The certificate's serial, lowercase hex (as in `certificates`).
    pub serial_number: String,
    /// The serial as a signed hex integer (as in `certificates`).
    #[sqlx(rename = "serial_number", try_from = "String")]
    pub serial_number_signed: SignedSerial,
    /// RFC 5280 reason; `certificate_hold` suspends and can be released.
    pub revocation_reason: RevocationReason,
    /// When it took effect (the CRL's revocation date).
    pub revoked_at: Timestamp,
    /// Who revoked it; None for the system actor.
    pub revoked_by_user_id: Option<UserId>,
    /// Free text given with the revocation.
    pub comment: Option<String>,
    /// When a hold was released (the certificate is valid again); only a `certificate_hold` can be.
    pub released_at: Option<Timestamp>,
    /// Who released the hold.
    pub released_by_user_id: Option<UserId>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// A data-key or master-key rotation (`key_rotation_history`).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyRotation {
    /// Primary key (UUID v7).
    pub id: KeyRotationId,
    /// `data_key` (re-seal private keys and MFA secrets under a new data key) or `master_key`
    /// (re-wrap the data keys).
    pub rotation_type: RotationType,
    /// The data key rotated away from; None for a master-key rotation.
    pub old_key_id: Option<EncryptionKeyId>,
    /// The data key rotated to; None for a master-key rotation.
    pub new_key_id: Option<EncryptionKeyId>,
    /// Id of the master key replaced; None for a data-key rotation.
    pub old_master_key_id: Option<String>,
    /// Id of the new master key; None for a data-key rotation.
    pub new_master_key_id: Option<String>,
    /// `in_progress` (at most one per type; the next call resumes it) or `completed`.
    pub status: RotationStatus,
    /// Records to re-seal or re-wrap (grows if new ones appear meanwhile).
    pub total_items: i64,
    /// Records done so far.
    pub rotated_items: i64,
    /// Last private key re-sealed: where a resumed rotation continues.
    pub last_item_id: Option<PrivateKeyId>,
    /// Why it last stopped; cleared when it resumes.
    pub error_message: Option<String>,
    /// Who started it; None for the system actor.
    pub initiated_by_user_id: Option<UserId>,
    /// When it started.
    pub started_at: Timestamp,
    /// When it completed; None while running.
    pub completed_at: Option<Timestamp>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// A CA rollover (`ca_rollovers`): where it stands and what it did.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CaRollover {
    /// Primary key (UUID v7).
    pub id: CaRolloverId,
    /// The CA rolled over (the old one).
    pub ca_certificate_id: CertificateId,
    /// The old CA's organization; None for a shared CA.
    pub organization_id: Option<OrganizationId>,
    /// The successor CA (its id is chosen when the rollover starts).
    pub successor_certificate_id: CertificateId,
    /// Roots: the certificate of the new root's subject and key signed by the old root.
    pub cross_new_by_old_id: Option<CertificateId>,
    /// Roots: the certificate of the old root's subject and key signed by the new root.
    pub cross_old_by_new_id: Option<CertificateId>,
    /// The options the rollover started with (`RolloverOptions`).
    #[schemars(with = "serde_json::Value")]
    pub options: Json<serde_json::Value>,
    /// `in_progress`, `waiting` or `completed`.
    pub status: RolloverStatus,
    /// The next stage to run.
    pub stage: RolloverStage,
    /// Old and new CA certificates (and cross certificates) as one PEM
    /// bundle, once published.
    pub trust_bundle_pem: Option<String>,
    /// Leaves of the old CA looked at by the reissue stage.
    pub leaves_seen: i64,
    /// Leaves reissued under the successor.
    pub leaves_reissued: i64,
    /// Leaves whose renewal waits in an approval workflow.
    pub leaves_pending_approval: i64,
    /// Leaves whose renewal failed (see `error_message` for the last reason).
    pub leaves_failed: i64,
    /// The last leaf the reissue stage handled: where it resumes.
    pub last_leaf_id: Option<CertificateId>,
    /// Dependants that kept the old CA from retiring at the last check.
    pub blockers: i64,
    /// The last error (a failed stage, a leaf that did not renew).
    pub error_message: Option<String>,
    /// Who started it; None for the system actor.
    pub initiated_by_user_id: Option<UserId>,
    /// When it started.
    pub started_at: Timestamp,
    /// When it completed.
    pub completed_at: Option<Timestamp>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete.
    pub deleted_at: Option<Timestamp>,
}

/// A row of `secure_audit_log` or `audit_log` (same shape).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEvent {
    /// Primary key (UUID v7).
    pub id: AuditId,
    /// Position in its chain, from 1 with no gaps (archiving removes the oldest rows only).
    pub sequence_number: i64,
    /// What happened, `resource.verb` (`user.created`, `certificate.revoked`, `auth.login_failed`).
    pub event_type: String,
    /// The permission-style action (`create`, `revoke`, `login`).
    pub action: String,
    /// `success`, `failure`, or `denied` (a refused permission).
    pub outcome: AuditOutcome,
    /// Who acted: `user`, `api_key` or `system`.
    pub actor_type: ActorType,
    /// The acting user (for an API key, its owner); None for the system.
    pub user_id: Option<UserId>,
    /// The API key used; None otherwise.
    pub api_key_id: Option<ApiKeyId>,
    /// The organization acted in; None when global.
    pub organization_id: Option<OrganizationId>,
    /// Kind of row acted on (`certificate`, `user`, ...); None when none.
    pub resource_type: Option<String>,
    /// Id of that row.
    pub resource_id: Option<ResourceId>,
    /// Event facts (ids, names, counts); never a secret.
    #[schemars(with = "serde_json::Value")]
    pub details: Json<serde_json::Value>,
    /// When it happened (UTC).
    pub event_timestamp: Timestamp,
    /// `row_hash` of the row before; 64 zeros for the first.
    pub previous_hash: String,
    /// Lowercase hex SHA-256 of `previous_hash` and this row's canonical JSON (RFC 8785): any edit
    /// breaks the chain.
    pub row_hash: String,
    /// When the row was written (equal to `event_timestamp`).
    pub created_at: Timestamp,
}

// ------------------------------------------------------------------ clm_core_db

/// A user account (`users`). Password hash and MFA secret are never serialized or printed.
#[derive(Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct User {
    /// Primary key (UUID v7).
    pub id: UserId,
    /// Login name: 3 to 64 letters, digits, `.`, `_`, `-` or `@`; unique.
    pub username: String,
    /// E-mail address, lower case; unique; a login with `@` uses it.
    pub email: String,
    /// Name to show; None when not given.
    pub display_name: Option<String>,
    /// `active` may log in; `locked` after too many failed logins (until `locked_until` or an
    /// unlock); `inactive` and `suspended` may not.
    pub status: UserStatus,
    /// argon2id PHC string; None for a user who cannot log in with a password.
    #[serde(skip)]
    pub password_hash: Option<OpaqueText>,
    /// A TOTP code is required at login.
    pub mfa_enabled: bool,
    /// TOTP secret sealed under a data key.
    #[serde(skip)]
    pub mfa_secret: Option<Opaque>,
    /// Nonce of `mfa_secret`'s sealing.
    #[serde(skip)]
    pub mfa_secret_nonce: Option<Opaque>,
    /// Data key that sealed `mfa_secret`.
    #[serde(skip)]
    pub mfa_encryption_key_id: Option<EncryptionKeyId>,
    /// TOTP time step of the last accepted code: a code is never accepted twice.
    #[serde(skip)]
    pub mfa_last_used_step: Option<i64>,
    /// Consecutive failed logins; reset by a successful login or an unlock.
    pub failed_login_attempts: i32,
    /// When a lock ends by itself; None while locked means until unlocked.
    pub locked_until: Option<Timestamp>,
    /// Last successful login; None before the first.
    pub last_login_at: Option<Timestamp>,
    /// Last password set; None when none was.
    pub password_changed_at: Option<Timestamp>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("status", &self.status)
            .field("mfa_enabled", &self.mfa_enabled)
            .field("failed_login_attempts", &self.failed_login_attempts)
            .field("locked_until", &self.locked_until)
            .field("deleted_at", &self.deleted_at)
            .finish_non_exhaustive()
    }
}

/// A named set of permissions (`roles`).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Role {
    /// Primary key (UUID v7).
    pub id: RoleId,
    /// Unique code, e.g. `ADMIN`; workflows name approvers as `role:CODE`.
    pub role_code: String,
    /// Name to show.
    pub role_name: String,
    /// Free text.
    pub description: Option<String>,
    /// Resource -> allowed actions, e.g. `{"certificates": ["read"]}`.
    #[schemars(with = "Permissions")]
    pub permissions: Json<Permissions>,
    /// Seeded by clm; cannot be changed or deleted.
    pub is_builtin: bool,
    /// Organization whose members it applies in; None for a global role.
    pub organization_id: Option<OrganizationId>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// A grant of a role to a user (`user_roles`).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserRole {
    /// Primary key (UUID v7).
    pub id: UserRoleId,
    /// The user granted the role.
    pub user_id: UserId,
    /// The role granted.
    pub role_id: RoleId,
    /// Who granted it; None for the system actor.
    pub granted_by_user_id: Option<UserId>,
    /// When it was granted.
    pub granted_at: Timestamp,
    /// When it was revoked; None while it holds (a role is held at most once at a time).
    pub revoked_at: Option<Timestamp>,
    /// Who revoked it.
    pub revoked_by_user_id: Option<UserId>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// A tenant (`organizations`): rows with its id belong to it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Organization {
    /// Primary key (UUID v7).
    pub id: OrganizationId,
    /// Unique code, e.g. `ACME`.
    pub org_code: String,
    /// Name to show.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// `active`; a `suspended` or `inactive` one drops out of its members' access.
    pub status: OrganizationStatus,
    /// Parent organization, recorded only (it grants nothing); None for a top-level one.
    pub parent_organization_id: Option<OrganizationId>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// A user's membership of an organization (`user_organizations`).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserOrganization {
    /// Primary key (UUID v7).
    pub id: UserOrganizationId,
    /// The member.
    pub user_id: UserId,
    /// The organization.
    pub organization_id: OrganizationId,
    /// `member` or `admin`: a label; permissions come from roles.
    pub membership_role: String,
    /// When the membership began.
    pub joined_at: Timestamp,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// Rules certificates are issued under (`policies`).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Policy {
    /// Primary key (UUID v7).
    pub id: PolicyId,
    /// Unique code.
    pub policy_code: String,
    /// Name to show.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The rules issuance is judged by.
    #[schemars(with = "PolicyRules")]
    pub policy_rules: Json<PolicyRules>,
    /// Only an `active` policy governs issuance.
    pub status: PolicyStatus,
    /// Starts at 1, one more each time the rules change; certificates record it.
    pub version: i32,
    /// Organization it governs; None for a shared policy.
    pub organization_id: Option<OrganizationId>,
    /// Approval workflow when its rules name no `workflow_code`; None: the default workflow
    /// (`DEFAULT_APPROVAL`).
    pub workflow_id: Option<WorkflowId>,
    /// Who created it; None for the system actor.
    pub created_by_user_id: Option<UserId>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// An approval workflow definition (`workflows`).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Workflow {
    /// Primary key (UUID v7).
    pub id: WorkflowId,
    /// Unique code; policies name it in `workflow_code`.
    pub workflow_code: String,
    /// Name to show.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Its steps and expiry.
    #[schemars(with = "WorkflowDefinition")]
    pub workflow_definition: Json<WorkflowDefinition>,
    /// Only an `active` workflow starts new runs.
    pub status: WorkflowDefinitionStatus,
    /// Version of the definition: 1, as a definition is not changed once created; runs record it.
    pub version: i32,
    /// Marks the default workflow clm seeds (`DEFAULT_APPROVAL`); at most one live workflow has it.
    pub is_default: bool,
    /// Organization it belongs to; None for a shared one.
    pub organization_id: Option<OrganizationId>,
    /// Who created it; None for the system actor.
    pub created_by_user_id: Option<UserId>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// One run of a workflow over a certificate request (`workflow_instances`).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkflowInstance {
    /// Primary key (UUID v7).
    pub id: WorkflowInstanceId,
    /// The workflow run.
    pub workflow_id: WorkflowId,
    /// The workflow's `version` at start.
    pub workflow_version: i32,
    /// `pending_approval` while waiting; `approved`, then `completed` once issued (`failed` if
    /// issuance failed; retried); or `rejected`, or `cancelled` (also when it expires).
    pub status: WorkflowStatus,
    /// What it decides on; `certificate_request` is the only type.
    pub subject_type: String,
    /// Id of that row (a `certificate_requests.id`).
    pub subject_id: ResourceId,
    /// Who made the request; may not approve it.
    pub requested_by_user_id: Option<UserId>,
    /// The request's organization; None for shared.
    pub organization_id: Option<OrganizationId>,
    /// `step_order` of the approval step waiting now.
    pub current_step_order: i32,
    /// The certificate issued once approved; None before.
    pub certificate_id: Option<CertificateId>,
    /// Why issuance failed or the run expired; None otherwise.
    pub error_message: Option<String>,
    /// When an unanswered run expires (the definition's `expires_after_hours`, 7 days by default).
    pub expires_at: Option<Timestamp>,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended; None while running.
    pub completed_at: Option<Timestamp>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// One recorded decision on an approval step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApprovalDecision {
    /// The approver.
    pub user_id: UserId,
    /// True approves, false rejects (one rejection rejects the step).
    pub approved: bool,
    /// Free text given with the decision.
    pub comment: Option<String>,
    /// When it was made.
    pub decided_at: Timestamp,
}

/// One step of a run (`workflow_steps`); an approval step has one row per approver reference.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkflowStep {
    /// Primary key (UUID v7).
    pub id: WorkflowStepId,
    /// The run it belongs to.
    pub workflow_instance_id: WorkflowInstanceId,
    /// The definition's `step_id`; an approval step has one row per approver reference, so it
    /// repeats.
    pub step_id: i32,
    /// Position of the step in the definition, from 0.
    pub step_order: i32,
    /// `validation`, `approval`, `issuance` or `notification`.
    pub step_type: StepType,
    /// The definition's name for the step.
    pub name: Option<String>,
    /// Validation steps are `completed` at start; approval steps go `initiated`, then
    /// `pending_approval`, then `approved`, `rejected` or `cancelled`.
    pub status: WorkflowStatus,
    /// Approver named `user:UUID`; None otherwise.
    pub assigned_to_user_id: Option<UserId>,
    /// Approver role named `role:CODE` (any holder may decide); None otherwise.
    pub assigned_to_role_id: Option<RoleId>,
    /// Distinct approvals the step needs (M of N).
    pub required_approvals: i32,
    /// Decisions recorded on this row, oldest first.
    #[schemars(with = "Vec<ApprovalDecision>")]
    pub approvals: Json<Vec<ApprovalDecision>>,
    /// Who decided last on this row.
    pub acted_by_user_id: Option<UserId>,
    /// Comment of that decision.
    pub decision_comment: Option<String>,
    /// When it began waiting; None before.
    pub started_at: Option<Timestamp>,
    /// When it was settled; None before.
    pub completed_at: Option<Timestamp>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// A notice to a user (`notifications`); the host delivers it from the outbox.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Notification {
    /// Primary key (UUID v7).
    pub id: NotificationId,
    /// Recipient.
    pub user_id: UserId,
    /// What it is about.
    pub notification_type: NotificationType,
    /// `low`, `normal`, `high` or `critical`.
    pub priority: NotificationPriority,
    /// One line.
    pub title: String,
    /// Body text.
    pub message: String,
    /// Kind of row it is about (`certificate`, `workflow_instance`, ...).
    pub resource_type: Option<String>,
    /// Id of that row.
    pub resource_id: Option<ResourceId>,
    /// Unique key (`certificate_expired:<id>`) so the same notice is made once; None when repeats
    /// are fine.
    pub dedup_key: Option<String>,
    /// The recipient marked it read.
    pub is_read: bool,
    /// When it was marked read.
    pub read_at: Option<Timestamp>,
    /// When the host reported delivery; None while in the outbox.
    pub delivered_at: Option<Timestamp>,
    /// Delivery reports counted: 1 once delivered, 0 before.
    pub delivery_attempts: i32,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// An API key (`api_keys`): acts for its user within its scopes. Only its hash is stored.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct ApiKey {
    /// Primary key (UUID v7).
    pub id: ApiKeyId,
    /// Public part of the key (`clm_<key_id>_...`); unique, safe to show.
    pub key_id: String,
    /// Lowercase hex SHA-256 of the whole key; the key itself is never stored.
    #[serde(skip)]
    pub key_hash: OpaqueText,
    /// Label chosen by its creator.
    pub name: String,
    /// The user it acts for.
    pub user_id: UserId,
    /// The one organization it may act in; None for the user's reach.
    pub organization_id: Option<OrganizationId>,
    /// Permissions it may use, within its user's (the intersection applies).
    #[schemars(with = "Permissions")]
    pub scopes: Json<Permissions>,
    /// When it stops working; None for never.
    pub expires_at: Option<Timestamp>,
    /// Last successful authentication.
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked; None while usable.
    pub revoked_at: Option<Timestamp>,
    /// Who revoked it.
    pub revoked_by_user_id: Option<UserId>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// A login session (`sessions`). Only the token's hash is stored.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct Session {
    /// Primary key (UUID v7).
    pub id: SessionId,
    /// Public id, `ses_` and 20 base62 characters; safe to show.
    pub session_id: String,
    /// Lowercase hex SHA-256 of the bearer token; the token itself is never stored.
    #[serde(skip)]
    pub token_hash: OpaqueText,
    /// The logged-in user.
    pub user_id: UserId,
    /// Client address the host passed at login.
    pub ip_address: Option<String>,
    /// Client user agent the host passed at login.
    pub user_agent: Option<String>,
    /// Absolute end (`security.session_ttl_seconds` after login).
    pub expires_at: Timestamp,
    /// Seconds without use after which it ends.
    pub idle_timeout_secs: i32,
    /// Last validation of its token.
    pub last_activity_at: Timestamp,
    /// When it was ended before expiry; None while valid.
    pub revoked_at: Option<Timestamp>,
    /// Why: `logout`, `revoked`, `password changed`, `user not active`, `user deleted`.
    pub revoke_reason: Option<String>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

/// Core-side labels of a certificate (`certificate_metadata`), 1:1 with `certificates`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertificateMetadata {
    /// Primary key (UUID v7).
    pub id: CertificateMetadataId,
    /// The certificate in the secure database it describes (1:1).
    pub certificate_id: CertificateId,
    /// Copy of the certificate's CN, for core-side queries.
    pub common_name: Option<String>,
    /// Copy of the certificate's `not_after`.
    pub not_after: Option<Timestamp>,
    /// Copy of the certificate's owner.
    pub owner_user_id: Option<UserId>,
    /// Copy of the certificate's organization.
    pub organization_id: Option<OrganizationId>,
    /// Deployment label set by users, e.g. `production`.
    pub environment: Option<String>,
    /// Application label set by users.
    pub application: Option<String>,
    /// Free key-value labels.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub tags: Json<serde_json::Map<String, serde_json::Value>>,
    /// Free text.
    pub notes: Option<String>,
    /// Reserved for the last expiry threshold notified; clm deduplicates notices by `dedup_key` and
    /// clears this when `not_after` changes.
    pub last_notified_threshold: Option<i32>,
    /// When clm wrote the row.
    pub created_at: Timestamp,
    /// Last change to the row (kept current by the database).
    pub updated_at: Timestamp,
    /// Soft delete: when the row was deleted; listings hide such rows unless asked to include them.
    pub deleted_at: Option<Timestamp>,
}

// ------------------------------------------------------------------------ views

/// A row of the `expiring_certificates` view: in service (`active` or `expiring`) and ending
/// within 30 days.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExpiringCertificate {
    /// The certificate's primary key.
    pub id: CertificateId,
    /// Readable id (`cert_...`).
    pub certificate_id: String,
    /// Subject CN; None when absent.
    pub common_name: Option<String>,
    /// Subject, RFC 4514.
    pub subject_dn: String,
    /// Issuer, RFC 4514.
    pub issuer_dn: String,
    /// Serial, lowercase hex.
    pub serial_number: String,
    /// Serial as a signed hex integer (`-0x4316693ed` for a negative one).
    #[sqlx(rename = "serial_number", try_from = "String")]
    pub serial_number_signed: SignedSerial,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity, within the next 30 days.
    pub not_after: Timestamp,
    /// `active` or `expiring`.
    pub status: CertificateStatus,
    /// Lowercase hex SHA-256 of the DER.
    pub fingerprint_sha256: String,
    /// Key family (`RSA`, `ECDSA`, `Ed25519`, ...).
    pub key_algorithm: String,
    /// Key size in bits; 0 when unknown.
    pub key_size: i32,
    /// The certificate is a CA.
    pub is_ca: bool,
    /// What it is for.
    pub certificate_kind: CertificateKind,
    /// Owner; None when nobody.
    pub owner_user_id: Option<UserId>,
    /// Organization; None for shared.
    pub organization_id: Option<OrganizationId>,
    /// Policy it was issued under.
    pub policy_id: Option<PolicyId>,
    /// Whole days left, rounded down.
    pub days_until_expiry: i32,
}

/// A row of the `active_certificates` view: live certificates in service (`active` or
/// `expiring`), without PEM or key material.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActiveCertificate {
    /// The certificate's primary key.
    pub id: CertificateId,
    /// Readable id (`cert_...`).
    pub certificate_id: String,
    /// Subject CN; None when absent.
    pub common_name: Option<String>,
    /// Subject, RFC 4514.
    pub subject_dn: String,
    /// Issuer, RFC 4514.
    pub issuer_dn: String,
    /// Serial, lowercase hex.
    pub serial_number: String,
    /// Serial as a signed hex integer (`-0x4316693ed` for a negative one).
    #[sqlx(rename = "serial_number", try_from = "String")]
    pub serial_number_signed: SignedSerial,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// `active` or `expiring`.
    pub status: CertificateStatus,
    /// Lowercase hex SHA-256 of the DER.
    pub fingerprint_sha256: String,
    /// Key family (`RSA`, `ECDSA`, `Ed25519`, ...).
    pub key_algorithm: String,
    /// Key size in bits; 0 when unknown.
    pub key_size: i32,
    /// Issuer's signature algorithm.
    pub signature_algorithm: String,
    /// The certificate is a CA.
    pub is_ca: bool,
    /// What it is for.
    pub certificate_kind: CertificateKind,
    /// Issuing CA's row when known.
    pub issuer_certificate_id: Option<CertificateId>,
    /// Subject alternative names.
    #[schemars(with = "Vec<SubjectAlternativeName>")]
    pub subject_alternative_names: Json<Vec<SubjectAlternativeName>>,
    /// Owner; None when nobody.
    pub owner_user_id: Option<UserId>,
    /// Organization; None for shared.
    pub organization_id: Option<OrganizationId>,
    /// Policy it was issued under.
    pub policy_id: Option<PolicyId>,
    /// When clm recorded it.
    pub created_at: Timestamp,
}

/// A row of the `active_users_with_roles` view: an active user with the roles it holds now.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActiveUserWithRoles {
    /// The user's primary key.
    pub id: UserId,
    /// Login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Name to show.
    pub display_name: Option<String>,
    /// Always `active` here.
    pub status: UserStatus,
    /// A TOTP code is required at login.
    pub mfa_enabled: bool,
    /// Last successful login.
    pub last_login_at: Option<Timestamp>,
    /// When the user was created.
    pub created_at: Timestamp,
    /// Names of the roles it holds now, ordered by role code.
    #[schemars(with = "Vec<String>")]
    pub role_names: Json<Vec<String>>,
    /// Codes of the roles it holds now, sorted.
    #[schemars(with = "Vec<String>")]
    pub role_codes: Json<Vec<String>>,
}

/// A row of the `pending_approvals` view: an approval step row waiting for a decision.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PendingApproval {
    /// The step row waiting for a decision.
    pub workflow_step_id: WorkflowStepId,
    /// Its workflow run.
    pub workflow_instance_id: WorkflowInstanceId,
    /// The definition's step id.
    pub step_id: i32,
    /// The step's name.
    pub step_name: Option<String>,
    /// Approver user, when named by user.
    pub assigned_to_user_id: Option<UserId>,
    /// Approver role, when named by role.
    pub assigned_to_role_id: Option<RoleId>,
    /// Distinct approvals the step needs.
    pub required_approvals: i32,
    /// Decisions recorded so far.
    #[schemars(with = "Vec<ApprovalDecision>")]
    pub approvals: Json<Vec<ApprovalDecision>>,
    /// The workflow the run follows.
    pub workflow_id: WorkflowId,
    /// The workflow's code.
    pub workflow_code: String,
    /// The workflow's name.
    pub workflow_name: String,
    /// What it decides on: `certificate_request`.
    pub subject_type: String,
    /// The request waiting (`certificate_requests.id`).
    pub subject_id: ResourceId,
    /// Who made the request; may not approve it.
    pub requested_by_user_id: Option<UserId>,
    /// The request's organization; None for shared.
    pub organization_id: Option<OrganizationId>,
    /// When the run expires unanswered.
    pub expires_at: Option<Timestamp>,
    /// When the step row was created.
    pub created_at: Timestamp,
}

/// A row of the `certificate_summary` view: certificate metadata with owner and organization
/// details.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertificateSummary {
    /// The metadata row's primary key.
    pub id: CertificateMetadataId,
    /// The certificate it describes (`certificates.id`).
    pub certificate_id: CertificateId,
    /// The certificate's CN.
    pub common_name: Option<String>,
    /// The certificate's end of validity.
    pub not_after: Option<Timestamp>,
    /// Deployment label.
    pub environment: Option<String>,
    /// Application label.
    pub application: Option<String>,
    /// Free key-value labels.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub tags: Json<serde_json::Map<String, serde_json::Value>>,
    /// The certificate's owner; None when nobody.
    pub owner_user_id: Option<UserId>,
    /// Owner's username; None without an owner.
    pub owner_username: Option<String>,
    /// Owner's e-mail; None without an owner.
    pub owner_email: Option<String>,
    /// Organization; None for shared.
    pub organization_id: Option<OrganizationId>,
    /// Organization's code.
    pub org_code: Option<String>,
    /// Organization's name.
    pub organization_name: Option<String>,
    /// When the metadata row was created.
    pub created_at: Timestamp,
    /// Last change to the metadata row.
    pub updated_at: Timestamp,
}
