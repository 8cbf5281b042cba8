//! What a violated database constraint means, by the constraint's name.
//!
//! PostgreSQL names the constraint (`DatabaseError::constraint()`), so the
//! name is looked up here. SQLite names none: its extended result code gives
//! the kind (`SQLITE_CONSTRAINT_UNIQUE`, `_FOREIGNKEY`, ...), and the one place
//! that says which constraint is the message (`UNIQUE constraint failed:
//! users.username`), whose `table.column` list is matched against the same
//! table's columns below; only a unique index on an expression is named
//! there (`index 'name'`). The names are the migrations' own, the same on
//! both backends.

/// One unique constraint or unique index of either schema.
pub(crate) struct UniqueKey {
    pub name: &'static str,
    pub table: &'static str,
    /// The indexed columns, in index order.
    pub columns: &'static [&'static str],
    /// What a duplicate is of, for errors ("user").
    pub entity: &'static str,
    /// What must be unique, for errors ("username").
    pub field: &'static str,
}

const fn key(
    name: &'static str,
    table: &'static str,
    columns: &'static [&'static str],
    entity: &'static str,
    field: &'static str,
) -> UniqueKey {
    UniqueKey {
        name,
        table,
        columns,
        entity,
        field,
    }
}

/// Every unique constraint and unique index in `migrations/`.
pub(crate) const UNIQUE_KEYS: &[UniqueKey] = &[
    // core
    key(
        "uq_organizations_org_code",
        "organizations",
        &["org_code"],
        "organization",
        "org_code",
    ),
    key(
        "idx_users_username",
        "users",
        &["username"],
        "user",
        "username",
    ),
    key("idx_users_email", "users", &["email"], "user", "email"),
    key(
        "uq_roles_role_code",
        "roles",
        &["role_code"],
        "role",
        "role_code",
    ),
    key(
        "uq_user_roles_current",
        "user_roles",
        &["user_id", "role_id"],
        "role assignment",
        "user_id and role_id",
    ),
    key(
        "uq_user_organizations_current",
        "user_organizations",
        &["user_id", "organization_id"],
        "membership",
        "user_id and organization_id",
    ),
    key(
        "uq_workflows_workflow_code",
        "workflows",
        &["workflow_code"],
        "workflow",
        "workflow_code",
    ),
    key(
        "uq_workflows_one_default",
        "workflows",
        &["is_default"],
        "default workflow",
        "is_default",
    ),
    key(
        "uq_policies_policy_code",
        "policies",
        &["policy_code"],
        "policy",
        "policy_code",
    ),
    key(
        "uq_notifications_dedup_key",
        "notifications",
        &["dedup_key"],
        "notification",
        "dedup_key",
    ),
    key(
        "uq_audit_log_sequence",
        "audit_log",
        &["sequence_number"],
        "audit event",
        "sequence_number",
    ),
    key(
        "uq_api_keys_key_id",
        "api_keys",
        &["key_id"],
        "api key",
        "key_id",
    ),
    key(
        "uq_api_keys_key_hash",
        "api_keys",
        &["key_hash"],
        "api key",
        "key_hash",
    ),
    key(
        "uq_sessions_session_id",
        "sessions",
        &["session_id"],
        "session",
        "session_id",
    ),
    key(
        "uq_sessions_token_hash",
        "sessions",
        &["token_hash"],
        "session",
        "token_hash",
    ),
    key(
        "idx_certificate_metadata_cert_id",
        "certificate_metadata",
        &["certificate_id"],
        "certificate metadata",
        "certificate_id",
    ),
    // secure
    key(
        "uq_encryption_keys_key_id",
        "encryption_keys",
        &["key_id"],
        "encryption key",
        "key_id",
    ),
    key(
        "uq_encryption_keys_version",
        "encryption_keys",
        &["key_type", "key_version"],
        "encryption key",
        "key_type and key_version",
    ),
    key(
        "uq_encryption_keys_one_active",
        "encryption_keys",
        &["key_type"],
        "active encryption key",
        "key_type",
    ),
    key(
        "uq_certificates_certificate_id",
        "certificates",
        &["certificate_id"],
        "certificate",
        "certificate_id",
    ),
    key(
        "uq_certificates_issuer_serial",
        "certificates",
        &["issuer_certificate_id", "serial_number"],
        "certificate",
        "serial_number per issuer",
    ),
    key(
        "uq_crls_issuer_number",
        "crls",
        &["issuer_certificate_id", "crl_number"],
        "CRL",
        "crl_number per issuer",
    ),
    key(
        "uq_certificates_fingerprint_sha256_org",
        "certificates",
        &["fingerprint_sha256", "organization_id"],
        "certificate",
        "fingerprint_sha256",
    ),
    key(
        "uq_certificates_fingerprint_sha256_shared",
        "certificates",
        &["fingerprint_sha256"],
        "certificate",
        "fingerprint_sha256",
    ),
    key(
        "idx_private_keys_cert",
        "private_keys",
        &["certificate_id"],
        "private key",
        "certificate_id",
    ),
    key(
        "uq_certificate_requests_request_id",
        "certificate_requests",
        &["request_id"],
        "certificate request",
        "request_id",
    ),
    key(
        "uq_certificate_revocations_current",
        "certificate_revocations",
        &["certificate_id"],
        "certificate revocation",
        "certificate_id",
    ),
    key(
        "uq_key_rotation_history_running",
        "key_rotation_history",
        &["rotation_type"],
        "running key rotation",
        "rotation_type",
    ),
    key(
        "uq_secure_audit_log_sequence",
        "secure_audit_log",
        &["sequence_number"],
        "secure audit event",
        "sequence_number",
    ),
];

