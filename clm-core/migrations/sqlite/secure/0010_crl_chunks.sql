-- A CRL is stored and served in chunks (issue 14): a CRL of a million
-- entries (about 47 MiB) is written and read a chunk at a time, never whole
-- in memory. Chunks of a CRL are numbered from 0 and concatenate to its DER.
CREATE TABLE crl_chunks (
    crl_id       TEXT NOT NULL REFERENCES crls (id) ON DELETE CASCADE,
    chunk_index  INTEGER NOT NULL CHECK (chunk_index >= 0),
    chunk        BLOB NOT NULL CHECK (length(chunk) > 0),
    PRIMARY KEY (crl_id, chunk_index)
);

ALTER TABLE crls ADD COLUMN crl_size BIGINT NOT NULL DEFAULT 0 CHECK (crl_size >= 0);
UPDATE crls SET crl_size = length(crl_der);
INSERT INTO crl_chunks (crl_id, chunk_index, chunk) SELECT id, 0, crl_der FROM crls;
ALTER TABLE crls DROP COLUMN crl_der;
