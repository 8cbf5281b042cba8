-- Every issuance inserts a certificate and a request and pays for each of
-- their indexes (issue 16); see the PostgreSQL migration of the same number.
-- * idx_certificates_common_name: the only search by common name is a
--   case-insensitive substring match (LIKE '%...%'), which no index answers.
-- * idx_certificate_requests_renewal_of keeps only renewals, which are all
--   its lookups by value ask for.
DROP INDEX idx_certificates_common_name;
DROP INDEX idx_certificate_requests_renewal_of;
CREATE INDEX idx_certificate_requests_renewal_of ON certificate_requests (renewal_of_certificate_id)
    WHERE renewal_of_certificate_id IS NOT NULL;
