-- Tenancy (docs/tenancy.md): an account may be disabled; keys expire, are revoked, remember their last use (kept
-- in memory and written at most once a minute) and may cap what their executions hold plus charge.
ALTER TABLE accounts ADD COLUMN disabled_at INTEGER;

ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
-- NULL: no limit. held_micros counts the open holds of a limited key's executions only; spent_micros every key's charges.
ALTER TABLE api_keys ADD COLUMN max_spend_micros INTEGER;
ALTER TABLE api_keys ADD COLUMN held_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN spent_micros INTEGER NOT NULL DEFAULT 0;

CREATE INDEX ix_api_keys_account ON api_keys (account_id, id);

-- The key an execution was submitted with, whose figures its settlement moves. NULL for rows from before.
ALTER TABLE executions ADD COLUMN api_key_id TEXT;
