-- CA rollover as one job (issue 14). A CA whose rollover has switched
-- issuance names its successor: requests naming it are signed by the
-- successor, and policies binding it bind the successor. A retired CA signs
-- no more certificates; it keeps signing CRLs (and OCSP) for what it issued
-- until that expires. Both NULL on every other certificate.
ALTER TABLE certificates ADD COLUMN successor_certificate_id TEXT REFERENCES certificates (id);
ALTER TABLE certificates ADD COLUMN retired_at TEXT;
CREATE INDEX idx_certificates_successor ON certificates (successor_certificate_id)
    WHERE successor_certificate_id IS NOT NULL;

-- One row per rollover, with the stage it stands at: a run resumes there.
-- The ids of what the rollover creates (successor, cross certificates) are
-- chosen before they are written, so a stage interrupted after its write
-- finds its certificate instead of making a second one: no foreign keys on
-- them for that reason.
CREATE TABLE ca_rollovers (
    id                          TEXT PRIMARY KEY,
    ca_certificate_id           TEXT NOT NULL REFERENCES certificates (id),
    organization_id             TEXT,
    successor_certificate_id    TEXT NOT NULL,
    cross_new_by_old_id         TEXT,
    cross_old_by_new_id         TEXT,
    options                     TEXT NOT NULL CHECK (json_valid(options) AND json_type(options) = 'object'),
    status                      TEXT NOT NULL CHECK (status IN ('in_progress', 'waiting', 'completed')),
    stage                       TEXT NOT NULL
                                CHECK (stage IN ('create_successor', 'cross_sign', 'publish_trust_bundle',
                                                 'switch_issuance', 'reissue_leaves', 'retire_old', 'done')),
    trust_bundle_pem            TEXT,
    leaves_seen                 INTEGER NOT NULL DEFAULT 0 CHECK (leaves_seen >= 0),
    leaves_reissued             INTEGER NOT NULL DEFAULT 0 CHECK (leaves_reissued >= 0),
    leaves_pending_approval     INTEGER NOT NULL DEFAULT 0 CHECK (leaves_pending_approval >= 0),
    leaves_failed               INTEGER NOT NULL DEFAULT 0 CHECK (leaves_failed >= 0),
    last_leaf_id                TEXT,
    blockers                    INTEGER NOT NULL DEFAULT 0 CHECK (blockers >= 0),
    error_message               TEXT,
    initiated_by_user_id        TEXT,
    started_at                  TEXT NOT NULL,
    completed_at                TEXT,
    created_at                  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at                  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    deleted_at                  TEXT
);
CREATE INDEX idx_ca_rollovers_ca ON ca_rollovers (ca_certificate_id);
CREATE INDEX idx_ca_rollovers_status ON ca_rollovers (status) WHERE deleted_at IS NULL;
-- One open rollover per CA.
CREATE UNIQUE INDEX uq_ca_rollovers_open ON ca_rollovers (ca_certificate_id)
    WHERE status <> 'completed' AND deleted_at IS NULL;
CREATE TRIGGER trg_ca_rollovers_updated_at AFTER UPDATE ON ca_rollovers
    FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE ca_rollovers SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = NEW.id;
END;
