-- A search by SAN read every certificate's JSON (json_each in an EXISTS):
-- 8.3 s at 1M certificates (issue 16). PostgreSQL answers it from a GIN
-- index (idx_certificates_sans); SQLite has no index on the elements of a
-- JSON array, so each element's value is kept in a table of its own, in
-- (value, certificate) order, written by the certificate's triggers. The
-- search reads the matching entries and then each certificate by its key.
-- Certificates keep their SANs for life; the update and delete triggers
-- keep the table true should that change. A later migration that rebuilds
-- certificates (as 0005 did) drops these triggers with the old table and
-- must create them again. No foreign key: deleting a
-- certificate would then scan this table for rows naming it.
CREATE TABLE certificate_san_values (
    value          TEXT NOT NULL,
    certificate_id TEXT NOT NULL,
    PRIMARY KEY (value, certificate_id)
) WITHOUT ROWID;

INSERT OR IGNORE INTO certificate_san_values (value, certificate_id)
SELECT json_extract(e.value, '$.value'), c.id
FROM certificates c, json_each(c.subject_alternative_names) AS e
WHERE json_extract(e.value, '$.value') IS NOT NULL;

CREATE TRIGGER trg_certificates_san_values_insert AFTER INSERT ON certificates
BEGIN
    INSERT OR IGNORE INTO certificate_san_values (value, certificate_id)
    SELECT json_extract(e.value, '$.value'), NEW.id
    FROM json_each(NEW.subject_alternative_names) AS e
    WHERE json_extract(e.value, '$.value') IS NOT NULL;
END;

-- Deletes seek by the old values, so no second index on certificate_id.
CREATE TRIGGER trg_certificates_san_values_delete AFTER DELETE ON certificates
BEGIN
    DELETE FROM certificate_san_values
    WHERE certificate_id = OLD.id
      AND value IN (SELECT json_extract(e.value, '$.value')
                    FROM json_each(OLD.subject_alternative_names) AS e);
END;

CREATE TRIGGER trg_certificates_san_values_update
AFTER UPDATE OF subject_alternative_names ON certificates
BEGIN
    DELETE FROM certificate_san_values
    WHERE certificate_id = OLD.id
      AND value IN (SELECT json_extract(e.value, '$.value')
                    FROM json_each(OLD.subject_alternative_names) AS e);
    INSERT OR IGNORE INTO certificate_san_values (value, certificate_id)
    SELECT json_extract(e.value, '$.value'), NEW.id
    FROM json_each(NEW.subject_alternative_names) AS e
    WHERE json_extract(e.value, '$.value') IS NOT NULL;
END;
