-- Indexes that served no query. Every insert pays for each index of its table, and so does every state move (a new
-- row version, which PostgreSQL enters in each index), so these were a fifth of the index work per execution.
-- execution_events is read by execution, in seq order (the events stream); the global seq key and the unique event
-- id were never looked up. Event ids are generated (timestamp and 80 random bits, IdGenerator), not taken from input,
-- so no index is needed to keep them unique.
ALTER TABLE execution_events DROP CONSTRAINT execution_events_pkey;
ALTER TABLE execution_events DROP CONSTRAINT execution_events_id_key;
DROP INDEX ix_events_execution;
ALTER TABLE execution_events ADD PRIMARY KEY (execution_id, seq);

-- The ledger is read by account (newest first, by id) and by an account's credit reference; ids are generated too.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_pkey;
DROP INDEX ix_ledger_account;
ALTER TABLE ledger_entries ADD PRIMARY KEY (account_id, id);
