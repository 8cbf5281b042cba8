-- Audit rows are deleted only by the archive routine (issue 11, finding 14).
-- Before this, any connection could SET clm.audit_archive = 'on' and delete.
-- Now a DELETE passes the append-only trigger only when the transaction is
-- marked AND it runs as the table's owner, which an application role reaches
-- only through archive_secure_audit_log_rows(), a SECURITY DEFINER function owned by the
-- role that ran this migration. SET cannot change current_user, so no
-- setting opens the table. Deployments: run migrations as the owner, run the
-- application as a role that is neither owner nor superuser (both bypass
-- everything here) and GRANT it EXECUTE on archive_secure_audit_log_rows.
CREATE OR REPLACE FUNCTION reject_audit_modification() RETURNS TRIGGER AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('clm.audit_archive', true) = 'on'
       AND current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'check_violation';
END;
$$ LANGUAGE plpgsql;

-- Deletes rows 1..through, and only when the chain's head is the
-- audit.archived record of that run (appended first, in the same
-- transaction, by the library): the newest rows can never be removed, and
-- every removal is accounted for in the chain.
CREATE FUNCTION archive_secure_audit_log_rows(through BIGINT) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    head_sequence BIGINT;
    head_type     TEXT;
    head_through  TEXT;
    deleted       BIGINT;
BEGIN
    -- The chain's append lock (the library's advisory key for this log).
    PERFORM pg_advisory_xact_lock(1668050177);
    SELECT sequence_number, event_type, details ->> 'archived_through_sequence'
      INTO head_sequence, head_type, head_through
      FROM secure_audit_log ORDER BY sequence_number DESC LIMIT 1;
    IF head_type IS DISTINCT FROM 'audit.archived'
       OR head_through IS DISTINCT FROM through::TEXT
       OR head_sequence <= through THEN
        RAISE EXCEPTION 'secure_audit_log: the archive routine deletes only rows that the audit.archived record at the head of the chain accounts for (through %)', through
            USING ERRCODE = 'check_violation';
    END IF;
    PERFORM set_config('clm.audit_archive', 'on', true);
    DELETE FROM secure_audit_log WHERE sequence_number <= through;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM set_config('clm.audit_archive', 'off', true);
    RETURN deleted;
END;
$$;
REVOKE ALL ON FUNCTION archive_secure_audit_log_rows(BIGINT) FROM PUBLIC;
REVOKE DELETE, TRUNCATE ON secure_audit_log FROM PUBLIC;
