-- +goose Up
-- The retention sweep looks for unconfirmed subscriptions older than a week, every
-- hour; without an index it read every subscription to find the few. Only unconfirmed
-- rows are in it, so confirmed imports and sends never touch it.
CREATE INDEX subscriptions_unconfirmed ON subscriptions (created_at) WHERE status = 'unconfirmed';

-- +goose Down
DROP INDEX subscriptions_unconfirmed;
