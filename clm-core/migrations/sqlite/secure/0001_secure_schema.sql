-- clm_secure_db: cryptographic material. SQLite dialect of
-- migrations/postgres/secure/0001_secure_schema.sql (the reference); keep the two in step.
-- Cross-database references (owner_user_id, organization_id, policy_id,
-- workflow_id, *_user_id) are plain UUIDs: they point into clm_core_db.
--
-- Type mapping: UUID -> TEXT (hyphenated lowercase), TIMESTAMPTZ -> TEXT (RFC 3339 UTC
-- with '+00:00', as sqlx-sqlite encodes DateTime<Utc>), BYTEA -> BLOB, JSONB -> TEXT
-- (json_valid + json_type checks), BOOLEAN -> INTEGER 0/1.
-- SQL-side timestamps use strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') so they have the
-- same shape as the app's and text comparison / ordering stays correct.
-- Foreign keys are enforced because the app enables PRAGMA foreign_keys.

CREATE TABLE encryption_keys (
    id                TEXT PRIMARY KEY,
    key_id            TEXT NOT NULL,
    key_type          TEXT NOT NULL CHECK (key_type IN ('data_encryption')),
    key_status        TEXT NOT NULL CHECK (key_status IN ('active', 'decrypt_only', 'retired')),
    algorithm         TEXT NOT NULL DEFAULT 'AES-256-GCM' CHECK (algorithm IN ('AES-256-GCM')),
    key_version       INTEGER NOT NULL CHECK (key_version > 0),
    wrapped_key       BLOB NOT NULL,
    wrap_nonce        BLOB NOT NULL,
    master_key_id     TEXT NOT NULL,
    encryption_count  INTEGER NOT NULL DEFAULT 0 CHECK (encryption_count >= 0),
    activated_at      TEXT,
    retired_at        TEXT,
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at        TEXT,
    CONSTRAINT uq_encryption_keys_key_id UNIQUE (key_id),
    CONSTRAINT uq_encryption_keys_version UNIQUE (key_type, key_version)
);
-- At most one key seals new data at any time.
CREATE UNIQUE INDEX uq_encryption_keys_one_active ON encryption_keys (key_type)
    WHERE key_status = 'active' AND deleted_at IS NULL;
CREATE INDEX idx_encryption_keys_status ON encryption_keys (key_status) WHERE deleted_at IS NULL;

