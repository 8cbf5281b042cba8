-- clm_core_db: application data. Reference schema (PostgreSQL 13+).
-- certificate_metadata.certificate_id points into clm_secure_db (UUID only).

CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION reject_audit_modification() RETURNS TRIGGER AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('clm.audit_archive', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'check_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TABLE organizations (
    id                      UUID PRIMARY KEY,
    org_code                TEXT NOT NULL,
    name                    TEXT NOT NULL,
    description             TEXT,
    status                  TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'suspended')),
    parent_organization_id  UUID REFERENCES organizations (id),
    created_at              TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at              TIMESTAMPTZ,
    CONSTRAINT uq_organizations_org_code UNIQUE (org_code)
);
CREATE INDEX idx_organizations_status ON organizations (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_organizations_parent ON organizations (parent_organization_id);
CREATE TRIGGER trg_organizations_updated_at BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE users (
    id                      UUID PRIMARY KEY,
    username                TEXT NOT NULL,
    email                   TEXT NOT NULL,
    display_name            TEXT,
    status                  TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'locked', 'suspended')),
    password_hash           TEXT,
    mfa_enabled             BOOLEAN NOT NULL DEFAULT FALSE,
    mfa_secret              BYTEA,
    mfa_secret_nonce        BYTEA,
    mfa_encryption_key_id   UUID,
    mfa_last_used_step      BIGINT,
    failed_login_attempts   INTEGER NOT NULL DEFAULT 0 CHECK (failed_login_attempts >= 0),
    locked_until            TIMESTAMPTZ,
    last_login_at           TIMESTAMPTZ,
    password_changed_at     TIMESTAMPTZ,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at              TIMESTAMPTZ,
    CONSTRAINT ck_users_mfa_secret CHECK (NOT mfa_enabled OR mfa_secret IS NOT NULL)
);
CREATE UNIQUE INDEX idx_users_username ON users (username);
CREATE UNIQUE INDEX idx_users_email ON users (email);
CREATE INDEX idx_users_status ON users (status) WHERE deleted_at IS NULL;
CREATE TRIGGER trg_users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE roles (
    id               UUID PRIMARY KEY,
    role_code        TEXT NOT NULL,
    role_name        TEXT NOT NULL,
    description      TEXT,
    permissions      JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(permissions) = 'object'),
    is_builtin       BOOLEAN NOT NULL DEFAULT FALSE,
    organization_id  UUID REFERENCES organizations (id),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at       TIMESTAMPTZ,
    CONSTRAINT uq_roles_role_code UNIQUE (role_code)
);
CREATE INDEX idx_roles_organization ON roles (organization_id);
CREATE INDEX idx_roles_permissions ON roles USING GIN (permissions);
CREATE TRIGGER trg_roles_updated_at BEFORE UPDATE ON roles
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE user_roles (
    id                   UUID PRIMARY KEY,
    user_id              UUID NOT NULL REFERENCES users (id),
    role_id              UUID NOT NULL REFERENCES roles (id),
    granted_by_user_id   UUID REFERENCES users (id),
    granted_at           TIMESTAMPTZ NOT NULL,
    revoked_at           TIMESTAMPTZ,
    revoked_by_user_id   UUID REFERENCES users (id),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at           TIMESTAMPTZ
);
CREATE INDEX idx_user_roles_user ON user_roles (user_id);
CREATE INDEX idx_user_roles_role ON user_roles (role_id);
CREATE INDEX idx_user_roles_granted_by ON user_roles (granted_by_user_id);
CREATE INDEX idx_user_roles_revoked_by ON user_roles (revoked_by_user_id);
-- A role is granted to a user at most once at a time.
CREATE UNIQUE INDEX uq_user_roles_current ON user_roles (user_id, role_id)
    WHERE revoked_at IS NULL AND deleted_at IS NULL;
CREATE TRIGGER trg_user_roles_updated_at BEFORE UPDATE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE user_organizations (
    id                UUID PRIMARY KEY,
    user_id           UUID NOT NULL REFERENCES users (id),
    organization_id   UUID NOT NULL REFERENCES organizations (id),
    membership_role   TEXT NOT NULL DEFAULT 'member' CHECK (membership_role IN ('member', 'admin')),
    joined_at         TIMESTAMPTZ NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at        TIMESTAMPTZ
);
CREATE INDEX idx_user_organizations_user ON user_organizations (user_id);
CREATE INDEX idx_user_organizations_organization ON user_organizations (organization_id);
CREATE UNIQUE INDEX uq_user_organizations_current ON user_organizations (user_id, organization_id)
    WHERE deleted_at IS NULL;
