-- Usage (docs/api.md#usage): what ended per account, UTC day, model and key, kept at settlement in the transaction
-- that ends an execution, so that usage is read from these rows and never from the executions. day is the number of
-- days since 1970-01-01 (UTC); api_key_id is '' for executions from before keys were recorded. The rows outlive
-- the executions they count (Retention purges executions, not usage).
CREATE TABLE usage_daily (
    account_id      TEXT NOT NULL,
    day             INTEGER NOT NULL,
    model           TEXT NOT NULL,
    api_key_id      TEXT NOT NULL,
    executions      INTEGER NOT NULL,
    completed       INTEGER NOT NULL,
    failed          INTEGER NOT NULL,
    cancelled       INTEGER NOT NULL,
    expired         INTEGER NOT NULL,
    charged_micros  INTEGER NOT NULL,
    overage_micros  INTEGER NOT NULL,
    PRIMARY KEY (account_id, day, model, api_key_id)
) WITHOUT ROWID;

-- The operator's view across accounts reads a range of days.
CREATE INDEX ix_usage_daily_day ON usage_daily (day);

-- Executions that ended before this migration, counted once, as their settlement counted them: the charge is the
-- actual cost capped at the hold, for COMPLETED only (docs/api.md#money).
INSERT INTO usage_daily (account_id, day, model, api_key_id, executions, completed, failed, cancelled, expired, charged_micros, overage_micros)
SELECT account_id, completed_at / 86400000, model, COALESCE(api_key_id, ''),
    count(*),
    sum(CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END),
    sum(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END),
    sum(CASE WHEN status = 'CANCELLED' THEN 1 ELSE 0 END),
    sum(CASE WHEN status = 'EXPIRED' THEN 1 ELSE 0 END),
    sum(CASE WHEN status = 'COMPLETED' AND actual_micros IS NOT NULL THEN MAX(0, MIN(actual_micros, held_micros)) ELSE 0 END),
    sum(CASE WHEN status = 'COMPLETED' THEN overage_micros ELSE 0 END)
FROM executions
WHERE (status = 'COMPLETED' OR status = 'FAILED' OR status = 'CANCELLED' OR status = 'EXPIRED') AND completed_at IS NOT NULL
GROUP BY account_id, completed_at / 86400000, model, COALESCE(api_key_id, '');
