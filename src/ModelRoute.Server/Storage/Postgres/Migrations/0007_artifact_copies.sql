-- A provider's result whose outputs are still being copied into the artifact store (docs/artifacts.md): the output,
-- usage and artifact sources as JSON, kept so that a retried or re-claimed copy never calls the provider again.
-- NULL for every execution that is not copying. Adding a nullable column without a default rewrites no rows.
ALTER TABLE executions ADD COLUMN pending_result text;
