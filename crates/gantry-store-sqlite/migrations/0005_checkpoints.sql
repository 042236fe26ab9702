-- Derived state checkpoints (the experiment aggregates folded from the
-- events log up to batch `upto`), so a restart replays only later batches.
CREATE TABLE checkpoints (
    name TEXT PRIMARY KEY,
    upto INTEGER NOT NULL,
    data BLOB NOT NULL
);
