-- clm_core_db: application data. SQLite dialect of
-- migrations/postgres/core/0001_core_schema.sql (the reference); keep the two in step.
-- certificate_metadata.certificate_id points into clm_secure_db (UUID only).
--
-- Type mapping: UUID -> TEXT (hyphenated lowercase), TIMESTAMPTZ -> TEXT (RFC 3339 UTC
-- with '+00:00', as sqlx-sqlite encodes DateTime<Utc>), BYTEA -> BLOB, JSONB -> TEXT
-- (json_valid + json_type checks), BOOLEAN -> INTEGER 0/1.
-- SQL-side timestamps use strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') so they have the
-- same shape as the app's and text comparison / ordering stays correct.
-- Foreign keys are enforced because the app enables PRAGMA foreign_keys.
--
-- The trg_*_updated_at triggers stand in for PostgreSQL's update_updated_at_column():
-- they stamp updated_at after an UPDATE that did not change it itself (recursive
-- triggers are off, and the WHEN clause keeps the inner UPDATE from firing again).

CREATE TABLE organizations (
    id                      TEXT PRIMARY KEY,
    org_code                TEXT NOT NULL,
    name                    TEXT NOT NULL,
    description             TEXT,
    status                  TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'suspended')),
    parent_organization_id  TEXT REFERENCES organizations (id),
    created_at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at              TEXT,
    CONSTRAINT uq_organizations_org_code UNIQUE (org_code)
);
CREATE INDEX idx_organizations_status ON organizations (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_organizations_parent ON organizations (parent_organization_id);
CREATE TRIGGER trg_organizations_updated_at AFTER UPDATE ON organizations
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE organizations SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE users (
    id                      TEXT PRIMARY KEY,
    username                TEXT NOT NULL,
    email                   TEXT NOT NULL,
    display_name            TEXT,
    status                  TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'locked', 'suspended')),
    password_hash           TEXT,
    mfa_enabled             INTEGER NOT NULL DEFAULT 0 CHECK (mfa_enabled IN (0, 1)),
    mfa_secret              BLOB,
    mfa_secret_nonce        BLOB,
    mfa_encryption_key_id   TEXT,
    mfa_last_used_step      INTEGER,
    failed_login_attempts   INTEGER NOT NULL DEFAULT 0 CHECK (failed_login_attempts >= 0),
    locked_until            TEXT,
    last_login_at           TEXT,
    password_changed_at     TEXT,
    created_at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at              TEXT,
    CONSTRAINT ck_users_mfa_secret CHECK (NOT mfa_enabled OR mfa_secret IS NOT NULL)
);
CREATE UNIQUE INDEX idx_users_username ON users (username);
CREATE UNIQUE INDEX idx_users_email ON users (email);
CREATE INDEX idx_users_status ON users (status) WHERE deleted_at IS NULL;
CREATE TRIGGER trg_users_updated_at AFTER UPDATE ON users
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE users SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE roles (
    id               TEXT PRIMARY KEY,
    role_code        TEXT NOT NULL,
    role_name        TEXT NOT NULL,
    description      TEXT,
    permissions      TEXT NOT NULL DEFAULT '{}'
                     CHECK (json_valid(permissions) AND json_type(permissions) = 'object'),
    is_builtin       INTEGER NOT NULL DEFAULT 0 CHECK (is_builtin IN (0, 1)),
    organization_id  TEXT REFERENCES organizations (id),
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at       TEXT,
    CONSTRAINT uq_roles_role_code UNIQUE (role_code)
);
CREATE INDEX idx_roles_organization ON roles (organization_id);
-- idx_roles_permissions: GIN index on permissions is PostgreSQL only; skipped.
CREATE TRIGGER trg_roles_updated_at AFTER UPDATE ON roles
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE roles SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE user_roles (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users (id),
    role_id              TEXT NOT NULL REFERENCES roles (id),
    granted_by_user_id   TEXT REFERENCES users (id),
    granted_at           TEXT NOT NULL,
    revoked_at           TEXT,
    revoked_by_user_id   TEXT REFERENCES users (id),
    created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at           TEXT
);
CREATE INDEX idx_user_roles_user ON user_roles (user_id);
CREATE INDEX idx_user_roles_role ON user_roles (role_id);
CREATE INDEX idx_user_roles_granted_by ON user_roles (granted_by_user_id);
CREATE INDEX idx_user_roles_revoked_by ON user_roles (revoked_by_user_id);
-- A role is granted to a user at most once at a time.
CREATE UNIQUE INDEX uq_user_roles_current ON user_roles (user_id, role_id)
    WHERE revoked_at IS NULL AND deleted_at IS NULL;
