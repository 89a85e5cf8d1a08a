-- +goose Up
-- Campaigns, their planned deliveries (one row per recipient) and the batches that
-- workers lease. A delivery is "sent" once a relay accepted it; after a crash, leases
-- expire and the queued deliveries of unfinished batches are sent by whoever claims them.

CREATE TABLE campaigns (
    id            INTEGER PRIMARY KEY,
    account_id    BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name          TEXT   NOT NULL,
    subject       TEXT   NOT NULL,
    from_name     TEXT   NOT NULL DEFAULT '',
    from_address  TEXT   NOT NULL,
    reply_to      TEXT   NOT NULL DEFAULT '',
    html          TEXT   NOT NULL DEFAULT '',
    text_body     TEXT   NOT NULL DEFAULT '',
    lists         TEXT   NOT NULL,           -- comma-separated list IDs
    segment       TEXT   NOT NULL DEFAULT '', -- JSON conditions
    status        TEXT   NOT NULL,
    scheduled_at  BIGINT,
    started_at    BIGINT,
    finished_at   BIGINT,
    pause_reason  TEXT   NOT NULL DEFAULT '',
    total         BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX campaigns_account ON campaigns (account_id, id);
CREATE INDEX campaigns_status ON campaigns (status);

CREATE TABLE campaign_batches (
    campaign_id BIGINT  NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    batch_no    INTEGER NOT NULL,
    lease_owner TEXT    NOT NULL DEFAULT '',
    lease_until BIGINT  NOT NULL DEFAULT 0,
    done        BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (campaign_id, batch_no)
);

CREATE TABLE deliveries (
    campaign_id   BIGINT  NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    subscriber_id BIGINT  NOT NULL,
    batch_no      INTEGER NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'queued',
    attempts      INTEGER NOT NULL DEFAULT 0,
    message_id    TEXT    NOT NULL DEFAULT '',
    error         TEXT    NOT NULL DEFAULT '',
    sent_at       BIGINT,
    PRIMARY KEY (campaign_id, subscriber_id)
);
CREATE INDEX deliveries_batch ON deliveries (campaign_id, batch_no, status);

-- +goose Down
DROP TABLE deliveries;
DROP TABLE campaign_batches;
DROP TABLE campaigns;
