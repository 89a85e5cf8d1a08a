-- +goose Up
-- Tracking writes an event per open or click; an index of events by subscriber got an
-- entry in a different page for almost every one (a WAL frame each on SQLite). The
-- people's events are found another way: erasure through event_uniques (by subscriber)
-- and the index by campaign and kind; the inactivity sweep from the index by time.
DROP INDEX events_subscriber;

-- +goose Down
CREATE INDEX events_subscriber ON events (subscriber_id);
