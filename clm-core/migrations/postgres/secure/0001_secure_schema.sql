-- clm_secure_db: cryptographic material. Reference schema (PostgreSQL 13+).
-- Cross-database references (owner_user_id, organization_id, policy_id,
-- workflow_id, *_user_id) are plain UUIDs: they point into clm_core_db.

CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- Audit tables are append-only. Archiving (moving old rows out) is the one
-- exception, allowed only inside a transaction that sets clm.audit_archive.
CREATE OR REPLACE FUNCTION reject_audit_modification() RETURNS TRIGGER AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('clm.audit_archive', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'check_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TABLE encryption_keys (
    id                UUID PRIMARY KEY,
    key_id            TEXT NOT NULL,
    key_type          TEXT NOT NULL CHECK (key_type IN ('data_encryption')),
    key_status        TEXT NOT NULL CHECK (key_status IN ('active', 'decrypt_only', 'retired')),
    algorithm         TEXT NOT NULL DEFAULT 'AES-256-GCM' CHECK (algorithm IN ('AES-256-GCM')),
    key_version       INTEGER NOT NULL CHECK (key_version > 0),
    wrapped_key       BYTEA NOT NULL,
    wrap_nonce        BYTEA NOT NULL,
    master_key_id     TEXT NOT NULL,
    encryption_count  BIGINT NOT NULL DEFAULT 0 CHECK (encryption_count >= 0),
    activated_at      TIMESTAMPTZ,
    retired_at        TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at        TIMESTAMPTZ,
    CONSTRAINT uq_encryption_keys_key_id UNIQUE (key_id),
    CONSTRAINT uq_encryption_keys_version UNIQUE (key_type, key_version)
);
-- At most one key seals new data at any time.
CREATE UNIQUE INDEX uq_encryption_keys_one_active ON encryption_keys (key_type)
    WHERE key_status = 'active' AND deleted_at IS NULL;
CREATE INDEX idx_encryption_keys_status ON encryption_keys (key_status) WHERE deleted_at IS NULL;

