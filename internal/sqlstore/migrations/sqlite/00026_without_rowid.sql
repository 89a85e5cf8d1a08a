-- +goose Up
-- Subscriptions and the ledger are found by their natural keys, (list_id, subscriber_id)
-- and (account_id, seq): as WITHOUT ROWID tables the primary key is the table, one
-- B-tree less per row written (an import writes one of each per row). Nothing refers to
-- their rowids. SQLite cannot change a table's kind in place: each is copied into a new
-- table that takes its name; the triggers on subscriptions go with the old table and
-- are created again as they were.
CREATE TABLE subscriptions_new (
    list_id         BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    subscriber_id   BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    account_id      BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status          TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    confirmed_at    BIGINT,
    unsubscribed_at BIGINT,
    PRIMARY KEY (list_id, subscriber_id)
) WITHOUT ROWID;
INSERT INTO subscriptions_new SELECT list_id, subscriber_id, account_id, status, created_at, confirmed_at, unsubscribed_at FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_new RENAME TO subscriptions;
CREATE INDEX subscriptions_subscriber ON subscriptions (subscriber_id);
-- +goose StatementBegin
CREATE TRIGGER subscriptions_counts_insert AFTER INSERT ON subscriptions BEGIN
    INSERT INTO list_counts (list_id) VALUES (NEW.list_id) ON CONFLICT (list_id) DO NOTHING;
    UPDATE list_counts SET confirmed = confirmed + (NEW.status = 'confirmed'), unconfirmed = unconfirmed + (NEW.status = 'unconfirmed'),
        unsubscribed = unsubscribed + (NEW.status = 'unsubscribed') WHERE list_id = NEW.list_id;
    INSERT INTO list_daily (list_id, day, kind, n) VALUES (NEW.list_id, NEW.created_at / 86400000000, 'subscribed', 1)
        ON CONFLICT (list_id, day, kind) DO UPDATE SET n = n + 1;
    INSERT INTO list_daily (list_id, day, kind, n) SELECT NEW.list_id, NEW.confirmed_at / 86400000000, 'confirmed', 1
        WHERE NEW.confirmed_at IS NOT NULL ON CONFLICT (list_id, day, kind) DO UPDATE SET n = n + 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER subscriptions_counts_update AFTER UPDATE ON subscriptions BEGIN
    UPDATE list_counts SET
        confirmed = confirmed + (NEW.status = 'confirmed') - (OLD.status = 'confirmed'),
        unconfirmed = unconfirmed + (NEW.status = 'unconfirmed') - (OLD.status = 'unconfirmed'),
        unsubscribed = unsubscribed + (NEW.status = 'unsubscribed') - (OLD.status = 'unsubscribed')
    WHERE list_id = NEW.list_id;
    INSERT INTO list_daily (list_id, day, kind, n) SELECT NEW.list_id, NEW.confirmed_at / 86400000000, 'confirmed', 1
        WHERE NEW.confirmed_at IS NOT NULL AND OLD.confirmed_at IS NULL ON CONFLICT (list_id, day, kind) DO UPDATE SET n = n + 1;
    INSERT INTO list_daily (list_id, day, kind, n) SELECT NEW.list_id, NEW.unsubscribed_at / 86400000000, 'unsubscribed', 1
        WHERE NEW.unsubscribed_at IS NOT NULL AND OLD.unsubscribed_at IS NULL ON CONFLICT (list_id, day, kind) DO UPDATE SET n = n + 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER subscriptions_counts_delete AFTER DELETE ON subscriptions BEGIN
    UPDATE list_counts SET confirmed = confirmed - (OLD.status = 'confirmed'), unconfirmed = unconfirmed - (OLD.status = 'unconfirmed'),
        unsubscribed = unsubscribed - (OLD.status = 'unsubscribed') WHERE list_id = OLD.list_id;
END;
-- +goose StatementEnd


