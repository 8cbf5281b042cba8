//! Status and kind enums, stored as the schema summary's strings. The database
//! enforces the same sets with CHECK constraints.

use std::fmt;
use std::str::FromStr;

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> crate::Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(crate::Error::invalid(
                        stringify!($name),
                        format!("{other:?} is not one of {}", [$($text),+].join(", ")),
                    )),
                }
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'static str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'static str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(text.parse::<$name>()?)
            }
        }
    };
}

string_enum!(
    /// `certificates.status`, exactly the summary's values.
    CertificateStatus {
        Pending => "pending",
        Active => "active",
        Expiring => "expiring",
        Expired => "expired",
        Revoked => "revoked",
        Suspended => "suspended",
    }
);

string_enum!(
    /// `users.status`.
    UserStatus {
        Active => "active",
        Inactive => "inactive",
        Locked => "locked",
        Suspended => "suspended",
    }
);

string_enum!(
    /// `workflow_instances.status` and `workflow_steps.status`.
    WorkflowStatus {
        Initiated => "initiated",
        InProgress => "in_progress",
        PendingApproval => "pending_approval",
        Approved => "approved",
        Rejected => "rejected",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

string_enum!(
    /// `policies.status`.
    PolicyStatus {
        Draft => "draft",
        Active => "active",
        Inactive => "inactive",
        Archived => "archived",
    }
);

string_enum!(
    /// `workflows.status`: a definition is usable only while active.
    WorkflowDefinitionStatus {
        Draft => "draft",
        Active => "active",
        Inactive => "inactive",
        Archived => "archived",
    }
);

string_enum!(
    /// `organizations.status`.
    OrganizationStatus {
        Active => "active",
        Inactive => "inactive",
        Suspended => "suspended",
    }
);

string_enum!(
    /// `encryption_keys.key_status`: `active` seals new data; `decrypt_only` still
    /// opens old data during a rotation; `retired` is used by nothing.
    KeyStatus {
        Active => "active",
        DecryptOnly => "decrypt_only",
        Retired => "retired",
    }
);

string_enum!(
    /// `encryption_keys.key_type`.
    KeyType {
        DataEncryption => "data_encryption",
    }
);

string_enum!(
    /// `certificate_requests.status`.
    RequestStatus {
        Pending => "pending",
        PendingApproval => "pending_approval",
        Approved => "approved",
        Rejected => "rejected",
        Issued => "issued",
        Failed => "failed",
        Cancelled => "cancelled",
        Expired => "expired",
    }
);

string_enum!(
    /// `key_rotation_history.status`.
    RotationStatus {
        InProgress => "in_progress",
        Completed => "completed",
        Failed => "failed",
    }
);

string_enum!(
    /// `key_rotation_history.rotation_type`.
    RotationType {
        DataKey => "data_key",
        MasterKey => "master_key",
    }
);

string_enum!(
    /// RFC 5280 CRLReason, stored by name in `certificate_revocations.revocation_reason`.
    RevocationReason {
        Unspecified => "unspecified",
        KeyCompromise => "key_compromise",
        CaCompromise => "ca_compromise",
        AffiliationChanged => "affiliation_changed",
        Superseded => "superseded",
        CessationOfOperation => "cessation_of_operation",
        CertificateHold => "certificate_hold",
        RemoveFromCrl => "remove_from_crl",
        PrivilegeWithdrawn => "privilege_withdrawn",
        AaCompromise => "aa_compromise",
    }
);

impl RevocationReason {
    /// The RFC 5280 CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            RevocationReason::RemoveFromCrl => 8,
            RevocationReason::PrivilegeWithdrawn => 9,
            RevocationReason::AaCompromise => 10,
        }
    }
}

string_enum!(
    /// What a certificate is for; drives key usage and extended key usage.
    CertificateKind {
        RootCa => "root_ca",
        IntermediateCa => "intermediate_ca",
        TlsServer => "tls_server",
        TlsClient => "tls_client",
        TlsServerClient => "tls_server_client",
        CodeSigning => "code_signing",
        Email => "email",
        Imported => "imported",
    }
);

string_enum!(
    /// `certificates.source`: how the certificate came to clm.
    CertificateSource {
        Issued => "issued",
        Imported => "imported",
    }
);

string_enum!(
    /// `workflow_steps.step_type` and the `type` of a workflow definition step.
    StepType {
        Validation => "validation",
        Approval => "approval",
        Issuance => "issuance",
        Notification => "notification",
    }
);

string_enum!(
    /// `notifications.notification_type`.
    NotificationType {
        ApprovalRequired => "approval_required",
        RequestApproved => "request_approved",
        RequestRejected => "request_rejected",
        CertificateIssued => "certificate_issued",
        CertificateExpiring => "certificate_expiring",
        CertificateExpired => "certificate_expired",
        CertificateRevoked => "certificate_revoked",
        KeyRotationCompleted => "key_rotation_completed",
        RenewalStarted => "renewal_started",
    }
);

string_enum!(
    /// `notifications.priority`.
    NotificationPriority {
        Low => "low",
        Normal => "normal",
        High => "high",
        Critical => "critical",
    }
);

string_enum!(
    /// Outcome recorded in both audit tables.
    AuditOutcome {
        Success => "success",
        Failure => "failure",
        Denied => "denied",
    }
);

string_enum!(
    /// `audit_log.actor_type` / `secure_audit_log.actor_type`.
    ActorType {
        User => "user",
        ApiKey => "api_key",
        System => "system",
    }
);
