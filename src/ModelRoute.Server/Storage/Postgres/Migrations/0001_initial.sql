-- The SQLite schema in PostgreSQL types: BIGINT for unix-ms times, micro-dollars and counts (so both stores
-- read into the same row classes), TEXT for JSON rather than jsonb (jsonb refuses \u0000, which a request may carry).
CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    name            TEXT,
    balance_micros  BIGINT NOT NULL DEFAULT 0,
    held_micros     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    CHECK (held_micros >= 0 AND balance_micros - held_micros >= 0)
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    key_hash    TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    name        TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE executions (
    id                   TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL,
    model                TEXT NOT NULL,
    status               TEXT NOT NULL,
    idempotency_key      TEXT NOT NULL,
    request_hash         TEXT NOT NULL,
    input                TEXT NOT NULL,
    output               TEXT,
    artifacts            TEXT,
    error                TEXT,
    provider             TEXT,
    provider_model       TEXT,
    provider_job_id      TEXT,
    attempts             BIGINT NOT NULL DEFAULT 0,
    attempt_log          TEXT NOT NULL DEFAULT '[]',
    estimated_micros     BIGINT NOT NULL,
    held_micros          BIGINT NOT NULL,
    actual_micros        BIGINT,
    overage_micros       BIGINT NOT NULL DEFAULT 0,
    usage                TEXT,
    price                TEXT NOT NULL,
    webhook_url          TEXT,
    webhook_events       TEXT,
    metadata             TEXT,
    timeout_seconds      BIGINT NOT NULL,
    max_cost_micros      BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    started_at           BIGINT,
    completed_at         BIGINT,
    expires_at           BIGINT NOT NULL,
    next_attempt_at      BIGINT NOT NULL,
    lease_owner          TEXT,
    lease_expires_at     BIGINT,
    callback_token_hash  TEXT,
    next_poll_at         BIGINT,
    UNIQUE (account_id, idempotency_key)
);

CREATE INDEX ix_executions_account ON executions (account_id, id);
CREATE INDEX ix_executions_due ON executions (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX ix_executions_open_expiry ON executions (expires_at) WHERE status IN ('PENDING', 'PROCESSING', 'AWAITING_WEBHOOK');
CREATE INDEX ix_executions_processing_lease ON executions (lease_expires_at) WHERE status = 'PROCESSING';
CREATE INDEX ix_executions_poll ON executions (next_poll_at) WHERE status = 'AWAITING_WEBHOOK';

CREATE TABLE ledger_entries (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    execution_id    TEXT,
    kind            TEXT NOT NULL,
    amount_micros   BIGINT NOT NULL,
    balance_micros  BIGINT NOT NULL,
    held_micros     BIGINT NOT NULL,
    reference       TEXT,
    created_at      BIGINT NOT NULL
);

CREATE INDEX ix_ledger_account ON ledger_entries (account_id, id);
CREATE UNIQUE INDEX ux_ledger_credit_reference ON ledger_entries (account_id, reference) WHERE kind = 'credit' AND reference IS NOT NULL;

-- The outbox: one row per status change, written in the transaction that made it.
CREATE TABLE execution_events (
    seq           BIGSERIAL PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    execution_id  TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    type          TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE INDEX ix_events_execution ON execution_events (execution_id, seq);
