-- Finding ended executions older than the retention period without scanning the table.
CREATE INDEX ix_executions_ended ON executions (completed_at) WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED');
