-- URLs a certificate authority writes into the certificates it issues:
-- {"crl_distribution_points": [...], "ocsp_urls": [...], "ca_issuers_urls": [...]}.
-- NULL on certificates that are not CAs managed by clm.
ALTER TABLE certificates ADD COLUMN issuance_urls JSONB
    CHECK (issuance_urls IS NULL OR jsonb_typeof(issuance_urls) = 'object');