CREATE TRIGGER trg_user_roles_updated_at AFTER UPDATE ON user_roles
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE user_roles SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE user_organizations (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id),
    organization_id   TEXT NOT NULL REFERENCES organizations (id),
    membership_role   TEXT NOT NULL DEFAULT 'member' CHECK (membership_role IN ('member', 'admin')),
    joined_at         TEXT NOT NULL,
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at        TEXT
);
CREATE INDEX idx_user_organizations_user ON user_organizations (user_id);
CREATE INDEX idx_user_organizations_organization ON user_organizations (organization_id);
CREATE UNIQUE INDEX uq_user_organizations_current ON user_organizations (user_id, organization_id)
    WHERE deleted_at IS NULL;
CREATE TRIGGER trg_user_organizations_updated_at AFTER UPDATE ON user_organizations
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE user_organizations SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE workflows (
    id                   TEXT PRIMARY KEY,
    workflow_code        TEXT NOT NULL,
    name                 TEXT NOT NULL,
    description          TEXT,
    workflow_definition  TEXT NOT NULL
                         CHECK (json_valid(workflow_definition) AND json_type(workflow_definition) = 'object'),
    status               TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('draft', 'active', 'inactive', 'archived')),
    version              INTEGER NOT NULL DEFAULT 1 CHECK (version > 0),
    is_default           INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    organization_id      TEXT REFERENCES organizations (id),
    created_by_user_id   TEXT REFERENCES users (id),
    created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at           TEXT,
    CONSTRAINT uq_workflows_workflow_code UNIQUE (workflow_code)
);
CREATE INDEX idx_workflows_status ON workflows (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_workflows_organization ON workflows (organization_id);
CREATE INDEX idx_workflows_created_by ON workflows (created_by_user_id);
-- idx_workflows_definition: GIN index on workflow_definition is PostgreSQL only; skipped.
CREATE UNIQUE INDEX uq_workflows_one_default ON workflows (is_default) WHERE is_default AND deleted_at IS NULL;
CREATE TRIGGER trg_workflows_updated_at AFTER UPDATE ON workflows
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE workflows SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE policies (
    id                   TEXT PRIMARY KEY,
    policy_code          TEXT NOT NULL,
    name                 TEXT NOT NULL,
    description          TEXT,
    policy_rules         TEXT NOT NULL
                         CHECK (json_valid(policy_rules) AND json_type(policy_rules) = 'object'),
    status               TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'inactive', 'archived')),
    version              INTEGER NOT NULL DEFAULT 1 CHECK (version > 0),
    organization_id      TEXT REFERENCES organizations (id),
    workflow_id          TEXT REFERENCES workflows (id),
    created_by_user_id   TEXT REFERENCES users (id),
    created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at           TEXT,
    CONSTRAINT uq_policies_policy_code UNIQUE (policy_code)
);
CREATE INDEX idx_policies_status ON policies (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_policies_organization ON policies (organization_id);
CREATE INDEX idx_policies_workflow ON policies (workflow_id);
CREATE INDEX idx_policies_created_by ON policies (created_by_user_id);
-- idx_policies_rules: GIN index on policy_rules is PostgreSQL only; skipped.
CREATE TRIGGER trg_policies_updated_at AFTER UPDATE ON policies
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE policies SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE workflow_instances (
    id                    TEXT PRIMARY KEY,
    workflow_id           TEXT NOT NULL REFERENCES workflows (id),
    workflow_version      INTEGER NOT NULL,
    status                TEXT NOT NULL DEFAULT 'initiated'
                          CHECK (status IN ('initiated', 'in_progress', 'pending_approval', 'approved', 'rejected',
                                            'completed', 'failed', 'cancelled')),
    subject_type          TEXT NOT NULL CHECK (subject_type IN ('certificate_request')),
    subject_id            TEXT NOT NULL,
    requested_by_user_id  TEXT REFERENCES users (id),
    organization_id       TEXT REFERENCES organizations (id),
    current_step_order    INTEGER NOT NULL DEFAULT 0,
    certificate_id        TEXT,
    error_message         TEXT,
    expires_at            TEXT,
    started_at            TEXT NOT NULL,
    completed_at          TEXT,
    created_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at            TEXT
);
CREATE INDEX idx_workflow_instances_status ON workflow_instances (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_workflow_instances_workflow ON workflow_instances (workflow_id);
CREATE INDEX idx_workflow_instances_requested_by ON workflow_instances (requested_by_user_id);
CREATE INDEX idx_workflow_instances_organization ON workflow_instances (organization_id);
CREATE INDEX idx_workflow_instances_subject ON workflow_instances (subject_id);
CREATE TRIGGER trg_workflow_instances_updated_at AFTER UPDATE ON workflow_instances
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE workflow_instances SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE workflow_steps (
    id                    TEXT PRIMARY KEY,
    workflow_instance_id  TEXT NOT NULL REFERENCES workflow_instances (id),
    step_id               INTEGER NOT NULL,
    step_order            INTEGER NOT NULL,
    step_type             TEXT NOT NULL CHECK (step_type IN ('validation', 'approval', 'issuance', 'notification')),
    name                  TEXT,
    status                TEXT NOT NULL DEFAULT 'initiated'
                          CHECK (status IN ('initiated', 'in_progress', 'pending_approval', 'approved', 'rejected',
                                            'completed', 'failed', 'cancelled')),
    assigned_to_user_id   TEXT REFERENCES users (id),
    assigned_to_role_id   TEXT REFERENCES roles (id),
    required_approvals    INTEGER NOT NULL DEFAULT 1 CHECK (required_approvals > 0),
    approvals             TEXT NOT NULL DEFAULT '[]'
                          CHECK (json_valid(approvals) AND json_type(approvals) = 'array'),
    acted_by_user_id      TEXT REFERENCES users (id),
    decision_comment      TEXT,
    started_at            TEXT,
    completed_at          TEXT,
    created_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at            TEXT
);
-- An approval step has one row per approver reference (user or role), so a
-- step id repeats within an instance.
CREATE INDEX idx_workflow_steps_instance ON workflow_steps (workflow_instance_id, step_id);
CREATE INDEX idx_workflow_steps_status ON workflow_steps (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_workflow_steps_assigned_user ON workflow_steps (assigned_to_user_id);
CREATE INDEX idx_workflow_steps_assigned_role ON workflow_steps (assigned_to_role_id);
CREATE INDEX idx_workflow_steps_acted_by ON workflow_steps (acted_by_user_id);
CREATE TRIGGER trg_workflow_steps_updated_at AFTER UPDATE ON workflow_steps
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE workflow_steps SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE notifications (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users (id),
    notification_type   TEXT NOT NULL
                        CHECK (notification_type IN ('approval_required', 'request_approved', 'request_rejected',
                               'certificate_issued', 'certificate_expiring', 'certificate_expired',
                               'certificate_revoked', 'key_rotation_completed', 'renewal_started')),
    priority            TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'critical')),
    title               TEXT NOT NULL,
    message             TEXT NOT NULL,
    resource_type       TEXT,
    resource_id         TEXT,
    dedup_key           TEXT,
    is_read             INTEGER NOT NULL DEFAULT 0 CHECK (is_read IN (0, 1)),
    read_at             TEXT,
    delivered_at        TEXT,
    delivery_attempts   INTEGER NOT NULL DEFAULT 0 CHECK (delivery_attempts >= 0),
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at          TEXT,
    CONSTRAINT uq_notifications_dedup_key UNIQUE (dedup_key)
);
CREATE INDEX idx_notifications_user ON notifications (user_id, created_at) WHERE deleted_at IS NULL;
CREATE INDEX idx_notifications_unread ON notifications (user_id) WHERE NOT is_read AND deleted_at IS NULL;
CREATE INDEX idx_notifications_outbox ON notifications (created_at, id) WHERE delivered_at IS NULL AND deleted_at IS NULL;
CREATE TRIGGER trg_notifications_updated_at AFTER UPDATE ON notifications
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE notifications SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE audit_log (
    id               TEXT PRIMARY KEY,
    sequence_number  INTEGER NOT NULL,
    event_type       TEXT NOT NULL,
    action           TEXT NOT NULL,
    outcome          TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    actor_type       TEXT NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system')),
    user_id          TEXT,
    api_key_id       TEXT,
    organization_id  TEXT,
    resource_type    TEXT,
    resource_id      TEXT,
    details          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    event_timestamp  TEXT NOT NULL,
    previous_hash    TEXT NOT NULL,
    row_hash         TEXT NOT NULL,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT uq_audit_log_sequence UNIQUE (sequence_number)
);
CREATE INDEX idx_audit_log_timestamp ON audit_log (event_timestamp DESC);
CREATE INDEX idx_audit_log_resource ON audit_log (resource_type, resource_id, event_timestamp DESC);
CREATE INDEX idx_audit_log_user ON audit_log (user_id);
CREATE INDEX idx_audit_log_organization ON audit_log (organization_id);
-- Append-only (stands in for PostgreSQL's reject_audit_modification()). Archiving drops
-- and recreates trg_audit_log_append_only_delete inside its own transaction, so the
-- DELETE trigger must stay separate and keep this exact name.
-- PostgreSQL's TRUNCATE trigger has no SQLite counterpart (no TRUNCATE); skipped.
CREATE TRIGGER trg_audit_log_append_only BEFORE UPDATE ON audit_log
    FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE is not allowed');
END;
CREATE TRIGGER trg_audit_log_append_only_delete BEFORE DELETE ON audit_log
    FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE is not allowed');
END;

CREATE TABLE api_keys (
    id                   TEXT PRIMARY KEY,
    key_id               TEXT NOT NULL,
    key_hash             TEXT NOT NULL,
    name                 TEXT NOT NULL,
    user_id              TEXT NOT NULL REFERENCES users (id),
    organization_id      TEXT REFERENCES organizations (id),
    scopes               TEXT NOT NULL DEFAULT '{}'
                         CHECK (json_valid(scopes) AND json_type(scopes) = 'object'),
    expires_at           TEXT,
    last_used_at         TEXT,
    revoked_at           TEXT,
    revoked_by_user_id   TEXT REFERENCES users (id),
    created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at           TEXT,
    CONSTRAINT uq_api_keys_key_id UNIQUE (key_id),
    CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash)
);
CREATE INDEX idx_api_keys_user ON api_keys (user_id);
CREATE INDEX idx_api_keys_organization ON api_keys (organization_id);
CREATE INDEX idx_api_keys_revoked_by ON api_keys (revoked_by_user_id);
CREATE TRIGGER trg_api_keys_updated_at AFTER UPDATE ON api_keys
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE api_keys SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY,
    session_id         TEXT NOT NULL,
    token_hash         TEXT NOT NULL,
    user_id            TEXT NOT NULL REFERENCES users (id),
    ip_address         TEXT,
    user_agent         TEXT,
    expires_at         TEXT NOT NULL,
    idle_timeout_secs  INTEGER NOT NULL CHECK (idle_timeout_secs > 0),
    last_activity_at   TEXT NOT NULL,
    revoked_at         TEXT,
    revoke_reason      TEXT,
    created_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at         TEXT,
    CONSTRAINT uq_sessions_session_id UNIQUE (session_id),
    CONSTRAINT uq_sessions_token_hash UNIQUE (token_hash)
);
CREATE INDEX idx_sessions_user ON sessions (user_id);
CREATE INDEX idx_sessions_expires ON sessions (expires_at);
CREATE TRIGGER trg_sessions_updated_at AFTER UPDATE ON sessions
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE sessions SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE certificate_metadata (
    id                  TEXT PRIMARY KEY,
    certificate_id      TEXT NOT NULL,
    common_name         TEXT,
    not_after           TEXT,
    owner_user_id       TEXT REFERENCES users (id),
    organization_id     TEXT REFERENCES organizations (id),
    environment         TEXT,
    application         TEXT,
    tags                TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(tags) AND json_type(tags) = 'object'),
    notes               TEXT,
    last_notified_threshold INTEGER,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at          TEXT
);
CREATE UNIQUE INDEX idx_certificate_metadata_cert_id ON certificate_metadata (certificate_id);
CREATE INDEX idx_certificate_metadata_owner ON certificate_metadata (owner_user_id);
CREATE INDEX idx_certificate_metadata_organization ON certificate_metadata (organization_id);
-- idx_certificate_metadata_tags: GIN index on tags is PostgreSQL only; skipped.
CREATE TRIGGER trg_certificate_metadata_updated_at AFTER UPDATE ON certificate_metadata
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE certificate_metadata SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

