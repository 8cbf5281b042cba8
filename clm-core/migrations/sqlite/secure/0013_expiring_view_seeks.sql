-- The expiring view compared julianday(not_after), which no index holds, so
-- a page walked idx_certificates_live_expiry from its first (long expired)
-- row: 59 ms at 1M certificates (issue 16). It now compares not_after as
-- stored, RFC 3339 text in UTC ("YYYY-MM-DDTHH:MM:SS[.fff[fff[fff]]]+00:00",
-- how sqlx writes a DateTime<Utc>), whose text order is its time order, with
-- "now" written the same way: the index range starts at now. The store's
-- other time filters (not_after <= ?, keyset cursors) already compare this
-- text. The unary + keeps idx_certificates_status out of the plan: without
-- statistics SQLite would otherwise read every active row through it and
-- sort them. PostgreSQL's view compares timestamptz and seeks already.
DROP VIEW expiring_certificates;
CREATE VIEW expiring_certificates AS
SELECT c.id, c.certificate_id, c.common_name, c.subject_dn, c.issuer_dn, c.serial_number,
       c.not_before, c.not_after, c.status, c.fingerprint_sha256, c.key_algorithm, c.key_size,
       c.is_ca, c.certificate_kind, c.owner_user_id, c.organization_id, c.policy_id,
       CAST(julianday(c.not_after) - julianday('now') AS INTEGER) AS days_until_expiry
FROM certificates c
WHERE c.deleted_at IS NULL
  AND +c.status IN ('active', 'expiring')
  AND c.not_after > strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
  AND c.not_after <= strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '+30 days');
