-- Every certificate insert (issuance, bulk import) pays for every index on
-- certificates. Most certificates have no owner, policy or predecessor, so
-- the indexes on those columns keep only the rows that have one: lookups by
-- a value (col = ?, col IN (...)) still use them, and an insert with NULLs
-- touches none of them. idx_certificates_organization stays whole: tenant
-- filters ask for organization_id IS NULL OR organization_id IN (...).
-- (idx_certificates_sans is PostgreSQL only.)
DROP INDEX idx_certificates_owner;
CREATE INDEX idx_certificates_owner ON certificates (owner_user_id) WHERE owner_user_id IS NOT NULL;
DROP INDEX idx_certificates_owner_live;
CREATE INDEX idx_certificates_owner_live ON certificates (owner_user_id, id)
    WHERE deleted_at IS NULL AND owner_user_id IS NOT NULL;
DROP INDEX idx_certificates_replaces;
CREATE INDEX idx_certificates_replaces ON certificates (replaces_certificate_id)
    WHERE replaces_certificate_id IS NOT NULL;
DROP INDEX idx_certificates_policy;
CREATE INDEX idx_certificates_policy ON certificates (policy_id) WHERE policy_id IS NOT NULL;
