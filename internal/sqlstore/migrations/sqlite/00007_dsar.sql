-- +goose Up
-- The data-subject request log: what was asked, when it is due (one month), when it was
-- done. The person is named only by keyed hash, so the log survives their erasure.
CREATE TABLE dsar_requests (
    id           INTEGER PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    subject_hash BLOB   NOT NULL,
    kind         TEXT   NOT NULL,
    source       TEXT   NOT NULL,
    received_at  BIGINT NOT NULL,
    due_at       BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX dsar_requests_account ON dsar_requests (account_id, id);

-- +goose Down
DROP TABLE dsar_requests;
