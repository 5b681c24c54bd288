-- The account's default signing secret, for deliveries to a submission's webhook_url.
ALTER TABLE accounts ADD COLUMN webhook_secret TEXT;

CREATE TABLE webhook_endpoints (
    id                          TEXT PRIMARY KEY,
    account_id                  TEXT NOT NULL,
    url                         TEXT NOT NULL,
    events                      TEXT NOT NULL,
    thin                        BIGINT NOT NULL DEFAULT 0,
    description                 TEXT,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  BIGINT,
    status                      TEXT NOT NULL DEFAULT 'enabled',
    disabled_reason             TEXT,
    failing_since               BIGINT,
    created_at                  BIGINT NOT NULL
);

CREATE INDEX ix_webhook_endpoints_account ON webhook_endpoints (account_id, id);

-- One row per event and destination, written in the transaction of the state change (the outbox).
CREATE TABLE webhook_deliveries (
    id                TEXT PRIMARY KEY,
    event_id          TEXT NOT NULL,
    account_id        TEXT NOT NULL,
    execution_id      TEXT,
    endpoint_id       TEXT,
    url               TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    payload           TEXT NOT NULL,
    status            TEXT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  BIGINT,
    last_status_code  BIGINT,
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    completed_at      BIGINT
);

CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX ix_webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX ix_webhook_deliveries_execution ON webhook_deliveries (execution_id, id);
CREATE INDEX ix_webhook_deliveries_account ON webhook_deliveries (account_id, id);

CREATE TABLE webhook_attempts (
    id            TEXT PRIMARY KEY,
    delivery_id   TEXT NOT NULL,
    attempted_at  BIGINT NOT NULL,
    status_code   BIGINT,
    latency_ms    BIGINT NOT NULL,
    error         TEXT
);

CREATE INDEX ix_webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
