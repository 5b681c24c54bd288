-- Fair share between accounts (docs/routing.md). An operator's cap on an account's executions in flight; null: none.
ALTER TABLE accounts ADD COLUMN max_concurrency INTEGER;
-- The capped accounts, which every claim locks (in id order) before it counts their executions in flight.
CREATE INDEX ix_accounts_capped ON accounts (id) WHERE max_concurrency IS NOT NULL;

-- The claim takes due work account by account, the oldest of each first: it walks the accounts with PENDING work and,
-- for each, the front of its own queue. This index serves both, and replaces the one ordered by due time alone.
DROP INDEX ix_executions_due;
CREATE INDEX ix_executions_account_due ON executions (account_id, next_attempt_at) WHERE status = 'PENDING';

-- An account's executions calling their provider, counted by the claim when accounts compete or one is capped. The
-- predicate is an expression, which the claim repeats word for word: with status = 'PROCESSING', as the predicate of
-- ix_executions_processing_lease, the planner often counted one account's calls by reading every call in lease order.
CREATE INDEX ix_executions_account_processing ON executions (account_id) WHERE (status || '') = 'PROCESSING';
