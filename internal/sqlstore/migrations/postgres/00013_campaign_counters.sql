-- +goose Up
-- Sent and failed counts kept with every group commit, so progress never counts
-- delivery rows.
ALTER TABLE campaigns ADD COLUMN sent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN failed BIGINT NOT NULL DEFAULT 0;
UPDATE campaigns SET
    sent = (SELECT COUNT(*) FROM deliveries d WHERE d.campaign_id = campaigns.id AND d.status = 'sent'),
    failed = (SELECT COUNT(*) FROM deliveries d WHERE d.campaign_id = campaigns.id AND d.status = 'failed');

-- +goose Down
ALTER TABLE campaigns DROP COLUMN failed;
ALTER TABLE campaigns DROP COLUMN sent;
