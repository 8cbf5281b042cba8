-- CRLs at scale (issue 14). Every CRL clm signs is kept here, so hosts
-- serve the latest of each scope (issuer, partition, complete or delta)
-- without signing on request; older CRLs of a scope are dropped when a
-- newer one is stored. A partition is NULL for a CRL of the whole issuer.
-- A delta names the complete CRL it updates (base_crl_number); all CRLs of
-- an issuer share its crl_number sequence.
CREATE TABLE crls (
    id                     UUID PRIMARY KEY,
    issuer_certificate_id  UUID NOT NULL REFERENCES certificates (id),
    crl_partition          INTEGER CHECK (crl_partition IS NULL OR crl_partition >= 0),
    crl_number             BIGINT NOT NULL CHECK (crl_number > 0),
    kind                   TEXT NOT NULL CHECK (kind IN ('full', 'delta')),
    base_crl_number        BIGINT,
    this_update            TIMESTAMPTZ NOT NULL,
    next_update            TIMESTAMPTZ NOT NULL,
    entries_count          BIGINT NOT NULL CHECK (entries_count >= 0),
    crl_der                BYTEA NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT ck_crls_delta_base CHECK ((kind = 'delta') = (base_crl_number IS NOT NULL)),
    CONSTRAINT ck_crls_times CHECK (next_update > this_update)
);
CREATE UNIQUE INDEX uq_crls_issuer_number ON crls (issuer_certificate_id, crl_number);
CREATE INDEX idx_crls_scope ON crls (issuer_certificate_id, kind, crl_partition, crl_number);

-- A complete CRL streams its issuer's standing revocations in serial order.
CREATE INDEX idx_certificate_revocations_issuer_serial
    ON certificate_revocations (issuer_certificate_id, serial_number)
    WHERE released_at IS NULL AND deleted_at IS NULL;
-- A delta CRL lists holds released since its base (removeFromCRL).
CREATE INDEX idx_certificate_revocations_issuer_released
    ON certificate_revocations (issuer_certificate_id, released_at)
    WHERE released_at IS NOT NULL AND deleted_at IS NULL;
