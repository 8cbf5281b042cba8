-- OCSP (RFC 6960). Each clm-held CA answers through a delegated responder:
-- a short-lived certificate with id-kp-OCSPSigning and id-pkix-ocsp-nocheck
-- that the CA issues to a key of its own, sealed like every private key
-- (associated data: table, column, row). A signer is disposable: when its
-- key cannot be opened (its data key retired) or it nears its end, clm
-- issues the next one, so these rows are never re-sealed by rotation.
CREATE TABLE ocsp_signers (
    id                     UUID PRIMARY KEY,
    issuer_certificate_id  UUID NOT NULL REFERENCES certificates (id),
    certificate_der        BYTEA NOT NULL,
    encryption_key_id      UUID NOT NULL REFERENCES encryption_keys (id),
    encrypted_key_material BYTEA NOT NULL,
    nonce                  BYTEA NOT NULL,
    key_algorithm          TEXT NOT NULL,
    not_before             TIMESTAMPTZ NOT NULL,
    not_after              TIMESTAMPTZ NOT NULL CHECK (not_after > not_before),
    created_at             TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
-- The newest signer of an issuer; the lifecycle finds those ending soon.
CREATE INDEX idx_ocsp_signers_issuer ON ocsp_signers (issuer_certificate_id, not_after);

-- Pre-signed responses, one per certificate (SHA-1 CertID, no nonce):
-- signed at issuance (one insert in the issuing transaction), replaced at
-- revocation and at a hold's release in that transaction, refreshed by
-- run_lifecycle before next_update. A request without nonce is answered
-- by one probe of idx_ocsp_responses_lookup.
CREATE TABLE ocsp_responses (
    id                    UUID PRIMARY KEY,
    certificate_id        UUID NOT NULL REFERENCES certificates (id),
    issuer_certificate_id UUID NOT NULL REFERENCES certificates (id),
    serial_number         TEXT NOT NULL,
    cert_status           TEXT NOT NULL CHECK (cert_status IN ('good', 'revoked')),
    response_der          BYTEA NOT NULL,
    this_update           TIMESTAMPTZ NOT NULL,
    next_update           TIMESTAMPTZ NOT NULL CHECK (next_update > this_update),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE UNIQUE INDEX uq_ocsp_responses_certificate ON ocsp_responses (certificate_id);
CREATE INDEX idx_ocsp_responses_lookup ON ocsp_responses (issuer_certificate_id, serial_number);
CREATE INDEX idx_ocsp_responses_next_update ON ocsp_responses (next_update);

-- A fresh answer (a nonce, a SHA-256 CertID, a missing or stale stored
-- response) reads the status by issuer and serial: one probe each, never a
-- scan of an issuer's certificates or revocations, whatever serial a client
-- asks about. Issued serials already have uq_certificates_issuer_serial;
-- standing revocations get idx_certificate_revocations_issuer_serial in
-- 0008 (the CRLs stream by it too).
CREATE INDEX idx_certificates_issuer_serial_imported ON certificates (issuer_certificate_id, serial_number)
    WHERE source = 'imported';
