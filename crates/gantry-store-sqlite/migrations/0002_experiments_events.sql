-- Experiments (definitions, like flags) and the durable events log: one row
-- per ingested batch, appended in group commits; per-unit aggregates are
-- folded from it in memory.
CREATE TABLE experiments (
    key     TEXT PRIMARY KEY,
    doc     TEXT NOT NULL,
    version INTEGER NOT NULL
);

CREATE TABLE event_batches (
    id          INTEGER PRIMARY KEY,
    environment TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    events      TEXT NOT NULL
);
