-- +goose Up
-- OpenDSR requests routed to Tidings by controllers. The subject's address is sealed
-- under the instance key only while an access request's results may still be fetched.
CREATE TABLE opendsr_requests (
    id            TEXT   NOT NULL PRIMARY KEY, -- the controller's subject_request_id (UUID)
    account_id    BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind          TEXT   NOT NULL,
    status        TEXT   NOT NULL,
    email_sealed  BLOB,
    callbacks     TEXT   NOT NULL DEFAULT '',
    received_at   BIGINT NOT NULL,
    expected_at   BIGINT NOT NULL,
    completed_at  BIGINT
);

-- +goose Down
DROP TABLE opendsr_requests;
