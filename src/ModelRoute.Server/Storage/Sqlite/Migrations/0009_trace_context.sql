-- Trace context (docs/observability.md#traces): the W3C traceparent an execution's spans are parented on, stored at
-- submission so that work resumed on another node stays in the same trace; each delivery copies its execution's.
-- NULL for rows from before.
ALTER TABLE executions ADD COLUMN trace_parent TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN trace_parent TEXT;
