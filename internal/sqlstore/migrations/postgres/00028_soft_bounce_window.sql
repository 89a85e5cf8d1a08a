-- +goose Up
-- Soft bounces count within tidings.SoftBounceWindow of the first of them: the time
-- that window began. Counts kept so far, whose times are unknown, start it now.
ALTER TABLE subscribers ADD COLUMN soft_bounce_since BIGINT;
UPDATE subscribers SET soft_bounce_since = (extract(epoch FROM now()) * 1000000)::BIGINT WHERE soft_bounces > 0;

-- +goose Down
ALTER TABLE subscribers DROP COLUMN soft_bounce_since;
