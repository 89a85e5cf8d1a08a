-- +goose Up
-- Consent: versioned texts, pending double opt-in requests, the hash-chained ledger,
-- proof messages, suppression hashes, and sending domains with DKIM keys.

CREATE TABLE consent_texts (
    account_id BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    sha256     BLOB    NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (account_id, version)
);

CREATE TABLE pending_confirmations (
    id            INTEGER PRIMARY KEY,
    account_id    BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    token_hash    BLOB   NOT NULL UNIQUE,
    lists         TEXT   NOT NULL, -- comma-separated list IDs
    text_version  INTEGER NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX pending_confirmations_expiry ON pending_confirmations (expires_at);
CREATE INDEX pending_confirmations_subscriber ON pending_confirmations (subscriber_id);

-- The ledger outlives erasure: person_id is kept as a bare number (no foreign key), and
-- evidence_sealed is deleted while evidence_sha256 stays in the chain.
CREATE TABLE ledger (
    account_id      BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    seq             BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    person_id       BIGINT  NOT NULL,
    list_id         BIGINT  NOT NULL,
    source          TEXT    NOT NULL,
    text_version    INTEGER NOT NULL,
    text_sha256     BLOB,
    evidence_sha256 BLOB    NOT NULL,
    evidence_sealed BLOB,
    prev_hash       BLOB    NOT NULL,
    hash            BLOB    NOT NULL,
    PRIMARY KEY (account_id, seq)
);
CREATE INDEX ledger_person ON ledger (person_id);

-- One row per account: the chain's head, locked by every append so that two writers
-- can never both extend the same link.
CREATE TABLE ledger_heads (
    account_id BIGINT NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    hash       BLOB   NOT NULL
);

CREATE TABLE proofs (
    id            INTEGER PRIMARY KEY,
    account_id    BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    person_id     BIGINT NOT NULL,
    subscriber_id BIGINT REFERENCES subscribers (id) ON DELETE CASCADE,
    ledger_seq    BIGINT NOT NULL,
    kind          TEXT   NOT NULL,
    data_sealed   BLOB   NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX proofs_subscriber ON proofs (subscriber_id);

-- Keyed hashes only, never addresses. account_id 0 holds instance-wide entries.
CREATE TABLE suppressions (
    account_id BIGINT NOT NULL,
    hash       BLOB   NOT NULL,
    reason     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, hash)
);

CREATE TABLE sending_domains (
    id         INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    domain     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (account_id, domain)
);

-- Private keys are sealed under the instance key. Retired keys stay (retired_at set) so
-- that old signatures, such as those on stored proof messages, can still be verified.
CREATE TABLE dkim_keys (
    id                 INTEGER PRIMARY KEY,
    domain_id          BIGINT NOT NULL REFERENCES sending_domains (id) ON DELETE CASCADE,
    selector           TEXT   NOT NULL,
    algorithm          TEXT   NOT NULL,
    private_key_sealed BLOB   NOT NULL,
    public_key         BLOB   NOT NULL,
    created_at         BIGINT NOT NULL,
    retired_at         BIGINT,
    UNIQUE (domain_id, selector)
);

-- +goose Down
DROP TABLE dkim_keys;
DROP TABLE sending_domains;
DROP TABLE suppressions;
DROP TABLE proofs;
DROP TABLE ledger_heads;
DROP TABLE ledger;
DROP TABLE pending_confirmations;
DROP TABLE consent_texts;