CREATE TRIGGER trg_user_organizations_updated_at BEFORE UPDATE ON user_organizations
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE workflows (
    id                   UUID PRIMARY KEY,
    workflow_code        TEXT NOT NULL,
    name                 TEXT NOT NULL,
    description          TEXT,
    workflow_definition  JSONB NOT NULL CHECK (jsonb_typeof(workflow_definition) = 'object'),
    status               TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('draft', 'active', 'inactive', 'archived')),
    version              INTEGER NOT NULL DEFAULT 1 CHECK (version > 0),
    is_default           BOOLEAN NOT NULL DEFAULT FALSE,
    organization_id      UUID REFERENCES organizations (id),
    created_by_user_id   UUID REFERENCES users (id),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at           TIMESTAMPTZ,
    CONSTRAINT uq_workflows_workflow_code UNIQUE (workflow_code)
);
CREATE INDEX idx_workflows_status ON workflows (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_workflows_organization ON workflows (organization_id);
CREATE INDEX idx_workflows_created_by ON workflows (created_by_user_id);
CREATE INDEX idx_workflows_definition ON workflows USING GIN (workflow_definition);
CREATE UNIQUE INDEX uq_workflows_one_default ON workflows (is_default) WHERE is_default AND deleted_at IS NULL;
CREATE TRIGGER trg_workflows_updated_at BEFORE UPDATE ON workflows
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE policies (
    id                   UUID PRIMARY KEY,
    policy_code          TEXT NOT NULL,
    name                 TEXT NOT NULL,
    description          TEXT,
    policy_rules         JSONB NOT NULL CHECK (jsonb_typeof(policy_rules) = 'object'),
    status               TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'inactive', 'archived')),
    version              INTEGER NOT NULL DEFAULT 1 CHECK (version > 0),
    organization_id      UUID REFERENCES organizations (id),
    workflow_id          UUID REFERENCES workflows (id),
    created_by_user_id   UUID REFERENCES users (id),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at           TIMESTAMPTZ,
    CONSTRAINT uq_policies_policy_code UNIQUE (policy_code)
);
CREATE INDEX idx_policies_status ON policies (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_policies_organization ON policies (organization_id);
CREATE INDEX idx_policies_workflow ON policies (workflow_id);
CREATE INDEX idx_policies_created_by ON policies (created_by_user_id);
CREATE INDEX idx_policies_rules ON policies USING GIN (policy_rules);
CREATE TRIGGER trg_policies_updated_at BEFORE UPDATE ON policies
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE workflow_instances (
    id                    UUID PRIMARY KEY,
    workflow_id           UUID NOT NULL REFERENCES workflows (id),
    workflow_version      INTEGER NOT NULL,
    status                TEXT NOT NULL DEFAULT 'initiated'
                          CHECK (status IN ('initiated', 'in_progress', 'pending_approval', 'approved', 'rejected',
                                            'completed', 'failed', 'cancelled')),
    subject_type          TEXT NOT NULL CHECK (subject_type IN ('certificate_request')),
    subject_id            UUID NOT NULL,
    requested_by_user_id  UUID REFERENCES users (id),
    organization_id       UUID REFERENCES organizations (id),
    current_step_order    INTEGER NOT NULL DEFAULT 0,
    certificate_id        UUID,
    error_message         TEXT,
    expires_at            TIMESTAMPTZ,
    started_at            TIMESTAMPTZ NOT NULL,
    completed_at          TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at            TIMESTAMPTZ
);
CREATE INDEX idx_workflow_instances_status ON workflow_instances (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_workflow_instances_workflow ON workflow_instances (workflow_id);
CREATE INDEX idx_workflow_instances_requested_by ON workflow_instances (requested_by_user_id);
CREATE INDEX idx_workflow_instances_organization ON workflow_instances (organization_id);
CREATE INDEX idx_workflow_instances_subject ON workflow_instances (subject_id);
CREATE TRIGGER trg_workflow_instances_updated_at BEFORE UPDATE ON workflow_instances
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE workflow_steps (
    id                    UUID PRIMARY KEY,
    workflow_instance_id  UUID NOT NULL REFERENCES workflow_instances (id),
    step_id               INTEGER NOT NULL,
    step_order            INTEGER NOT NULL,
    step_type             TEXT NOT NULL CHECK (step_type IN ('validation', 'approval', 'issuance', 'notification')),
    name                  TEXT,
    status                TEXT NOT NULL DEFAULT 'initiated'
                          CHECK (status IN ('initiated', 'in_progress', 'pending_approval', 'approved', 'rejected',
                                            'completed', 'failed', 'cancelled')),
    assigned_to_user_id   UUID REFERENCES users (id),
    assigned_to_role_id   UUID REFERENCES roles (id),
    required_approvals    INTEGER NOT NULL DEFAULT 1 CHECK (required_approvals > 0),
    approvals             JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(approvals) = 'array'),
    acted_by_user_id      UUID REFERENCES users (id),
    decision_comment      TEXT,
    started_at            TIMESTAMPTZ,
    completed_at          TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at            TIMESTAMPTZ
);
-- An approval step has one row per approver reference (user or role), so a
-- step id repeats within an instance.
CREATE INDEX idx_workflow_steps_instance ON workflow_steps (workflow_instance_id, step_id);
CREATE INDEX idx_workflow_steps_status ON workflow_steps (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_workflow_steps_assigned_user ON workflow_steps (assigned_to_user_id);
CREATE INDEX idx_workflow_steps_assigned_role ON workflow_steps (assigned_to_role_id);
CREATE INDEX idx_workflow_steps_acted_by ON workflow_steps (acted_by_user_id);
CREATE TRIGGER trg_workflow_steps_updated_at BEFORE UPDATE ON workflow_steps
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE notifications (
    id                  UUID PRIMARY KEY,
    user_id             UUID NOT NULL REFERENCES users (id),
    notification_type   TEXT NOT NULL
                        CHECK (notification_type IN ('approval_required', 'request_approved', 'request_rejected',
                               'certificate_issued', 'certificate_expiring', 'certificate_expired',
                               'certificate_revoked', 'key_rotation_completed', 'renewal_started')),
    priority            TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'critical')),
    title               TEXT NOT NULL,
    message             TEXT NOT NULL,
    resource_type       TEXT,
    resource_id         UUID,
    dedup_key           TEXT,
    is_read             BOOLEAN NOT NULL DEFAULT FALSE,
    read_at             TIMESTAMPTZ,
    delivered_at        TIMESTAMPTZ,
    delivery_attempts   INTEGER NOT NULL DEFAULT 0 CHECK (delivery_attempts >= 0),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at          TIMESTAMPTZ,
    CONSTRAINT uq_notifications_dedup_key UNIQUE (dedup_key)
);
CREATE INDEX idx_notifications_user ON notifications (user_id, created_at) WHERE deleted_at IS NULL;
CREATE INDEX idx_notifications_unread ON notifications (user_id) WHERE NOT is_read AND deleted_at IS NULL;
CREATE INDEX idx_notifications_outbox ON notifications (created_at, id) WHERE delivered_at IS NULL AND deleted_at IS NULL;
CREATE TRIGGER trg_notifications_updated_at BEFORE UPDATE ON notifications
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE audit_log (
    id               UUID PRIMARY KEY,
    sequence_number  BIGINT NOT NULL,
    event_type       TEXT NOT NULL,
    action           TEXT NOT NULL,
    outcome          TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    actor_type       TEXT NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system')),
    user_id          UUID,
    api_key_id       UUID,
    organization_id  UUID,
    resource_type    TEXT,
    resource_id      UUID,
    details          JSONB NOT NULL DEFAULT '{}'::jsonb,
    event_timestamp  TIMESTAMPTZ NOT NULL,
    previous_hash    TEXT NOT NULL,
    row_hash         TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT uq_audit_log_sequence UNIQUE (sequence_number)
);
CREATE INDEX idx_audit_log_timestamp ON audit_log (event_timestamp DESC);
CREATE INDEX idx_audit_log_resource ON audit_log (resource_type, resource_id, event_timestamp DESC);
CREATE INDEX idx_audit_log_user ON audit_log (user_id);
CREATE INDEX idx_audit_log_organization ON audit_log (organization_id);
CREATE TRIGGER trg_audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION reject_audit_modification();
CREATE TRIGGER trg_audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION reject_audit_modification();

