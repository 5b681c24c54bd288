-- Tenancy (docs/tenancy.md): an account may be disabled; keys expire, are revoked, remember their last use (kept
-- in memory and written at most once a minute) and may cap what their executions hold plus charge.
ALTER TABLE accounts ADD COLUMN disabled_at BIGINT;

-- NULL max_spend_micros: no limit. held_micros counts the open holds of a limited key's executions only;
-- spent_micros every key's charges. The CHECK is a last guard: submissions check the limit under the account's lock.
ALTER TABLE api_keys
    ADD COLUMN expires_at BIGINT,
    ADD COLUMN revoked_at BIGINT,
    ADD COLUMN last_used_at BIGINT,
    ADD COLUMN max_spend_micros BIGINT,
    ADD COLUMN held_micros BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN spent_micros BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT ck_api_keys_spend CHECK (max_spend_micros IS NULL OR held_micros + spent_micros <= max_spend_micros);

CREATE INDEX ix_api_keys_account ON api_keys (account_id, id);

-- The key an execution was submitted with, whose figures its settlement moves. NULL for rows from before.
ALTER TABLE executions ADD COLUMN api_key_id TEXT;
