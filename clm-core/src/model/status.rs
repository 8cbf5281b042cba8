//! Status and kind enums, stored as the schema summary's strings. The database
//! enforces the same sets with CHECK constraints.

use std::fmt;
use std::str::FromStr;

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The string stored in the database and used in JSON.
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
        /// Not valid yet: `not_before` is in the future.
        Pending => "pending",
        /// Valid, and not within the expiry warning window.
        Active => "active",
        /// Valid, but ends within the warning window (the policy's `renewal_threshold_days`, 30 by
        /// default).
        Expiring => "expiring",
        /// Past `not_after`.
        Expired => "expired",
        /// Revoked for good.
        Revoked => "revoked",
        /// On hold (`certificate_hold`): listed on the CRL until the hold is released.
        Suspended => "suspended",
    }
);

string_enum!(
    /// `users.status`.
    UserStatus {
        /// May log in and act.
        Active => "active",
        /// Disabled; may not log in.
        Inactive => "inactive",
        /// Locked after too many failed logins, until `locked_until` or an unlock.
        Locked => "locked",
        /// Suspended; may not log in.
        Suspended => "suspended",
    }
);

string_enum!(
    /// `workflow_instances.status` and `workflow_steps.status`.
    WorkflowStatus {
        /// Created, not reached yet.
        Initiated => "initiated",
        /// Running.
        InProgress => "in_progress",
        /// Waiting for approvers.
        PendingApproval => "pending_approval",
        /// Every approval given; issuance follows.
        Approved => "approved",
        /// An approver rejected it.
        Rejected => "rejected",
        /// Done (for a run: the certificate was issued).
        Completed => "completed",
        /// Issuance failed; may be retried or cancelled.
        Failed => "failed",
        /// Cancelled, or expired waiting for approval.
        Cancelled => "cancelled",
    }
);

string_enum!(
    /// `policies.status`.
    PolicyStatus {
        /// Being edited; governs nothing yet.
        Draft => "draft",
        /// Governs issuance.
        Active => "active",
        /// Not in use; governs nothing.
        Inactive => "inactive",
        /// Retired, kept for the record; in effect nowhere.
        Archived => "archived",
    }
);

string_enum!(
    /// `workflows.status`: a definition is usable only while active.
    WorkflowDefinitionStatus {
        /// Being edited; starts no runs.
        Draft => "draft",
        /// Starts new runs.
        Active => "active",
        /// Starts no new runs.
        Inactive => "inactive",
        /// Retired, kept for the record; in effect nowhere.
        Archived => "archived",
    }
);

string_enum!(
    /// `organizations.status`.
    OrganizationStatus {
        /// Its members act in it.
        Active => "active",
        /// Not in use: its memberships grant nothing.
        Inactive => "inactive",
        /// Suspended: its memberships grant nothing until it is active again.
        Suspended => "suspended",
    }
);

string_enum!(
    /// `encryption_keys.key_status`: `active` seals new data; `decrypt_only` still
    /// opens old data during a rotation; `retired` is used by nothing.
    KeyStatus {
        /// Seals new data; at most one key is active.
        Active => "active",
        /// Opens data it sealed while a rotation moves that data to the active key.
        DecryptOnly => "decrypt_only",
        /// Seals and opens nothing any more.
        Retired => "retired",
    }
);

string_enum!(
    /// `encryption_keys.key_type`.
    KeyType {
        /// Seals private keys and MFA secrets.
        DataEncryption => "data_encryption",
    }
);

string_enum!(
    /// `certificate_requests.status`.
    RequestStatus {
        /// The schema's initial state; clm records a request as `pending_approval` or `issued`
        /// at once.
        Pending => "pending",
        /// Waiting for its approval workflow.
        PendingApproval => "pending_approval",
        /// Approved; issuance follows.
        Approved => "approved",
        /// An approver rejected it.
        Rejected => "rejected",
        /// The certificate was issued (`certificate_id`).
        Issued => "issued",
        /// It could not proceed (`failure_reason`), e.g. its approval workflow could not start.
        Failed => "failed",
        /// Cancelled before issuance.
        Cancelled => "cancelled",
        /// Nobody decided before its workflow expired.
        Expired => "expired",
    }
);

string_enum!(
    /// `key_rotation_history.status`.
    RotationStatus {
        /// Running, or stopped by an error (`error_message`); the next call resumes it.
        InProgress => "in_progress",
        /// Every record moved to the new key.
        Completed => "completed",
        /// Allowed by the schema; clm leaves a stopped rotation `in_progress` so it can resume.
        Failed => "failed",
    }
);

string_enum!(
    /// `ca_rollovers.status`.
    RolloverStatus {
        /// Stages remain; a run (after a crash too) continues at `stage`.
        InProgress => "in_progress",
        /// Stopped at `retire_old`: dependants of the old CA still wait
        /// (approvals, failed reissues, subordinate CAs); run again later.
        Waiting => "waiting",
        /// Every stage done; the old CA is retired.
        Completed => "completed",
    }
);