-- Active users with their current (unrevoked) roles.
-- role_names / role_codes are JSON arrays (TEXT) ordered by role_code; '[]' when the
-- user has no roles (json_group_array over no rows). Correlated subqueries rather than
-- json_group_array(... ORDER BY ...), which needs SQLite 3.44+.
CREATE VIEW active_users_with_roles AS
SELECT u.id, u.username, u.email, u.display_name, u.status, u.mfa_enabled, u.last_login_at, u.created_at,
       (SELECT json_group_array(x.role_name)
        FROM (SELECT r.role_name
              FROM user_roles ur
              JOIN roles r ON r.id = ur.role_id AND r.deleted_at IS NULL
              WHERE ur.user_id = u.id AND ur.revoked_at IS NULL AND ur.deleted_at IS NULL
              ORDER BY r.role_code) x) AS role_names,
       (SELECT json_group_array(x.role_code)
        FROM (SELECT r.role_code
              FROM user_roles ur
              JOIN roles r ON r.id = ur.role_id AND r.deleted_at IS NULL
              WHERE ur.user_id = u.id AND ur.revoked_at IS NULL AND ur.deleted_at IS NULL
              ORDER BY r.role_code) x) AS role_codes
FROM users u
WHERE u.deleted_at IS NULL AND u.status = 'active';

