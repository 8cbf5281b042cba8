-- An imported certificate is stored with the validity it carries, even when
-- notAfter is not after notBefore (real certificates have a zero-length
-- validity, some an inverted one; issue 17): the import flags it
-- (`validity_empty`, `validity_inverted`) instead of failing on this
-- constraint. Certificates clm issues keep the strict check.
ALTER TABLE certificates DROP CONSTRAINT ck_certificates_validity;
ALTER TABLE certificates ADD CONSTRAINT ck_certificates_validity
    CHECK (not_after > not_before OR source = 'imported');
-- Inventory search by serial (CertificateSearch::serial_number, which also
-- takes a negative serial's signed value) looks rows up by their stored bytes.
CREATE INDEX idx_certificates_serial ON certificates (serial_number);
