-- Every issuance inserts a certificate and a request and pays for each of
-- their indexes (issue 16). Three kept maintenance that no query repays:
-- * idx_certificates_common_name: the only search by common name asks for a
--   case-insensitive substring (ILIKE '%...%'), which a btree cannot answer;
--   no query compares common_name for equality or orders by it.
-- * idx_certificate_requests_sans: a GIN index (jsonb_ops, the most costly
--   to update) that no query uses: requests are never searched by SAN.
-- * idx_certificate_requests_renewal_of held every request, though only
--   renewals name a predecessor: like the certificates' own (0003), it now
--   keeps only those; the lookups by value (renewal_of_certificate_id = c.id)
--   still use it.
DROP INDEX idx_certificates_common_name;
DROP INDEX idx_certificate_requests_sans;
DROP INDEX idx_certificate_requests_renewal_of;
CREATE INDEX idx_certificate_requests_renewal_of ON certificate_requests (renewal_of_certificate_id)
    WHERE renewal_of_certificate_id IS NOT NULL;
