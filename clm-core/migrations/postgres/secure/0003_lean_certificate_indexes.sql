-- Every certificate insert (issuance, bulk import) pays for every index on
-- certificates. Most certificates have no owner, policy or predecessor, so
-- the indexes on those columns keep only the rows that have one: lookups by
-- a value (col = $1, col = ANY($1)) still use them, and an insert with NULLs
-- touches none of them. idx_certificates_organization stays whole: tenant
-- filters ask for organization_id IS NULL OR organization_id IN (...).
-- Measured on 20,000 rows in batches of 2,000, server side: 450 ms -> 400 ms.
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
-- The SAN search asks for containment (subject_alternative_names @> '[{"value": ...}]'),
-- which jsonb_path_ops answers with a smaller index that is cheaper to update.
DROP INDEX idx_certificates_sans;
CREATE INDEX idx_certificates_sans ON certificates USING GIN (subject_alternative_names jsonb_path_ops);