string_enum!(
    /// `ca_rollovers.stage`: the stage a rollover runs next, in order.
    RolloverStage {
        /// Create the successor CA (a new root, or signed by the old CA's parent).
        CreateSuccessor => "create_successor",
        /// Roots: new-root subject signed by the old key and old-root subject
        /// signed by the new key. Intermediates skip it.
        CrossSign => "cross_sign",
        /// Store the PEM bundle of old and new (and cross certificates).
        PublishTrustBundle => "publish_trust_bundle",
        /// Requests naming the old CA go to the successor from now on.
        SwitchIssuance => "switch_issuance",
        /// Renew every still-valid leaf of the old CA under the successor.
        ReissueLeaves => "reissue_leaves",
        /// Retire the old CA once nothing valid depends on it.
        RetireOld => "retire_old",
        /// Nothing left.
        Done => "done",
    }
);

string_enum!(
    /// `key_rotation_history.rotation_type`.
    RotationType {
        /// A new data key: private keys and MFA secrets are re-sealed under it.
        DataKey => "data_key",
        /// A new master key: the data keys are re-wrapped under it.
        MasterKey => "master_key",
    }
);

string_enum!(
    /// What a stored CRL is (`crls.kind`): RFC 5280 complete or delta.
    CrlKind {
        /// A complete CRL: every standing revocation of its scope.
        Full => "full",
        /// A delta CRL: what changed since the complete CRL it names.
        Delta => "delta",
    }
);

string_enum!(
    /// RFC 5280 CRLReason, stored by name in `certificate_revocations.revocation_reason`.
    RevocationReason {
        /// No reason given (code 0).
        Unspecified => "unspecified",
        /// The private key leaked (code 1); the key is refused from then on.
        KeyCompromise => "key_compromise",
        /// The issuing CA's key leaked (code 2).
        CaCompromise => "ca_compromise",
        /// The subject's name or affiliation changed (code 3).
        AffiliationChanged => "affiliation_changed",
        /// Replaced by another certificate (code 4).
        Superseded => "superseded",
        /// No longer needed (code 5).
        CessationOfOperation => "cessation_of_operation",
        /// Suspended; can be released (code 6).
        CertificateHold => "certificate_hold",
        /// Delta-CRL only: an entry leaves the CRL (code 8).
        RemoveFromCrl => "remove_from_crl",
        /// A privilege it asserts was withdrawn (code 9).
        PrivilegeWithdrawn => "privilege_withdrawn",
        /// The attribute authority was compromised (code 10).
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
        /// Self-signed CA.
        RootCa => "root_ca",
        /// CA signed by another CA.
        IntermediateCa => "intermediate_ca",
        /// TLS server (serverAuth).
        TlsServer => "tls_server",
        /// TLS client (clientAuth).
        TlsClient => "tls_client",
        /// Both TLS server and client.
        TlsServerClient => "tls_server_client",
        /// Code signing (codeSigning).
        CodeSigning => "code_signing",
        /// S/MIME e-mail protection (emailProtection).
        Email => "email",
        /// An imported certificate of no purpose above.
        Imported => "imported",
    }
);

string_enum!(
    /// `certificates.source`: how the certificate came to clm.
    CertificateSource {
        /// Signed by a CA of clm.
        Issued => "issued",
        /// Brought in by an import.
        Imported => "imported",
    }
);

string_enum!(
    /// `workflow_steps.step_type` and the `type` of a workflow definition step.
    StepType {
        /// Checks done when the run starts.
        Validation => "validation",
        /// Waits for approvers' decisions.
        Approval => "approval",
        /// Issues the certificate.
        Issuance => "issuance",
        /// Tells the people concerned.
        Notification => "notification",
    }
);

string_enum!(
    /// `notifications.notification_type`.
    NotificationType {
        /// A request waits for the recipient's approval.
        ApprovalRequired => "approval_required",
        /// The recipient's request was approved.
        RequestApproved => "request_approved",
        /// The recipient's request was rejected.
        RequestRejected => "request_rejected",
        /// A certificate of the recipient was issued.
        CertificateIssued => "certificate_issued",
        /// A certificate of the recipient ends soon.
        CertificateExpiring => "certificate_expiring",
        /// A certificate of the recipient expired.
        CertificateExpired => "certificate_expired",
        /// A certificate of the recipient was revoked.
        CertificateRevoked => "certificate_revoked",
        /// A key rotation the recipient started completed.
        KeyRotationCompleted => "key_rotation_completed",
        /// Automatic renewal of a certificate of the recipient started.
        RenewalStarted => "renewal_started",
    }
);

string_enum!(
    /// `notifications.priority`.
    NotificationPriority {
        /// Informational.
        Low => "low",
        /// The default.
        Normal => "normal",
        /// Needs attention soon.
        High => "high",
        /// Needs attention now.
        Critical => "critical",
    }
);

string_enum!(
    /// Outcome recorded in both audit tables.
    AuditOutcome {
        /// It happened.
        Success => "success",
        /// It was tried and failed (a wrong password, an error).
        Failure => "failure",
        /// It was refused for want of permission.
        Denied => "denied",
    }
);

string_enum!(
    /// `audit_log.actor_type` / `secure_audit_log.actor_type`.
    ActorType {
        /// A logged-in user.
        User => "user",
        /// An API key (the row also names its user).
        ApiKey => "api_key",
        /// The library itself (lifecycle runs, setup).
        System => "system",
    }
);
