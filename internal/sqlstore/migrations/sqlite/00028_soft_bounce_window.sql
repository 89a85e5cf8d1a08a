-- +goose Up
-- Soft bounces count within tidings.SoftBounceWindow of the first of them: the time
-- that window began. Counts kept so far, whose times are unknown, start it now.
ALTER TABLE subscribers ADD COLUMN soft_bounce_since BIGINT;
UPDATE subscribers SET soft_bounce_since = CAST(unixepoch('subsec') * 1000000 AS INTEGER) WHERE soft_bounces > 0;

-- +goose Down
ALTER TABLE subscribers DROP COLUMN soft_bounce_since;
