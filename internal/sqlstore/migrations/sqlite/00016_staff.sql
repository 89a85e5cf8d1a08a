-- +goose Up
-- The login side of users: second factor (secret sealed under the instance key), lockout
-- after repeated failures, and when the password last changed.
ALTER TABLE users ADD COLUMN totp_secret BLOB;
ALTER TABLE users ADD COLUMN totp_enabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN password_changed_at BIGINT NOT NULL DEFAULT 0;

-- Accounts may require two-factor of their staff, and name a page on their own website
-- that links to their Tidings pages (phishing defence).
ALTER TABLE accounts ADD COLUMN require_totp BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE accounts ADD COLUMN public_page_url TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN public_page_verified_at BIGINT;

CREATE TABLE recovery_codes (
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB   NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- Admin sessions: only the SHA-256 of the cookie is stored.
CREATE TABLE staff_sessions (
    token_hash   BLOB   PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX staff_sessions_user ON staff_sessions (user_id);

CREATE TABLE password_resets (
    token_hash BLOB   PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX password_resets_user ON password_resets (user_id);

-- Every login attempt; user_id is NULL for an address nobody has (not kept).
CREATE TABLE login_attempts (
    id         INTEGER PRIMARY KEY,
    user_id    BIGINT REFERENCES users (id) ON DELETE CASCADE,
    ip         TEXT   NOT NULL,
    user_agent TEXT   NOT NULL,
    result     TEXT   NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX login_attempts_user ON login_attempts (user_id, id);

CREATE TABLE terms_versions (
    version      INTEGER PRIMARY KEY,
    body         TEXT   NOT NULL,
    published_at BIGINT NOT NULL
);

CREATE TABLE terms_acceptances (
    user_id     BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL REFERENCES terms_versions (version),
    accepted_at BIGINT  NOT NULL,
    ip          TEXT    NOT NULL,
    PRIMARY KEY (user_id, version)
);

-- Staff actions on personal data and settings. Kept when the user goes (user_id stays).
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    account_id BIGINT REFERENCES accounts (id) ON DELETE CASCADE, -- NULL: platform
    user_id    BIGINT NOT NULL,
    action     TEXT   NOT NULL,
    target     TEXT   NOT NULL,
    ip         TEXT   NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX audit_log_account ON audit_log (account_id, id);

CREATE TABLE breaches (
    id                    INTEGER PRIMARY KEY,
    title                 TEXT   NOT NULL,
    description           TEXT   NOT NULL,
    data_categories       TEXT   NOT NULL, -- one per line
    consequences          TEXT   NOT NULL,
    measures              TEXT   NOT NULL,
    occurred_at           BIGINT NOT NULL, -- 0: unknown
    discovered_at         BIGINT NOT NULL,
    authority_notified_at BIGINT,
    closed_at             BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE breach_accounts (
    breach_id   BIGINT NOT NULL REFERENCES breaches (id) ON DELETE CASCADE,
    account_id  BIGINT NOT NULL, -- kept when the account goes: the register outlives it
    name        TEXT   NOT NULL, -- the account's name when recorded
    notified_at BIGINT,
    PRIMARY KEY (breach_id, account_id)
);

-- +goose Down
DROP TABLE breach_accounts;
DROP TABLE breaches;
DROP TABLE audit_log;
DROP TABLE terms_acceptances;
DROP TABLE terms_versions;
DROP TABLE login_attempts;
DROP TABLE password_resets;
DROP TABLE staff_sessions;
DROP TABLE recovery_codes;
ALTER TABLE accounts DROP COLUMN public_page_verified_at;
ALTER TABLE accounts DROP COLUMN public_page_url;
ALTER TABLE accounts DROP COLUMN require_totp;
ALTER TABLE users DROP COLUMN password_changed_at;
ALTER TABLE users DROP COLUMN locked_until;
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN totp_enabled;
ALTER TABLE users DROP COLUMN totp_secret;