CREATE TABLE certificates (
    id                        TEXT PRIMARY KEY,
    certificate_id            TEXT NOT NULL,
    common_name               TEXT,
    subject_dn                TEXT NOT NULL,
    issuer_dn                 TEXT NOT NULL,
    serial_number             TEXT NOT NULL,
    not_before                TEXT NOT NULL,
    not_after                 TEXT NOT NULL,
    status                    TEXT NOT NULL DEFAULT 'active'
                              CHECK (status IN ('pending', 'active', 'expiring', 'expired', 'revoked', 'suspended')),
    fingerprint_sha256        TEXT NOT NULL,
    key_algorithm             TEXT NOT NULL,
    key_size                  INTEGER NOT NULL CHECK (key_size >= 0),
    signature_algorithm       TEXT NOT NULL,
    is_ca                     INTEGER NOT NULL DEFAULT 0 CHECK (is_ca IN (0, 1)),
    path_len                  INTEGER CHECK (path_len IS NULL OR path_len >= 0),
    certificate_kind          TEXT NOT NULL
                              CHECK (certificate_kind IN ('root_ca', 'intermediate_ca', 'tls_server', 'tls_client',
                                                          'tls_server_client', 'code_signing', 'email', 'imported')),
    source                    TEXT NOT NULL CHECK (source IN ('issued', 'imported')),
    issuer_certificate_id     TEXT REFERENCES certificates (id),
    replaces_certificate_id   TEXT REFERENCES certificates (id),
    subject_key_id            TEXT,
    authority_key_id          TEXT,
    subject_alternative_names TEXT NOT NULL DEFAULT '[]'
                              CHECK (json_valid(subject_alternative_names)
                                     AND json_type(subject_alternative_names) = 'array'),
    import_flags              TEXT NOT NULL DEFAULT '[]'
                              CHECK (json_valid(import_flags) AND json_type(import_flags) = 'array'),
    certificate_pem           TEXT NOT NULL,
    owner_user_id             TEXT,
    organization_id           TEXT,
    policy_id                 TEXT,
    policy_version            INTEGER,
    workflow_id               TEXT,
    crl_number                INTEGER NOT NULL DEFAULT 0 CHECK (crl_number >= 0),
    created_at                TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at                TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at                TEXT,
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
-- idx_certificates_sans: GIN index on subject_alternative_names is PostgreSQL only; skipped.
-- Serials are unique per issuer for what clm issues (imports may hold anything).
CREATE UNIQUE INDEX uq_certificates_issuer_serial ON certificates (issuer_certificate_id, serial_number)
    WHERE source = 'issued';
-- The trg_*_updated_at triggers stand in for PostgreSQL's update_updated_at_column():
-- they stamp updated_at after an UPDATE that did not change it itself (recursive
-- triggers are off, and the WHEN clause keeps the inner UPDATE from firing again).
CREATE TRIGGER trg_certificates_updated_at AFTER UPDATE ON certificates
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE certificates SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TRIGGER trg_encryption_keys_updated_at AFTER UPDATE ON encryption_keys
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE encryption_keys SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE private_keys (
    id                     TEXT PRIMARY KEY,
    certificate_id         TEXT NOT NULL REFERENCES certificates (id),
    encryption_key_id      TEXT NOT NULL REFERENCES encryption_keys (id),
    encrypted_key_material BLOB NOT NULL,
    nonce                  BLOB NOT NULL,
    key_algorithm          TEXT NOT NULL,
    key_size               INTEGER NOT NULL CHECK (key_size >= 0),
    public_key_sha256      TEXT NOT NULL,
    created_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at             TEXT
);
-- 1:1 with certificates.
CREATE UNIQUE INDEX idx_private_keys_cert ON private_keys (certificate_id);
-- Rotation walks the keys of one data key in id order.
CREATE INDEX idx_private_keys_encryption_key ON private_keys (encryption_key_id, id);
CREATE TRIGGER trg_private_keys_updated_at AFTER UPDATE ON private_keys
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE private_keys SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE certificate_requests (
    id                         TEXT PRIMARY KEY,
    request_id                 TEXT NOT NULL,
    csr_pem                    TEXT,
    common_name                TEXT,
    subject_dn                 TEXT NOT NULL,
    subject_alternative_names  TEXT NOT NULL DEFAULT '[]'
                               CHECK (json_valid(subject_alternative_names)
                                      AND json_type(subject_alternative_names) = 'array'),
    key_algorithm              TEXT NOT NULL,
    key_size                   INTEGER NOT NULL CHECK (key_size >= 0),
    certificate_kind           TEXT NOT NULL
                               CHECK (certificate_kind IN ('root_ca', 'intermediate_ca', 'tls_server', 'tls_client',
                                                           'tls_server_client', 'code_signing', 'email', 'imported')),
    validity_days              INTEGER NOT NULL CHECK (validity_days > 0),
    status                     TEXT NOT NULL DEFAULT 'pending'
                               CHECK (status IN ('pending', 'pending_approval', 'approved', 'rejected', 'issued',
                                                 'failed', 'cancelled', 'expired')),
    issuer_certificate_id      TEXT REFERENCES certificates (id),
    certificate_id             TEXT REFERENCES certificates (id),
    renewal_of_certificate_id  TEXT REFERENCES certificates (id),
    reuse_key                  INTEGER NOT NULL DEFAULT 0 CHECK (reuse_key IN (0, 1)),
    requested_by_user_id       TEXT,
    owner_user_id              TEXT,
    organization_id            TEXT,
    policy_id                  TEXT,
    workflow_instance_id       TEXT,
    failure_reason             TEXT,
    expires_at                 TEXT,
    created_at                 TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at                 TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at                 TEXT,
    CONSTRAINT uq_certificate_requests_request_id UNIQUE (request_id)
);
CREATE INDEX idx_certificate_requests_status ON certificate_requests (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_certificate_requests_issuer ON certificate_requests (issuer_certificate_id);
CREATE INDEX idx_certificate_requests_certificate ON certificate_requests (certificate_id);
CREATE INDEX idx_certificate_requests_renewal_of ON certificate_requests (renewal_of_certificate_id);
CREATE INDEX idx_certificate_requests_organization ON certificate_requests (organization_id);
CREATE INDEX idx_certificate_requests_expires ON certificate_requests (expires_at) WHERE deleted_at IS NULL;
-- idx_certificate_requests_sans: GIN index on subject_alternative_names is PostgreSQL only; skipped.
CREATE TRIGGER trg_certificate_requests_updated_at AFTER UPDATE ON certificate_requests
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE certificate_requests SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE certificate_revocations (
    id                     TEXT PRIMARY KEY,
    certificate_id         TEXT NOT NULL REFERENCES certificates (id),
    issuer_certificate_id  TEXT REFERENCES certificates (id),
    serial_number          TEXT NOT NULL,
    revocation_reason      TEXT NOT NULL
                           CHECK (revocation_reason IN ('unspecified', 'key_compromise', 'ca_compromise',
                                  'affiliation_changed', 'superseded', 'cessation_of_operation',
                                  'certificate_hold', 'remove_from_crl', 'privilege_withdrawn', 'aa_compromise')),
    revoked_at             TEXT NOT NULL,
    revoked_by_user_id     TEXT,
    comment                TEXT,
    released_at            TEXT,
    released_by_user_id    TEXT,
    created_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at             TEXT,
    CONSTRAINT ck_certificate_revocations_release CHECK (released_at IS NULL OR revocation_reason = 'certificate_hold')
);
CREATE INDEX idx_certificate_revocations_cert ON certificate_revocations (certificate_id);
CREATE INDEX idx_certificate_revocations_issuer ON certificate_revocations (issuer_certificate_id, revoked_at)
    WHERE released_at IS NULL AND deleted_at IS NULL;
-- One standing revocation per certificate: revoking twice is a conflict.
CREATE UNIQUE INDEX uq_certificate_revocations_current ON certificate_revocations (certificate_id)
    WHERE released_at IS NULL AND deleted_at IS NULL;
CREATE TRIGGER trg_certificate_revocations_updated_at AFTER UPDATE ON certificate_revocations
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE certificate_revocations SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE key_rotation_history (
    id                      TEXT PRIMARY KEY,
    rotation_type           TEXT NOT NULL CHECK (rotation_type IN ('data_key', 'master_key')),
    old_key_id              TEXT REFERENCES encryption_keys (id),
    new_key_id              TEXT REFERENCES encryption_keys (id),
    old_master_key_id       TEXT,
    new_master_key_id       TEXT,
    status                  TEXT NOT NULL CHECK (status IN ('in_progress', 'completed', 'failed')),
    total_items             INTEGER NOT NULL DEFAULT 0 CHECK (total_items >= 0),
    rotated_items           INTEGER NOT NULL DEFAULT 0 CHECK (rotated_items >= 0),
    last_item_id            TEXT,
    error_message           TEXT,
    initiated_by_user_id    TEXT,
    started_at              TEXT NOT NULL,
    completed_at            TEXT,
    created_at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at              TEXT
);
CREATE INDEX idx_key_rotation_history_old_key ON key_rotation_history (old_key_id);
CREATE INDEX idx_key_rotation_history_new_key ON key_rotation_history (new_key_id);
CREATE INDEX idx_key_rotation_history_status ON key_rotation_history (status) WHERE deleted_at IS NULL;
-- One rotation at a time.
CREATE UNIQUE INDEX uq_key_rotation_history_running ON key_rotation_history (rotation_type)
    WHERE status = 'in_progress';
CREATE TRIGGER trg_key_rotation_history_updated_at AFTER UPDATE ON key_rotation_history
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE key_rotation_history SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE TABLE secure_audit_log (
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
    CONSTRAINT uq_secure_audit_log_sequence UNIQUE (sequence_number)
);
CREATE INDEX idx_secure_audit_timestamp ON secure_audit_log (event_timestamp DESC);
CREATE INDEX idx_secure_audit_resource ON secure_audit_log (resource_type, resource_id, event_timestamp DESC);
CREATE INDEX idx_secure_audit_user ON secure_audit_log (user_id);
CREATE INDEX idx_secure_audit_organization ON secure_audit_log (organization_id);
-- Append-only (stands in for PostgreSQL's reject_audit_modification()). Archiving drops
-- and recreates trg_secure_audit_log_append_only_delete inside its own transaction, so
-- the DELETE trigger must stay separate and keep this exact name.
-- PostgreSQL's TRUNCATE trigger has no SQLite counterpart (no TRUNCATE); skipped.
CREATE TRIGGER trg_secure_audit_log_append_only BEFORE UPDATE ON secure_audit_log
    FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'secure_audit_log is append-only: UPDATE is not allowed');
END;
CREATE TRIGGER trg_secure_audit_log_append_only_delete BEFORE DELETE ON secure_audit_log
    FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'secure_audit_log is append-only: DELETE is not allowed');
END;

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
-- days_until_expiry = floor(days from now); the WHERE keeps it positive, so the CAST's
-- truncation equals floor (and needs no math-functions build of SQLite).
CREATE VIEW expiring_certificates AS
SELECT c.id, c.certificate_id, c.common_name, c.subject_dn, c.issuer_dn, c.serial_number,
       c.not_before, c.not_after, c.status, c.fingerprint_sha256, c.key_algorithm, c.key_size,
       c.is_ca, c.certificate_kind, c.owner_user_id, c.organization_id, c.policy_id,
       CAST(julianday(c.not_after) - julianday('now') AS INTEGER) AS days_until_expiry
FROM certificates c
WHERE c.deleted_at IS NULL
  AND c.status IN ('active', 'expiring')
  AND julianday(c.not_after) > julianday('now')
  AND julianday(c.not_after) <= julianday('now', '+30 days');
