-- Compromised keys stay dead: a revocation for key_compromise (or a CA's
-- revocation for ca_compromise) records the SHA-256 of the revoked
-- certificate's SubjectPublicKeyInfo (canonical DER, see crypto::spki_sha256),
-- and issuance, renewal and import refuse any key found here. Only those
-- revocations carry a hash, so the partial index is as small as the
-- blocklist and a lookup is one index probe. Revocations made before this
-- migration carry none.
ALTER TABLE certificate_revocations ADD COLUMN public_key_sha256 TEXT;
CREATE INDEX idx_certificate_revocations_compromised_key
    ON certificate_revocations (public_key_sha256) WHERE public_key_sha256 IS NOT NULL;