CREATE TABLE certificates (
    id                        UUID PRIMARY KEY,
    certificate_id            TEXT NOT NULL,
    common_name               TEXT,
    subject_dn                TEXT NOT NULL,
    issuer_dn                 TEXT NOT NULL,
    serial_number             TEXT NOT NULL,
    not_before                TIMESTAMPTZ NOT NULL,
    not_after                 TIMESTAMPTZ NOT NULL,
    status                    TEXT NOT NULL DEFAULT 'active'
                              CHECK (status IN ('pending', 'active', 'expiring', 'expired', 'revoked', 'suspended')),
    fingerprint_sha256        TEXT NOT NULL,
    key_algorithm             TEXT NOT NULL,
    key_size                  INTEGER NOT NULL CHECK (key_size >= 0),
    signature_algorithm       TEXT NOT NULL,
    is_ca                     BOOLEAN NOT NULL DEFAULT FALSE,
    path_len                  INTEGER CHECK (path_len IS NULL OR path_len >= 0),
    certificate_kind          TEXT NOT NULL
                              CHECK (certificate_kind IN ('root_ca', 'intermediate_ca', 'tls_server', 'tls_client',
                                                          'tls_server_client', 'code_signing', 'email', 'imported')),
    source                    TEXT NOT NULL CHECK (source IN ('issued', 'imported')),
    issuer_certificate_id     UUID REFERENCES certificates (id),
    replaces_certificate_id   UUID REFERENCES certificates (id),
    subject_key_id            TEXT,
    authority_key_id          TEXT,
    subject_alternative_names JSONB NOT NULL DEFAULT '[]'::jsonb
                              CHECK (jsonb_typeof(subject_alternative_names) = 'array'),
    import_flags              JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(import_flags) = 'array'),
    certificate_pem           TEXT NOT NULL,
    owner_user_id             UUID,
    organization_id           UUID,
    policy_id                 UUID,
    policy_version            INTEGER,
    workflow_id               UUID,
    crl_number                BIGINT NOT NULL DEFAULT 0 CHECK (crl_number >= 0),
    created_at                TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at                TIMESTAMPTZ,
    CONSTRAINT uq_certificates_certificate_id UNIQUE (certificate_id),
    CONSTRAINT uq_certificates_fingerprint_sha256 UNIQUE (fingerprint_sha256),
    CONSTRAINT ck_certificates_validity CHECK (not_after > not_before)
);
CREATE INDEX idx_certificates_status ON certificates (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_certificates_expiry ON certificates (not_after);
CREATE INDEX idx_certificates_owner ON certificates (owner_user_id);
CREATE INDEX idx_certificates_issuer ON certificates (issuer_certificate_id);
CREATE INDEX idx_certificates_replaces ON certificates (replaces_certificate_id);
CREATE INDEX idx_certificates_organization ON certificates (organization_id);
CREATE INDEX idx_certificates_common_name ON certificates (common_name);
CREATE INDEX idx_certificates_policy ON certificates (policy_id);
-- Expiry reports and keyset pagination over the live inventory.
CREATE INDEX idx_certificates_live_expiry ON certificates (not_after, id) WHERE deleted_at IS NULL;
CREATE INDEX idx_certificates_owner_live ON certificates (owner_user_id, id) WHERE deleted_at IS NULL;
CREATE INDEX idx_certificates_sans ON certificates USING GIN (subject_alternative_names);
-- Serials are unique per issuer for what clm issues (imports may hold anything).
CREATE UNIQUE INDEX uq_certificates_issuer_serial ON certificates (issuer_certificate_id, serial_number)
    WHERE source = 'issued';
CREATE TRIGGER trg_certificates_updated_at BEFORE UPDATE ON certificates
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TRIGGER trg_encryption_keys_updated_at BEFORE UPDATE ON encryption_keys
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE private_keys (
    id                     UUID PRIMARY KEY,
    certificate_id         UUID NOT NULL REFERENCES certificates (id),
    encryption_key_id      UUID NOT NULL REFERENCES encryption_keys (id),
    encrypted_key_material BYTEA NOT NULL,
    nonce                  BYTEA NOT NULL,
    key_algorithm          TEXT NOT NULL,
    key_size               INTEGER NOT NULL CHECK (key_size >= 0),
    public_key_sha256      TEXT NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at             TIMESTAMPTZ
);
-- 1:1 with certificates.
CREATE UNIQUE INDEX idx_private_keys_cert ON private_keys (certificate_id);
-- Rotation walks the keys of one data key in id order.
CREATE INDEX idx_private_keys_encryption_key ON private_keys (encryption_key_id, id);
CREATE TRIGGER trg_private_keys_updated_at BEFORE UPDATE ON private_keys
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE certificate_requests (
    id                         UUID PRIMARY KEY,
    request_id                 TEXT NOT NULL,
    csr_pem                    TEXT,
    common_name                TEXT,
    subject_dn                 TEXT NOT NULL,
    subject_alternative_names  JSONB NOT NULL DEFAULT '[]'::jsonb
                               CHECK (jsonb_typeof(subject_alternative_names) = 'array'),
    key_algorithm              TEXT NOT NULL,
    key_size                   INTEGER NOT NULL CHECK (key_size >= 0),
    certificate_kind           TEXT NOT NULL
                               CHECK (certificate_kind IN ('root_ca', 'intermediate_ca', 'tls_server', 'tls_client',
                                                           'tls_server_client', 'code_signing', 'email', 'imported')),
    validity_days              INTEGER NOT NULL CHECK (validity_days > 0),
    status                     TEXT NOT NULL DEFAULT 'pending'
                               CHECK (status IN ('pending', 'pending_approval', 'approved', 'rejected', 'issued',
                                                 'failed', 'cancelled', 'expired')),
    issuer_certificate_id      UUID REFERENCES certificates (id),
    certificate_id             UUID REFERENCES certificates (id),
    renewal_of_certificate_id  UUID REFERENCES certificates (id),
    reuse_key                  BOOLEAN NOT NULL DEFAULT FALSE,
    requested_by_user_id       UUID,
    owner_user_id              UUID,
    organization_id            UUID,
    policy_id                  UUID,
    workflow_instance_id       UUID,
    failure_reason             TEXT,
    expires_at                 TIMESTAMPTZ,
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at                 TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at                 TIMESTAMPTZ,
    CONSTRAINT uq_certificate_requests_request_id UNIQUE (request_id)
);
CREATE INDEX idx_certificate_requests_status ON certificate_requests (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_certificate_requests_issuer ON certificate_requests (issuer_certificate_id);
CREATE INDEX idx_certificate_requests_certificate ON certificate_requests (certificate_id);
CREATE INDEX idx_certificate_requests_renewal_of ON certificate_requests (renewal_of_certificate_id);
CREATE INDEX idx_certificate_requests_organization ON certificate_requests (organization_id);
CREATE INDEX idx_certificate_requests_expires ON certificate_requests (expires_at) WHERE deleted_at IS NULL;
CREATE INDEX idx_certificate_requests_sans ON certificate_requests USING GIN (subject_alternative_names);
CREATE TRIGGER trg_certificate_requests_updated_at BEFORE UPDATE ON certificate_requests
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE certificate_revocations (
    id                     UUID PRIMARY KEY,
    certificate_id         UUID NOT NULL REFERENCES certificates (id),
    issuer_certificate_id  UUID REFERENCES certificates (id),
    serial_number          TEXT NOT NULL,
    revocation_reason      TEXT NOT NULL
                           CHECK (revocation_reason IN ('unspecified', 'key_compromise', 'ca_compromise',
                                  'affiliation_changed', 'superseded', 'cessation_of_operation',
                                  'certificate_hold', 'remove_from_crl', 'privilege_withdrawn', 'aa_compromise')),
    revoked_at             TIMESTAMPTZ NOT NULL,
    revoked_by_user_id     UUID,
    comment                TEXT,
    released_at            TIMESTAMPTZ,
    released_by_user_id    UUID,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at             TIMESTAMPTZ,
    CONSTRAINT ck_certificate_revocations_release CHECK (released_at IS NULL OR revocation_reason = 'certificate_hold')
);
CREATE INDEX idx_certificate_revocations_cert ON certificate_revocations (certificate_id);
CREATE INDEX idx_certificate_revocations_issuer ON certificate_revocations (issuer_certificate_id, revoked_at)
    WHERE released_at IS NULL AND deleted_at IS NULL;
-- One standing revocation per certificate: revoking twice is a conflict.
CREATE UNIQUE INDEX uq_certificate_revocations_current ON certificate_revocations (certificate_id)
    WHERE released_at IS NULL AND deleted_at IS NULL;
CREATE TRIGGER trg_certificate_revocations_updated_at BEFORE UPDATE ON certificate_revocations
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE key_rotation_history (
    id                      UUID PRIMARY KEY,
    rotation_type           TEXT NOT NULL CHECK (rotation_type IN ('data_key', 'master_key')),
    old_key_id              UUID REFERENCES encryption_keys (id),
    new_key_id              UUID REFERENCES encryption_keys (id),
    old_master_key_id       TEXT,
    new_master_key_id       TEXT,
    status                  TEXT NOT NULL CHECK (status IN ('in_progress', 'completed', 'failed')),
    total_items             BIGINT NOT NULL DEFAULT 0 CHECK (total_items >= 0),
    rotated_items           BIGINT NOT NULL DEFAULT 0 CHECK (rotated_items >= 0),
    last_item_id            UUID,
    error_message           TEXT,
    initiated_by_user_id    UUID,
    started_at              TIMESTAMPTZ NOT NULL,
    completed_at            TIMESTAMPTZ,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at              TIMESTAMPTZ
);
CREATE INDEX idx_key_rotation_history_old_key ON key_rotation_history (old_key_id);
CREATE INDEX idx_key_rotation_history_new_key ON key_rotation_history (new_key_id);
CREATE INDEX idx_key_rotation_history_status ON key_rotation_history (status) WHERE deleted_at IS NULL;
-- One rotation at a time.
CREATE UNIQUE INDEX uq_key_rotation_history_running ON key_rotation_history (rotation_type)
    WHERE status = 'in_progress';
CREATE TRIGGER trg_key_rotation_history_updated_at BEFORE UPDATE ON key_rotation_history
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE secure_audit_log (
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
    CONSTRAINT uq_secure_audit_log_sequence UNIQUE (sequence_number)
);
CREATE INDEX idx_secure_audit_timestamp ON secure_audit_log (event_timestamp DESC);
CREATE INDEX idx_secure_audit_resource ON secure_audit_log (resource_type, resource_id, event_timestamp DESC);
CREATE INDEX idx_secure_audit_user ON secure_audit_log (user_id);
CREATE INDEX idx_secure_audit_organization ON secure_audit_log (organization_id);
CREATE TRIGGER trg_secure_audit_log_append_only BEFORE UPDATE OR DELETE ON secure_audit_log
    FOR EACH ROW EXECUTE FUNCTION reject_audit_modification();
-- TRUNCATE bypasses row triggers; refuse it too.
CREATE TRIGGER trg_secure_audit_log_no_truncate BEFORE TRUNCATE ON secure_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION reject_audit_modification();

-- Live certificates that are in service; no PEM, no key material.
CREATE VIEW active_certificates AS
SELECT c.id, c.certificate_id, c.common_name, c.subject_dn, c.issuer_dn, c.serial_number,
       c.not_before, c.not_after, c.status, c.fingerprint_sha256, c.key_algorithm, c.key_size,
       c.signature_algorithm, c.is_ca, c.certificate_kind, c.issuer_certificate_id,
       c.subject_alternative_names, c.owner_user_id, c.organization_id, c.policy_id, c.created_at
FROM certificates c
WHERE c.deleted_at IS NULL
  AND c.status IN ('active', 'expiring');

-- Certificates in service whose not_after falls within the next 30 days.
CREATE VIEW expiring_certificates AS
SELECT c.id, c.certificate_id, c.common_name, c.subject_dn, c.issuer_dn, c.serial_number,
       c.not_before, c.not_after, c.status, c.fingerprint_sha256, c.key_algorithm, c.key_size,
       c.is_ca, c.certificate_kind, c.owner_user_id, c.organization_id, c.policy_id,
       CAST(FLOOR(EXTRACT(EPOCH FROM (c.not_after - NOW())) / 86400) AS INTEGER) AS days_until_expiry
FROM certificates c
WHERE c.deleted_at IS NULL
  AND c.status IN ('active', 'expiring')
  AND c.not_after > NOW()
  AND c.not_after <= NOW() + INTERVAL '30 days';
