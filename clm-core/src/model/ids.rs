//! Typed ids: one newtype over `Uuid` per table so an id of one table cannot be
//! passed where another is expected. PostgreSQL stores them as `UUID`, SQLite as
//! hyphenated `TEXT` so a DBA can read and query them.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id: keeps B-tree inserts local.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// The UUID inside.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "format": "uuid",
                    "description": concat!("A ", stringify!($name), " (UUID text)."),
                })
            }
        }

        impl FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> crate::Result<Self> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| crate::Error::invalid(stringify!($name), format!("{s:?} is not a UUID")))
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        #[cfg(feature = "postgres")]
        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <Uuid as sqlx::Type<sqlx::Postgres>>::type_info()
            }
        }
        #[cfg(feature = "postgres")]
        impl sqlx::postgres::PgHasArrayType for $name {
            fn array_type_info() -> sqlx::postgres::PgTypeInfo {
                <Uuid as sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }
        #[cfg(feature = "postgres")]
        impl sqlx::Encode<'_, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <Uuid as sqlx::Encode<sqlx::Postgres>>::encode_by_ref(&self.0, buf)
            }
        }
        #[cfg(feature = "postgres")]
        impl sqlx::Decode<'_, sqlx::Postgres> for $name {
            fn decode(value: sqlx::postgres::PgValueRef<'_>) -> Result<Self, sqlx::error::BoxDynError> {
                <Uuid as sqlx::Decode<sqlx::Postgres>>::decode(value).map(Self)
            }
        }
        #[cfg(feature = "sqlite")]
        impl sqlx::Type<sqlx::Sqlite> for $name {
            fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
                <String as sqlx::Type<sqlx::Sqlite>>::type_info()
            }
            fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Sqlite>>::compatible(ty)
            }
        }
        #[cfg(feature = "sqlite")]
        impl<'q> sqlx::Encode<'q, sqlx::Sqlite> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Sqlite as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<sqlx::Sqlite>>::encode(self.0.hyphenated().to_string(), buf)
            }
        }
        #[cfg(feature = "sqlite")]
        impl sqlx::Decode<'_, sqlx::Sqlite> for $name {
            fn decode(value: sqlx::sqlite::SqliteValueRef<'_>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<sqlx::Sqlite>>::decode(value)?;
                Ok(Self(Uuid::parse_str(text)?))
            }
        }
    )*};
}

typed_id!(
    /// Primary key of `encryption_keys`.
    EncryptionKeyId,
    /// Primary key of `certificates` (also `certificate_metadata.certificate_id` in core).
    CertificateId,
    /// Primary key of `private_keys`.
    PrivateKeyId,
    /// Primary key of `certificate_requests`.
    CertificateRequestId,
    /// Primary key of `certificate_revocations`.
    RevocationId,
    /// Primary key of `key_rotation_history`.
    KeyRotationId,
    /// Primary key of `ca_rollovers`.
    CaRolloverId,
    /// Primary key of `crls`.
    CrlId,
    /// Unused: rows of both audit logs are keyed by [`AuditId`].
    SecureAuditId,
    /// Primary key of `users`.
    UserId,
    /// Primary key of `roles`.
    RoleId,
    /// Primary key of `user_roles`.
    UserRoleId,
    /// Primary key of `organizations`.
    OrganizationId,
    /// Primary key of `user_organizations`.
    UserOrganizationId,
    /// Primary key of `policies`.
    PolicyId,
    /// Primary key of `workflows`.
    WorkflowId,
    /// Primary key of `workflow_instances`.
    WorkflowInstanceId,
    /// Primary key of `workflow_steps`.
    WorkflowStepId,
    /// Primary key of `notifications`.
    NotificationId,
    /// Primary key of `audit_log` and `secure_audit_log` rows.
    AuditId,
    /// Primary key of `api_keys`.
    ApiKeyId,
    /// Primary key of `sessions`.
    SessionId,
    /// Primary key of `certificate_metadata`.
    CertificateMetadataId,
    /// A row id of any table, for polymorphic references (audit resource_id, workflow subject_id).
    ResourceId,
    /// Primary key of `ocsp_signers`.
    OcspSignerId,
    /// Primary key of `ocsp_responses`.
    OcspResponseId,
);
