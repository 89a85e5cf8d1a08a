-- +goose Up
-- Tracking by consent. Events of subscribers who consented carry their subscriber ID;
-- anonymous events carry 0. campaign_stats are counters kept with every event, so
-- dashboards never count event rows.

ALTER TABLE accounts ADD COLUMN anonymous_counts BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    account_id    BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    campaign_id   BIGINT  NOT NULL,
    subscriber_id BIGINT  NOT NULL DEFAULT 0, -- 0: anonymous
    kind          TEXT    NOT NULL,           -- open, click
    url           TEXT    NOT NULL DEFAULT '',
    automated     BOOLEAN NOT NULL DEFAULT FALSE, -- looks like a link scanner
    created_at    BIGINT  NOT NULL
);
CREATE INDEX events_campaign ON events (campaign_id, kind);
CREATE INDEX events_subscriber ON events (subscriber_id);
CREATE INDEX events_time ON events (created_at);

-- One row per (campaign, subscriber, kind) seen: makes "unique" counts exact and cheap.
CREATE TABLE event_uniques (
    campaign_id   BIGINT NOT NULL,
    subscriber_id BIGINT NOT NULL,
    kind          TEXT   NOT NULL,
    PRIMARY KEY (campaign_id, subscriber_id, kind)
);

CREATE TABLE campaign_stats (
    campaign_id     BIGINT NOT NULL PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    opens           BIGINT NOT NULL DEFAULT 0,
    unique_opens    BIGINT NOT NULL DEFAULT 0,
    anon_opens      BIGINT NOT NULL DEFAULT 0,
    clicks          BIGINT NOT NULL DEFAULT 0,
    unique_clicks   BIGINT NOT NULL DEFAULT 0,
    anon_clicks     BIGINT NOT NULL DEFAULT 0,
    automated       BIGINT NOT NULL DEFAULT 0,
    unsubscribes    BIGINT NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE campaign_stats;
DROP TABLE event_uniques;
DROP TABLE events;
ALTER TABLE accounts DROP COLUMN anonymous_counts;