/// The unique key named `name` (PostgreSQL's `constraint()`, or SQLite's
/// `index 'name'` for an expression index).
pub(crate) fn unique_by_name(name: &str) -> Option<&'static UniqueKey> {
    UNIQUE_KEYS.iter().find(|k| k.name == name)
}

/// The unique key of `table` over exactly `columns` (SQLite, which reports
/// `table.column` pairs instead of a name).
pub(crate) fn unique_by_columns(table: &str, columns: &[&str]) -> Option<&'static UniqueKey> {
    UNIQUE_KEYS
        .iter()
        .find(|k| k.table == table && k.columns == columns)
}

/// `(table, column)` named by a PostgreSQL constraint that follows its
/// default naming, `<table>_<column>_fkey` / `_check` / `_pkey`: foreign
/// keys and inline checks of the migrations are not named by hand.
pub(crate) fn column_of_default_name<'a>(table: &str, name: &'a str) -> Option<&'a str> {
    let rest = name.strip_prefix(table)?.strip_prefix('_')?;
    for suffix in ["_fkey", "_check"] {
        if let Some(column) = rest.strip_suffix(suffix) {
            return Some(column);
        }
    }
    // `<table>_pkey`: the id.
    (rest == "pkey").then_some("id")
}

/// The column a hand-named check guards, `ck_<table>_<what>` -> `<what>`.
pub(crate) fn subject_of_named_check<'a>(table: &str, name: &'a str) -> Option<&'a str> {
    name.strip_prefix("ck_")?
        .strip_prefix(table)?
        .strip_prefix('_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_column_sets_distinct_per_table() {
        for (i, a) in UNIQUE_KEYS.iter().enumerate() {
            for b in &UNIQUE_KEYS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert!(
                    a.table != b.table || a.columns != b.columns,
                    "{} and {} index the same columns",
                    a.name,
                    b.name
                );
            }
        }
    }

    #[test]
    fn every_key_is_in_both_schemas() {
        let read = |dir: &str| -> String {
            let root = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/");
            let mut text = String::new();
            for db in ["secure", "core"] {
                let path = format!("{root}{dir}/{db}");
                let mut files: Vec<_> = std::fs::read_dir(&path)
                    .unwrap_or_else(|err| panic!("{path}: {err}"))
                    .map(|entry| entry.map(|e| e.path()))
                    .collect::<Result<_, _>>()
                    .unwrap_or_else(|err| panic!("{path}: {err}"));
                files.sort();
                for file in files {
                    text.push_str(&std::fs::read_to_string(&file).unwrap_or_default());
                }
            }
            text
        };
        for dir in ["postgres", "sqlite"] {
            let text = read(dir);
            for key in UNIQUE_KEYS {
                assert!(text.contains(key.name), "{} missing from {dir}", key.name);
            }
        }
    }

    #[test]
    fn default_names_give_their_column() {
        assert_eq!(
            column_of_default_name("user_roles", "user_roles_user_id_fkey"),
            Some("user_id")
        );
        assert_eq!(
            column_of_default_name("users", "users_status_check"),
            Some("status")
        );
        assert_eq!(column_of_default_name("users", "users_pkey"), Some("id"));
        assert_eq!(column_of_default_name("users", "roles_pkey"), None);
        assert_eq!(
            subject_of_named_check("users", "ck_users_mfa_secret"),
            Some("mfa_secret")
        );
    }
}