CREATE TABLE api_keys (
    id                   UUID PRIMARY KEY,
    key_id               TEXT NOT NULL,
    key_hash             TEXT NOT NULL,
    name                 TEXT NOT NULL,
    user_id              UUID NOT NULL REFERENCES users (id),
    organization_id      UUID REFERENCES organizations (id),
    scopes               JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(scopes) = 'object'),
    expires_at           TIMESTAMPTZ,
    last_used_at         TIMESTAMPTZ,
    revoked_at           TIMESTAMPTZ,
    revoked_by_user_id   UUID REFERENCES users (id),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at           TIMESTAMPTZ,
    CONSTRAINT uq_api_keys_key_id UNIQUE (key_id),
    CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash)
);
CREATE INDEX idx_api_keys_user ON api_keys (user_id);
CREATE INDEX idx_api_keys_organization ON api_keys (organization_id);
CREATE INDEX idx_api_keys_revoked_by ON api_keys (revoked_by_user_id);
CREATE TRIGGER trg_api_keys_updated_at BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE sessions (
    id                 UUID PRIMARY KEY,
    session_id         TEXT NOT NULL,
    token_hash         TEXT NOT NULL,
    user_id            UUID NOT NULL REFERENCES users (id),
    ip_address         TEXT,
    user_agent         TEXT,
    expires_at         TIMESTAMPTZ NOT NULL,
    idle_timeout_secs  INTEGER NOT NULL CHECK (idle_timeout_secs > 0),
    last_activity_at   TIMESTAMPTZ NOT NULL,
    revoked_at         TIMESTAMPTZ,
    revoke_reason      TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at         TIMESTAMPTZ,
    CONSTRAINT uq_sessions_session_id UNIQUE (session_id),
    CONSTRAINT uq_sessions_token_hash UNIQUE (token_hash)
);
CREATE INDEX idx_sessions_user ON sessions (user_id);
CREATE INDEX idx_sessions_expires ON sessions (expires_at);
CREATE TRIGGER trg_sessions_updated_at BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE certificate_metadata (
    id                  UUID PRIMARY KEY,
    certificate_id      UUID NOT NULL,
    common_name         TEXT,
    not_after           TIMESTAMPTZ,
    owner_user_id       UUID REFERENCES users (id),
    organization_id     UUID REFERENCES organizations (id),
    environment         TEXT,
    application         TEXT,
    tags                JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(tags) = 'object'),
    notes               TEXT,
    last_notified_threshold INTEGER,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at          TIMESTAMPTZ
);
CREATE UNIQUE INDEX idx_certificate_metadata_cert_id ON certificate_metadata (certificate_id);
CREATE INDEX idx_certificate_metadata_owner ON certificate_metadata (owner_user_id);
CREATE INDEX idx_certificate_metadata_organization ON certificate_metadata (organization_id);
CREATE INDEX idx_certificate_metadata_tags ON certificate_metadata USING GIN (tags);
CREATE TRIGGER trg_certificate_metadata_updated_at BEFORE UPDATE ON certificate_metadata
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- Active users with their current (unrevoked) roles.
CREATE VIEW active_users_with_roles AS
SELECT u.id, u.username, u.email, u.display_name, u.status, u.mfa_enabled, u.last_login_at, u.created_at,
       COALESCE(jsonb_agg(r.role_name ORDER BY r.role_code) FILTER (WHERE r.id IS NOT NULL), '[]'::jsonb) AS role_names,
       COALESCE(jsonb_agg(r.role_code ORDER BY r.role_code) FILTER (WHERE r.id IS NOT NULL), '[]'::jsonb) AS role_codes
FROM users u
LEFT JOIN user_roles ur ON ur.user_id = u.id AND ur.revoked_at IS NULL AND ur.deleted_at IS NULL
LEFT JOIN roles r ON r.id = ur.role_id AND r.deleted_at IS NULL
WHERE u.deleted_at IS NULL AND u.status = 'active'
GROUP BY u.id;

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
