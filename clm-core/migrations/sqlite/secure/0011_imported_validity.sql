-- no-transaction
-- An imported certificate is stored with the validity it carries, even when
-- notAfter is not after notBefore (real certificates have a zero-length
-- validity, some an inverted one; issue 17): the import flags it
-- (`validity_empty`, `validity_inverted`) instead of failing on this
-- constraint. Certificates clm issues keep the strict check. See the
-- PostgreSQL migration of the same number.
--
-- SQLite cannot change a table constraint, so the table is rebuilt as in
-- 0005 (https://sqlite.org/lang_altertable.html#otheralter): foreign keys off
-- outside the transaction, copy into a new table, drop, rename, recreate the
-- indexes, trigger and views, foreign keys back on. Rows keep their ids, so
-- the references to them stay valid.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
DROP VIEW active_certificates;
DROP VIEW expiring_certificates;
CREATE TABLE certificates_rebuilt (
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
    issuance_urls             TEXT
                              CHECK (issuance_urls IS NULL OR (json_valid(issuance_urls) AND json_type(issuance_urls) = 'object')),
    successor_certificate_id  TEXT REFERENCES certificates (id),
    retired_at                TEXT,
    CONSTRAINT uq_certificates_certificate_id UNIQUE (certificate_id),
    -- Imports keep what the certificate says, however odd (flagged
    -- validity_empty / validity_inverted); clm's own issuance never writes it.
    CONSTRAINT ck_certificates_validity CHECK (not_after > not_before OR source = 'imported')
);
INSERT INTO certificates_rebuilt (id, certificate_id, common_name, subject_dn, issuer_dn, serial_number, not_before, not_after,
    status, fingerprint_sha256, key_algorithm, key_size, signature_algorithm, is_ca, path_len,
    certificate_kind, source, issuer_certificate_id, replaces_certificate_id, subject_key_id,
    authority_key_id, subject_alternative_names, import_flags, certificate_pem, owner_user_id,
    organization_id, policy_id, policy_version, workflow_id, crl_number, created_at, updated_at,
    deleted_at, issuance_urls, successor_certificate_id, retired_at)
SELECT id, certificate_id, common_name, subject_dn, issuer_dn, serial_number, not_before, not_after,
    status, fingerprint_sha256, key_algorithm, key_size, signature_algorithm, is_ca, path_len,
    certificate_kind, source, issuer_certificate_id, replaces_certificate_id, subject_key_id,
    authority_key_id, subject_alternative_names, import_flags, certificate_pem, owner_user_id,
    organization_id, policy_id, policy_version, workflow_id, crl_number, created_at, updated_at,
    deleted_at, issuance_urls, successor_certificate_id, retired_at
FROM certificates;
DROP TABLE certificates;
ALTER TABLE certificates_rebuilt RENAME TO certificates;

-- The indexes, trigger and views as 0001-0009 left them.
CREATE UNIQUE INDEX uq_certificates_fingerprint_sha256_org ON certificates (fingerprint_sha256, organization_id)
    WHERE organization_id IS NOT NULL;
CREATE UNIQUE INDEX uq_certificates_fingerprint_sha256_shared ON certificates (fingerprint_sha256)
    WHERE organization_id IS NULL;
CREATE INDEX idx_certificates_status ON certificates (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_certificates_expiry ON certificates (not_after);
CREATE INDEX idx_certificates_owner ON certificates (owner_user_id) WHERE owner_user_id IS NOT NULL;
CREATE INDEX idx_certificates_issuer ON certificates (issuer_certificate_id);
CREATE INDEX idx_certificates_replaces ON certificates (replaces_certificate_id)
    WHERE replaces_certificate_id IS NOT NULL;
CREATE INDEX idx_certificates_organization ON certificates (organization_id);
CREATE INDEX idx_certificates_common_name ON certificates (common_name);
CREATE INDEX idx_certificates_policy ON certificates (policy_id) WHERE policy_id IS NOT NULL;
CREATE INDEX idx_certificates_live_expiry ON certificates (not_after, id) WHERE deleted_at IS NULL;
CREATE INDEX idx_certificates_owner_live ON certificates (owner_user_id, id)
    WHERE deleted_at IS NULL AND owner_user_id IS NOT NULL;
CREATE UNIQUE INDEX uq_certificates_issuer_serial ON certificates (issuer_certificate_id, serial_number)
    WHERE source = 'issued';
CREATE INDEX idx_certificates_issuer_serial_imported ON certificates (issuer_certificate_id, serial_number)
    WHERE source = 'imported';
CREATE INDEX idx_certificates_successor ON certificates (successor_certificate_id)
    WHERE successor_certificate_id IS NOT NULL;
CREATE TRIGGER trg_certificates_updated_at AFTER UPDATE ON certificates
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE certificates SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;

CREATE VIEW active_certificates AS
SELECT c.id, c.certificate_id, c.common_name, c.subject_dn, c.issuer_dn, c.serial_number,
       c.not_before, c.not_after, c.status, c.fingerprint_sha256, c.key_algorithm, c.key_size,
       c.signature_algorithm, c.is_ca, c.certificate_kind, c.issuer_certificate_id,
       c.subject_alternative_names, c.owner_user_id, c.organization_id, c.policy_id, c.created_at
FROM certificates c
WHERE c.deleted_at IS NULL
  AND c.status IN ('active', 'expiring');

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
-- Inventory search by serial (CertificateSearch::serial_number, which also
-- takes a negative serial's signed value) looks rows up by their stored bytes.
CREATE INDEX idx_certificates_serial ON certificates (serial_number);
COMMIT;
PRAGMA foreign_keys = ON;