CREATE TABLE ledger_new (
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
) WITHOUT ROWID;
INSERT INTO ledger_new SELECT account_id, seq, created_at, kind, person_id, list_id, source, text_version, text_sha256,
    evidence_sha256, evidence_sealed, prev_hash, hash FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;
CREATE INDEX ledger_person ON ledger (person_id, account_id, seq);

-- +goose Down
CREATE TABLE subscriptions_new (
    list_id         BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    subscriber_id   BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    account_id      BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status          TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    confirmed_at    BIGINT,
    unsubscribed_at BIGINT,
    PRIMARY KEY (list_id, subscriber_id)
);
INSERT INTO subscriptions_new SELECT list_id, subscriber_id, account_id, status, created_at, confirmed_at, unsubscribed_at FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_new RENAME TO subscriptions;
CREATE INDEX subscriptions_subscriber ON subscriptions (subscriber_id);
-- +goose StatementBegin
CREATE TRIGGER subscriptions_counts_insert AFTER INSERT ON subscriptions BEGIN
    INSERT INTO list_counts (list_id) VALUES (NEW.list_id) ON CONFLICT (list_id) DO NOTHING;
    UPDATE list_counts SET confirmed = confirmed + (NEW.status = 'confirmed'), unconfirmed = unconfirmed + (NEW.status = 'unconfirmed'),
        unsubscribed = unsubscribed + (NEW.status = 'unsubscribed') WHERE list_id = NEW.list_id;
    INSERT INTO list_daily (list_id, day, kind, n) VALUES (NEW.list_id, NEW.created_at / 86400000000, 'subscribed', 1)
        ON CONFLICT (list_id, day, kind) DO UPDATE SET n = n + 1;
    INSERT INTO list_daily (list_id, day, kind, n) SELECT NEW.list_id, NEW.confirmed_at / 86400000000, 'confirmed', 1
        WHERE NEW.confirmed_at IS NOT NULL ON CONFLICT (list_id, day, kind) DO UPDATE SET n = n + 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER subscriptions_counts_update AFTER UPDATE ON subscriptions BEGIN
    UPDATE list_counts SET
        confirmed = confirmed + (NEW.status = 'confirmed') - (OLD.status = 'confirmed'),
        unconfirmed = unconfirmed + (NEW.status = 'unconfirmed') - (OLD.status = 'unconfirmed'),
        unsubscribed = unsubscribed + (NEW.status = 'unsubscribed') - (OLD.status = 'unsubscribed')
    WHERE list_id = NEW.list_id;
    INSERT INTO list_daily (list_id, day, kind, n) SELECT NEW.list_id, NEW.confirmed_at / 86400000000, 'confirmed', 1
        WHERE NEW.confirmed_at IS NOT NULL AND OLD.confirmed_at IS NULL ON CONFLICT (list_id, day, kind) DO UPDATE SET n = n + 1;
    INSERT INTO list_daily (list_id, day, kind, n) SELECT NEW.list_id, NEW.unsubscribed_at / 86400000000, 'unsubscribed', 1
        WHERE NEW.unsubscribed_at IS NOT NULL AND OLD.unsubscribed_at IS NULL ON CONFLICT (list_id, day, kind) DO UPDATE SET n = n + 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER subscriptions_counts_delete AFTER DELETE ON subscriptions BEGIN
    UPDATE list_counts SET confirmed = confirmed - (OLD.status = 'confirmed'), unconfirmed = unconfirmed - (OLD.status = 'unconfirmed'),
        unsubscribed = unsubscribed - (OLD.status = 'unsubscribed') WHERE list_id = OLD.list_id;
END;
-- +goose StatementEnd


CREATE TABLE ledger_new (
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
INSERT INTO ledger_new SELECT account_id, seq, created_at, kind, person_id, list_id, source, text_version, text_sha256,
    evidence_sha256, evidence_sealed, prev_hash, hash FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;
CREATE INDEX ledger_person ON ledger (person_id, account_id, seq);
