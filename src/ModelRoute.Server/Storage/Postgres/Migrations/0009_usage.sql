-- Usage (docs/api.md#usage): what ended per account, UTC day, model and key, kept at settlement in the transaction
-- that ends an execution, so that usage is read from these rows and never from the executions. day is the number of
-- days since 1970-01-01 (UTC); api_key_id is '' for executions from before keys were recorded. The rows outlive
-- the executions they count (Retention purges executions, not usage). A row is updated by every ending of its
-- account, day, model and key: the free space left in each page lets those updates stay on the page (HOT).
CREATE TABLE usage_daily (
    account_id      text NOT NULL,
    day             bigint NOT NULL,
    model           text NOT NULL,
    api_key_id      text NOT NULL,
    executions      bigint NOT NULL,
    completed       bigint NOT NULL,
    failed          bigint NOT NULL,
    cancelled       bigint NOT NULL,
    expired         bigint NOT NULL,
    charged_micros  bigint NOT NULL,
    overage_micros  bigint NOT NULL,
    PRIMARY KEY (account_id, day, model, api_key_id)
) WITH (fillfactor = 70);

-- The operator's view across accounts reads a range of days.
CREATE INDEX ix_usage_daily_day ON usage_daily (day);

-- Executions that ended before this migration, counted once, as their settlement counted them: the charge is the
-- actual cost capped at the hold, for COMPLETED only (docs/api.md#money).
INSERT INTO usage_daily (account_id, day, model, api_key_id, executions, completed, failed, cancelled, expired, charged_micros, overage_micros)
SELECT account_id, completed_at / 86400000, model, COALESCE(api_key_id, ''),
    count(*),
    count(*) FILTER (WHERE status = 'COMPLETED'),
    count(*) FILTER (WHERE status = 'FAILED'),
    count(*) FILTER (WHERE status = 'CANCELLED'),
    count(*) FILTER (WHERE status = 'EXPIRED'),
    COALESCE(sum(GREATEST(0, LEAST(actual_micros, held_micros))) FILTER (WHERE status = 'COMPLETED' AND actual_micros IS NOT NULL), 0),
    COALESCE(sum(overage_micros) FILTER (WHERE status = 'COMPLETED'), 0)
FROM executions
WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED') AND completed_at IS NOT NULL
GROUP BY account_id, completed_at / 86400000, model, COALESCE(api_key_id, '');
