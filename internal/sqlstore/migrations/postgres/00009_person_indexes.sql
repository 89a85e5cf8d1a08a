-- +goose Up
-- Access and erasure find a person's rows by subscriber: index the tables keyed otherwise.
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);
CREATE INDEX event_uniques_subscriber ON event_uniques (subscriber_id);

-- +goose Down
DROP INDEX event_uniques_subscriber;
DROP INDEX deliveries_subscriber;
