-- The account's event feed (GET /v1/events, docs/api.md#the-account-event-feed) reads an account's events in seq
-- order after the last one it sent. One more b-tree entry per event; each account's entries are appended at its end.
CREATE INDEX ix_events_account ON execution_events (account_id, seq);
