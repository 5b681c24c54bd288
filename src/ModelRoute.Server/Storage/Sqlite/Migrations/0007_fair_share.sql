-- Fair share between accounts (docs/routing.md). An operator's cap on an account's executions in flight; null: none.
ALTER TABLE accounts ADD COLUMN max_concurrency INTEGER;

-- The claim takes due work account by account, the oldest of each first: it walks the accounts with PENDING work and,
-- for each, the front of its own queue. This index serves both, and replaces the one ordered by due time alone.
DROP INDEX ix_executions_due;
CREATE INDEX ix_executions_account_due ON executions (account_id, next_attempt_at) WHERE status = 'PENDING';

-- An account's executions calling their provider, counted by the claim when accounts compete or one is capped.
CREATE INDEX ix_executions_account_processing ON executions (account_id) WHERE status = 'PROCESSING';
