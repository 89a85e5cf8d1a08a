-- +goose Up
-- Daily aggregates that outlive the events: after six months events are rolled up here
-- (no subscriber, only counts) and deleted.
CREATE TABLE event_daily (
    account_id  BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    campaign_id BIGINT NOT NULL,
    day         BIGINT NOT NULL, -- days since the Unix epoch (UTC)
    kind        TEXT   NOT NULL,
    url         TEXT   NOT NULL DEFAULT '',
    personal    BIGINT NOT NULL DEFAULT 0,
    anonymous   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, day, kind, url)
);

-- +goose Down
DROP TABLE event_daily;
