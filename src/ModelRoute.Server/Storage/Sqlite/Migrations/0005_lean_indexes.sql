-- Indexes that served no query, on the two tables every execution writes several rows to (an event per status
-- change; a hold, a release and a charge): each was one more b-tree insert per row on the single writer thread.
-- execution_events is read by execution, in seq order; its unique event id was never looked up (ids are generated,
-- a timestamp and 80 random bits: IdGenerator). SQLite cannot drop a table constraint, so the table is rebuilt.
CREATE TABLE execution_events_lean (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL,
    execution_id  TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    type          TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
INSERT INTO execution_events_lean (seq, id, execution_id, account_id, type, status, created_at)
    SELECT seq, id, execution_id, account_id, type, status, created_at FROM execution_events ORDER BY seq;
DROP TABLE execution_events;
ALTER TABLE execution_events_lean RENAME TO execution_events;
CREATE INDEX ix_events_execution ON execution_events (execution_id, seq);

-- The ledger is read by account (newest first, by id) and by an account's credit reference: keyed by (account_id,
-- id) in one b-tree, where the id key, the rowid table and the account index were three.
CREATE TABLE ledger_entries_lean (
    id              TEXT NOT NULL,
    account_id      TEXT NOT NULL,
    execution_id    TEXT,
    kind            TEXT NOT NULL,
    amount_micros   INTEGER NOT NULL,
    balance_micros  INTEGER NOT NULL,
    held_micros     INTEGER NOT NULL,
    reference       TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
) WITHOUT ROWID;
INSERT INTO ledger_entries_lean (id, account_id, execution_id, kind, amount_micros, balance_micros, held_micros, reference, created_at)
    SELECT id, account_id, execution_id, kind, amount_micros, balance_micros, held_micros, reference, created_at FROM ledger_entries;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_lean RENAME TO ledger_entries;
CREATE UNIQUE INDEX ux_ledger_credit_reference ON ledger_entries (account_id, reference) WHERE kind = 'credit' AND reference IS NOT NULL;
