-- Gantry's PostgreSQL schema: the SQLite schema (migrations 0001..0005 of
-- gantry-store-sqlite) in one step, with 64-bit integers and BYTEA.
-- Definitions are JSON documents stored as TEXT, as in SQLite.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('revision', 0);

CREATE TABLE environments (
    name    TEXT PRIMARY KEY,
    doc     TEXT NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE flags (
    key        TEXT PRIMARY KEY,
    doc        TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE segments (
    id      BIGINT PRIMARY KEY,
    doc     TEXT NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    environment TEXT,
    name        TEXT,
    prefix      TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
);

CREATE TABLE audit (
    seq         BIGINT PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target      TEXT NOT NULL,
    before      TEXT,
    after       TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);

CREATE TABLE usage (
    flag              TEXT NOT NULL,
    environment       TEXT NOT NULL,
    last_evaluated_ms BIGINT NOT NULL,
    yes               BIGINT NOT NULL,
    no                BIGINT NOT NULL,
    variants          TEXT NOT NULL,
    PRIMARY KEY (flag, environment)
);

CREATE TABLE experiments (
    key     TEXT PRIMARY KEY,
    doc     TEXT NOT NULL,
    version BIGINT NOT NULL
);

-- Appends take an EXCLUSIVE lock on this table, so ids become visible in
-- ascending order (a reader never skips a batch committed late).
CREATE TABLE event_batches (
    id          BIGSERIAL PRIMARY KEY,
    environment TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    events      TEXT NOT NULL
);

CREATE TABLE maintenance (
    environment TEXT PRIMARY KEY,
    doc         TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Ids are chosen by the writer (Mutation::InsertRelease).
CREATE TABLE releases (
    id          BIGINT PRIMARY KEY,
    app         TEXT NOT NULL,
    version     TEXT NOT NULL,
    environment TEXT NOT NULL,
    commit_sha  TEXT,
    notes       TEXT,
    released_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);

CREATE INDEX releases_by_app ON releases (app, environment, id);

CREATE TABLE release_objects (
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    doc        TEXT NOT NULL,
    state      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);

CREATE TABLE checkpoints (
    name TEXT PRIMARY KEY,
    upto BIGINT NOT NULL,
    data BYTEA NOT NULL
);
