-- +goose Up
-- The subscriber portal: single-use sign-in links and first-party sessions. The address
-- is sealed under the instance key (needed to find the person's data); rows expire
-- within minutes (links) or hours (sessions) and are swept.
CREATE TABLE portal_tokens (
    token_hash   BLOB   NOT NULL PRIMARY KEY,
    email_sealed BLOB   NOT NULL,
    email_hash   BLOB   NOT NULL, -- keyed lookup hash, so erasure can end every session
    expires_at   BIGINT NOT NULL,
    session      BOOLEAN NOT NULL DEFAULT FALSE -- false: a sign-in link; true: a session
);
CREATE INDEX portal_tokens_expiry ON portal_tokens (expires_at);
CREATE INDEX portal_tokens_email ON portal_tokens (email_hash);

-- +goose Down
DROP TABLE portal_tokens;
