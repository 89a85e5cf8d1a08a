-- +goose Up
-- Bounces and complaints: counted per campaign, and soft bounces per subscriber, whose
-- address is suppressed after tidings.SoftBounceLimit of them.
ALTER TABLE campaign_stats ADD COLUMN bounced BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_stats ADD COLUMN soft_bounced BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_stats ADD COLUMN complaints BIGINT NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN soft_bounces INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE subscribers DROP COLUMN soft_bounces;
ALTER TABLE campaign_stats DROP COLUMN complaints;
ALTER TABLE campaign_stats DROP COLUMN soft_bounced;
ALTER TABLE campaign_stats DROP COLUMN bounced;
