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

#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct EncryptionKey {
    pub id: EncryptionKeyId,
    pub key_id: String,
    pub key_type: KeyType,
    pub key_status: KeyStatus,
    pub algorithm: String,
    pub key_version: i32,
    #[serde(skip)]
    pub wrapped_key: Opaque,
    #[serde(skip)]
    pub wrap_nonce: Opaque,
    pub master_key_id: String,
    pub encryption_count: i64,
    pub activated_at: Option<Timestamp>,
    pub retired_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Certificate {
    pub id: CertificateId,
    pub certificate_id: String,
    pub common_name: Option<String>,
    pub subject_dn: String,
    pub issuer_dn: String,
    pub serial_number: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub status: CertificateStatus,
    pub fingerprint_sha256: String,
    pub key_algorithm: String,
    pub key_size: i32,
    pub signature_algorithm: String,
    pub is_ca: bool,
    pub path_len: Option<i32>,
    pub certificate_kind: CertificateKind,
    pub source: CertificateSource,
    pub issuer_certificate_id: Option<CertificateId>,
    pub replaces_certificate_id: Option<CertificateId>,
    pub subject_key_id: Option<String>,
    pub authority_key_id: Option<String>,
    #[schemars(with = "Vec<SubjectAlternativeName>")]
    pub subject_alternative_names: Json<Vec<SubjectAlternativeName>>,
    #[schemars(with = "Vec<String>")]
    pub import_flags: Json<Vec<String>>,
    /// Empty in light list rows (see `CertificateQuery::with_pem`).
    pub certificate_pem: String,
    pub owner_user_id: Option<UserId>,
    pub organization_id: Option<OrganizationId>,
    pub policy_id: Option<PolicyId>,
    pub policy_version: Option<i32>,
    pub workflow_id: Option<WorkflowId>,
    pub crl_number: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PrivateKeyRecord {
    pub id: PrivateKeyId,
    pub certificate_id: CertificateId,
    pub encryption_key_id: EncryptionKeyId,
    pub encrypted_key_material: Opaque,
    pub nonce: Opaque,
    pub key_algorithm: String,
    pub key_size: i32,
    pub public_key_sha256: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertificateRequest {
    pub id: CertificateRequestId,
    pub request_id: String,
    pub csr_pem: Option<String>,
    pub common_name: Option<String>,
    pub subject_dn: String,
    #[schemars(with = "Vec<SubjectAlternativeName>")]
    pub subject_alternative_names: Json<Vec<SubjectAlternativeName>>,
    pub key_algorithm: String,
    pub key_size: i32,
    pub certificate_kind: CertificateKind,
    pub validity_days: i32,
    pub status: RequestStatus,
    pub issuer_certificate_id: Option<CertificateId>,
    pub certificate_id: Option<CertificateId>,
    pub renewal_of_certificate_id: Option<CertificateId>,
    pub reuse_key: bool,
    pub requested_by_user_id: Option<UserId>,
    pub owner_user_id: Option<UserId>,
    pub organization_id: Option<OrganizationId>,
    pub policy_id: Option<PolicyId>,
    pub workflow_instance_id: Option<WorkflowInstanceId>,
    pub failure_reason: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertificateRevocation {
    pub id: RevocationId,
    pub certificate_id: CertificateId,
    pub issuer_certificate_id: Option<CertificateId>,
    pub serial_number: String,
    pub revocation_reason: RevocationReason,
    pub revoked_at: Timestamp,
    pub revoked_by_user_id: Option<UserId>,
    pub comment: Option<String>,
    pub released_at: Option<Timestamp>,
    pub released_by_user_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyRotation {
    pub id: KeyRotationId,
    pub rotation_type: RotationType,
    pub old_key_id: Option<EncryptionKeyId>,
    pub new_key_id: Option<EncryptionKeyId>,
    pub old_master_key_id: Option<String>,
    pub new_master_key_id: Option<String>,
    pub status: RotationStatus,
    pub total_items: i64,
    pub rotated_items: i64,
    pub last_item_id: Option<PrivateKeyId>,
    pub error_message: Option<String>,
    pub initiated_by_user_id: Option<UserId>,
    pub started_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

/// A row of `secure_audit_log` or `audit_log` (same shape).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEvent {
    pub id: AuditId,
    pub sequence_number: i64,
    pub event_type: String,
    pub action: String,
    pub outcome: AuditOutcome,
    pub actor_type: ActorType,
    pub user_id: Option<UserId>,
    pub api_key_id: Option<ApiKeyId>,
    pub organization_id: Option<OrganizationId>,
    pub resource_type: Option<String>,
    pub resource_id: Option<ResourceId>,
    #[schemars(with = "serde_json::Value")]
    pub details: Json<serde_json::Value>,
    pub event_timestamp: Timestamp,
    pub previous_hash: String,
    pub row_hash: String,
    pub created_at: Timestamp,
}

// ------------------------------------------------------------------ clm_core_db

#[derive(Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub status: UserStatus,
    #[serde(skip)]
    pub password_hash: Option<OpaqueText>,
    pub mfa_enabled: bool,
    #[serde(skip)]
    pub mfa_secret: Option<Opaque>,
    #[serde(skip)]
    pub mfa_secret_nonce: Option<Opaque>,
    #[serde(skip)]
    pub mfa_encryption_key_id: Option<EncryptionKeyId>,
    #[serde(skip)]
    pub mfa_last_used_step: Option<i64>,
    pub failed_login_attempts: i32,
    pub locked_until: Option<Timestamp>,
    pub last_login_at: Option<Timestamp>,
    pub password_changed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
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

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Role {
    pub id: RoleId,
    pub role_code: String,
    pub role_name: String,
    pub description: Option<String>,
    #[schemars(with = "Permissions")]
    pub permissions: Json<Permissions>,
    pub is_builtin: bool,
    pub organization_id: Option<OrganizationId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserRole {
    pub id: UserRoleId,
    pub user_id: UserId,
    pub role_id: RoleId,
    pub granted_by_user_id: Option<UserId>,
    pub granted_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by_user_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Organization {
    pub id: OrganizationId,
    pub org_code: String,
    pub name: String,
    pub description: Option<String>,
    pub status: OrganizationStatus,
    pub parent_organization_id: Option<OrganizationId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserOrganization {
    pub id: UserOrganizationId,
    pub user_id: UserId,
    pub organization_id: OrganizationId,
    pub membership_role: String,
    pub joined_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Policy {
    pub id: PolicyId,
    pub policy_code: String,
    pub name: String,
    pub description: Option<String>,
    #[schemars(with = "PolicyRules")]
    pub policy_rules: Json<PolicyRules>,
    pub status: PolicyStatus,
    pub version: i32,
    pub organization_id: Option<OrganizationId>,
    pub workflow_id: Option<WorkflowId>,
    pub created_by_user_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Workflow {
    pub id: WorkflowId,
    pub workflow_code: String,
    pub name: String,
    pub description: Option<String>,
    #[schemars(with = "WorkflowDefinition")]
    pub workflow_definition: Json<WorkflowDefinition>,
    pub status: WorkflowDefinitionStatus,
    pub version: i32,
    pub is_default: bool,
    pub organization_id: Option<OrganizationId>,
    pub created_by_user_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkflowInstance {
    pub id: WorkflowInstanceId,
    pub workflow_id: WorkflowId,
    pub workflow_version: i32,
    pub status: WorkflowStatus,
    pub subject_type: String,
    pub subject_id: ResourceId,
    pub requested_by_user_id: Option<UserId>,
    pub organization_id: Option<OrganizationId>,
    pub current_step_order: i32,
    pub certificate_id: Option<CertificateId>,
    pub error_message: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub started_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

/// One recorded decision on an approval step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApprovalDecision {
    pub user_id: UserId,
    pub approved: bool,
    pub comment: Option<String>,
    pub decided_at: Timestamp,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkflowStep {
    pub id: WorkflowStepId,
    pub workflow_instance_id: WorkflowInstanceId,
    pub step_id: i32,
    pub step_order: i32,
    pub step_type: StepType,
    pub name: Option<String>,
    pub status: WorkflowStatus,
    pub assigned_to_user_id: Option<UserId>,
    pub assigned_to_role_id: Option<RoleId>,
    pub required_approvals: i32,
    #[schemars(with = "Vec<ApprovalDecision>")]
    pub approvals: Json<Vec<ApprovalDecision>>,
    pub acted_by_user_id: Option<UserId>,
    pub decision_comment: Option<String>,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Notification {
    pub id: NotificationId,
    pub user_id: UserId,
    pub notification_type: NotificationType,
    pub priority: NotificationPriority,
    pub title: String,
    pub message: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<ResourceId>,
    pub dedup_key: Option<String>,
    pub is_read: bool,
    pub read_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub delivery_attempts: i32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub key_id: String,
    #[serde(skip)]
    pub key_hash: OpaqueText,
    pub name: String,
    pub user_id: UserId,
    pub organization_id: Option<OrganizationId>,
    #[schemars(with = "Permissions")]
    pub scopes: Json<Permissions>,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by_user_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct Session {
    pub id: SessionId,
    pub session_id: String,
    #[serde(skip)]
    pub token_hash: OpaqueText,
    pub user_id: UserId,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub expires_at: Timestamp,
    pub idle_timeout_secs: i32,
    pub last_activity_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub revoke_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertificateMetadata {
    pub id: CertificateMetadataId,
    pub certificate_id: CertificateId,
    pub common_name: Option<String>,
    pub not_after: Option<Timestamp>,
    pub owner_user_id: Option<UserId>,
    pub organization_id: Option<OrganizationId>,
    pub environment: Option<String>,
    pub application: Option<String>,
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub tags: Json<serde_json::Map<String, serde_json::Value>>,
    pub notes: Option<String>,
    pub last_notified_threshold: Option<i32>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

// ------------------------------------------------------------------------ views

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExpiringCertificate {
    pub id: CertificateId,
    pub certificate_id: String,
    pub common_name: Option<String>,
    pub subject_dn: String,
    pub issuer_dn: String,
    pub serial_number: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub status: CertificateStatus,
    pub fingerprint_sha256: String,
    pub key_algorithm: String,
    pub key_size: i32,
    pub is_ca: bool,
    pub certificate_kind: CertificateKind,
    pub owner_user_id: Option<UserId>,
    pub organization_id: Option<OrganizationId>,
    pub policy_id: Option<PolicyId>,
    pub days_until_expiry: i32,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActiveCertificate {
    pub id: CertificateId,
    pub certificate_id: String,
    pub common_name: Option<String>,
    pub subject_dn: String,
    pub issuer_dn: String,
    pub serial_number: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub status: CertificateStatus,
    pub fingerprint_sha256: String,
    pub key_algorithm: String,
    pub key_size: i32,
    pub signature_algorithm: String,
    pub is_ca: bool,
    pub certificate_kind: CertificateKind,
    pub issuer_certificate_id: Option<CertificateId>,
    #[schemars(with = "Vec<SubjectAlternativeName>")]
    pub subject_alternative_names: Json<Vec<SubjectAlternativeName>>,
    pub owner_user_id: Option<UserId>,
    pub organization_id: Option<OrganizationId>,
    pub policy_id: Option<PolicyId>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActiveUserWithRoles {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub status: UserStatus,
    pub mfa_enabled: bool,
    pub last_login_at: Option<Timestamp>,
    pub created_at: Timestamp,
    #[schemars(with = "Vec<String>")]
    pub role_names: Json<Vec<String>>,
    #[schemars(with = "Vec<String>")]
    pub role_codes: Json<Vec<String>>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PendingApproval {
    pub workflow_step_id: WorkflowStepId,
    pub workflow_instance_id: WorkflowInstanceId,
    pub step_id: i32,
    pub step_name: Option<String>,
    pub assigned_to_user_id: Option<UserId>,
    pub assigned_to_role_id: Option<RoleId>,
    pub required_approvals: i32,
    #[schemars(with = "Vec<ApprovalDecision>")]
    pub approvals: Json<Vec<ApprovalDecision>>,
    pub workflow_id: WorkflowId,
    pub workflow_code: String,
    pub workflow_name: String,
    pub subject_type: String,
    pub subject_id: ResourceId,
    pub requested_by_user_id: Option<UserId>,
    pub organization_id: Option<OrganizationId>,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertificateSummary {
    pub id: CertificateMetadataId,
    pub certificate_id: CertificateId,
    pub common_name: Option<String>,
    pub not_after: Option<Timestamp>,
    pub environment: Option<String>,
    pub application: Option<String>,
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub tags: Json<serde_json::Map<String, serde_json::Value>>,
    pub owner_user_id: Option<UserId>,
    pub owner_username: Option<String>,
    pub owner_email: Option<String>,
    pub organization_id: Option<OrganizationId>,
    pub org_code: Option<String>,
    pub organization_name: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
