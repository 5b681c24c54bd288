-- The account's default signing secret, for deliveries to a submission's webhook_url.
ALTER TABLE accounts ADD COLUMN webhook_secret TEXT;

CREATE TABLE webhook_endpoints (
    id                          TEXT PRIMARY KEY,
    account_id                  TEXT NOT NULL,
    url                         TEXT NOT NULL,
    events                      TEXT NOT NULL,
    thin                        INTEGER NOT NULL DEFAULT 0,
    description                 TEXT,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  INTEGER,
    status                      TEXT NOT NULL DEFAULT 'enabled',
    disabled_reason             TEXT,
    failing_since               INTEGER,
    created_at                  INTEGER NOT NULL
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
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    last_status_code  INTEGER,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    completed_at      INTEGER
);

CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX ix_webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX ix_webhook_deliveries_execution ON webhook_deliveries (execution_id, id);
CREATE INDEX ix_webhook_deliveries_account ON webhook_deliveries (account_id, id);

CREATE TABLE webhook_attempts (
    id            TEXT PRIMARY KEY,
    delivery_id   TEXT NOT NULL,
    attempted_at  INTEGER NOT NULL,
    status_code   INTEGER,
    latency_ms    INTEGER NOT NULL,
    error         TEXT
);

CREATE INDEX ix_webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
