-- A certificate's fingerprint is unique within one organization, not across
-- all of them (issue 11, finding 9). A global constraint let one tenant learn
-- that another holds a certificate (its import answered "already present")
-- and pre-empt it (importing another tenant's public certificate first).
-- Shared rows (no organization) are one scope of their own: NULL must count
-- as equal here, which a plain unique index does not do, hence two partial
-- indexes (the same SQL on SQLite and on any PostgreSQL version). Each row
-- enters exactly one of them, as it entered the old constraint's index, and
-- lookups by fingerprint within one scope use them.
ALTER TABLE certificates DROP CONSTRAINT uq_certificates_fingerprint_sha256;
CREATE UNIQUE INDEX uq_certificates_fingerprint_sha256_org ON certificates (fingerprint_sha256, organization_id)
    WHERE organization_id IS NOT NULL;
CREATE UNIQUE INDEX uq_certificates_fingerprint_sha256_shared ON certificates (fingerprint_sha256)
    WHERE organization_id IS NULL;
