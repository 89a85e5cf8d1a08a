-- +goose Up
-- The hourly sweep also deletes requests older than their account's current rule, which
-- may be shorter than the rule their link was made under (expirePending). Without an
-- index on their age it read every pending request, every hour, to find the few.
CREATE INDEX pending_confirmations_created ON pending_confirmations (created_at);

-- +goose Down
DROP INDEX pending_confirmations_created;
