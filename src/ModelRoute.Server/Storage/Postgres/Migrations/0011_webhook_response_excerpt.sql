-- The start of the receiver's response body on each attempt (docs/webhooks.md#response-excerpts): at most 1 KiB of
-- text, and whether the body went on past it. Attempts recorded before this migration have neither (null).
-- Nullable columns without a default: adding them rewrites no rows.
ALTER TABLE webhook_attempts ADD COLUMN response_body TEXT;
ALTER TABLE webhook_attempts ADD COLUMN response_body_truncated BOOLEAN;