-- Approval steps waiting for a decision, with whom they are assigned to.
CREATE VIEW pending_approvals AS
SELECT s.id AS workflow_step_id, s.workflow_instance_id, s.step_id, s.name AS step_name,
       s.assigned_to_user_id, s.assigned_to_role_id, s.required_approvals, s.approvals,
       i.workflow_id, w.workflow_code, w.name AS workflow_name, i.subject_type, i.subject_id,
       i.requested_by_user_id, i.organization_id, i.expires_at, s.created_at
FROM workflow_steps s
JOIN workflow_instances i ON i.id = s.workflow_instance_id
JOIN workflows w ON w.id = i.workflow_id
WHERE s.step_type = 'approval'
  AND s.status = 'pending_approval'
  AND s.deleted_at IS NULL
  AND i.status = 'pending_approval'
  AND i.deleted_at IS NULL;

-- Certificate metadata with owner and organization details.
CREATE VIEW certificate_summary AS
SELECT m.id, m.certificate_id, m.common_name, m.not_after, m.environment, m.application, m.tags,
       m.owner_user_id, u.username AS owner_username, u.email AS owner_email,
       m.organization_id, o.org_code, o.name AS organization_name, m.created_at, m.updated_at
FROM certificate_metadata m
LEFT JOIN users u ON u.id = m.owner_user_id
LEFT JOIN organizations o ON o.id = m.organization_id
WHERE m.deleted_at IS NULL;
