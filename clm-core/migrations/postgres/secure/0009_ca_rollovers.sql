-- CA rollover as one job (issue 14). A CA whose rollover has switched
-- issuance names its successor: requests naming it are signed by the
-- successor, and policies binding it bind the successor. A retired CA signs
-- no more certificates; it keeps signing CRLs (and OCSP) for what it issued
-- until that expires. Both NULL on every other certificate.
ALTER TABLE certificates ADD COLUMN successor_certificate_id UUID REFERENCES certificates (id);
ALTER TABLE certificates ADD COLUMN retired_at TIMESTAMPTZ;
CREATE INDEX idx_certificates_successor ON certificates (successor_certificate_id)
    WHERE successor_certificate_id IS NOT NULL;

-- One row per rollover, with the stage it stands at: a run resumes there.
-- The ids of what the rollover creates (successor, cross certificates) are
-- chosen before they are written, so a stage interrupted after its write
-- finds its certificate instead of making a second one: no foreign keys on
-- them for that reason.
CREATE TABLE ca_rollovers (
    id                          UUID PRIMARY KEY,
    ca_certificate_id           UUID NOT NULL REFERENCES certificates (id),
    organization_id             UUID,
    successor_certificate_id    UUID NOT NULL,
    cross_new_by_old_id         UUID,
    cross_old_by_new_id         UUID,
    options                     JSONB NOT NULL CHECK (jsonb_typeof(options) = 'object'),
    status                      TEXT NOT NULL CHECK (status IN ('in_progress', 'waiting', 'completed')),
    stage                       TEXT NOT NULL
                                CHECK (stage IN ('create_successor', 'cross_sign', 'publish_trust_bundle',
                                                 'switch_issuance', 'reissue_leaves', 'retire_old', 'done')),
    trust_bundle_pem            TEXT,
    leaves_seen                 BIGINT NOT NULL DEFAULT 0 CHECK (leaves_seen >= 0),
    leaves_reissued             BIGINT NOT NULL DEFAULT 0 CHECK (leaves_reissued >= 0),
    leaves_pending_approval     BIGINT NOT NULL DEFAULT 0 CHECK (leaves_pending_approval >= 0),
    leaves_failed               BIGINT NOT NULL DEFAULT 0 CHECK (leaves_failed >= 0),
    last_leaf_id                UUID,
    blockers                    BIGINT NOT NULL DEFAULT 0 CHECK (blockers >= 0),
    error_message               TEXT,
    initiated_by_user_id        UUID,
    started_at                  TIMESTAMPTZ NOT NULL,
    completed_at                TIMESTAMPTZ,
    created_at                  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at                  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at                  TIMESTAMPTZ
);
CREATE INDEX idx_ca_rollovers_ca ON ca_rollovers (ca_certificate_id);
CREATE INDEX idx_ca_rollovers_status ON ca_rollovers (status) WHERE deleted_at IS NULL;
-- One open rollover per CA.
CREATE UNIQUE INDEX uq_ca_rollovers_open ON ca_rollovers (ca_certificate_id)
    WHERE status <> 'completed' AND deleted_at IS NULL;
CREATE TRIGGER trg_ca_rollovers_updated_at BEFORE UPDATE ON ca_rollovers
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
