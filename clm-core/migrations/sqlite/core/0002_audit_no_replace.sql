-- Audit rows cannot be replaced (issue 11, finding 14). With
-- recursive_triggers off (SQLite's default), INSERT OR REPLACE deletes a
-- conflicting row without firing DELETE triggers, which rewrote a row in
-- place. An insert that would collide is refused before any conflict
-- resolution runs. (SQLite has no roles: whoever can open the file can do
-- anything; no PRAGMA disables triggers, and the signed checkpoints detect
-- what file access does.)
CREATE TRIGGER trg_audit_log_no_replace BEFORE INSERT ON audit_log
    FOR EACH ROW
    WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id OR sequence_number = NEW.sequence_number)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: a row may not be replaced');
END;
