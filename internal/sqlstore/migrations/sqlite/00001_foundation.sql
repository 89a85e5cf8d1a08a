-- +goose Up
-- Times are BIGINT microseconds since the Unix epoch (UTC) in both engines, so that one
-- set of SQL serves SQLite and PostgreSQL alike. Personal fields are *_enc columns:
-- AES-GCM ciphertext under the person's data key (see internal/keys).

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id                 INTEGER PRIMARY KEY,
    name               TEXT    NOT NULL,
    postal_address     TEXT    NOT NULL DEFAULT '',
    contact_email      TEXT    NOT NULL,
    privacy_policy_url TEXT    NOT NULL DEFAULT '',
    tracking_enabled   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL,
    operator      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE memberships (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role       TEXT   NOT NULL,
    PRIMARY KEY (user_id, account_id)
);
CREATE INDEX memberships_account ON memberships (account_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    account_id   BIGINT REFERENCES accounts (id) ON DELETE CASCADE, -- NULL: operator token
    name         TEXT   NOT NULL,
    prefix       TEXT   NOT NULL,
    token_hash   BLOB   NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

CREATE TABLE lists (
    id            INTEGER PRIMARY KEY,
    account_id    BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    purpose       TEXT    NOT NULL DEFAULT '',
    lawful_basis  TEXT    NOT NULL,
    double_opt_in BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    UNIQUE (account_id, name)
);

-- One row per email address on the whole instance, found by keyed hash only.
CREATE TABLE persons (
    id          INTEGER PRIMARY KEY,
    email_hash  BLOB   NOT NULL UNIQUE,
    wrapped_key BLOB   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE subscribers (
    id               INTEGER PRIMARY KEY,
    account_id       BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    person_id        BIGINT  NOT NULL REFERENCES persons (id),
    email_enc        BLOB    NOT NULL,
    name_enc         BLOB,
    attributes_enc   BLOB,
    status           TEXT    NOT NULL DEFAULT 'active',
    tracking_consent BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    UNIQUE (account_id, person_id)
);
CREATE INDEX subscribers_account ON subscribers (account_id, id);
CREATE INDEX subscribers_account_status ON subscribers (account_id, status, id);
CREATE INDEX subscribers_person ON subscribers (person_id);

CREATE TABLE subscriptions (
    list_id         BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    subscriber_id   BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    account_id      BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status          TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    confirmed_at    BIGINT,
    unsubscribed_at BIGINT,
    PRIMARY KEY (list_id, subscriber_id)
);
CREATE INDEX subscriptions_subscriber ON subscriptions (subscriber_id);

-- +goose Down
DROP TABLE subscriptions;
DROP TABLE subscribers;
DROP TABLE persons;
DROP TABLE lists;
DROP TABLE api_tokens;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE accounts;
DROP TABLE settings;
