-- Gantry's initial schema. Definitions are stored as JSON documents of the
-- native model; keys, versions and times are columns for lookups and checks.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('revision', 0);

CREATE TABLE environments (
    name    TEXT PRIMARY KEY,
    doc     TEXT NOT NULL,
    version INTEGER NOT NULL
);

CREATE TABLE flags (
    key        TEXT PRIMARY KEY,
    doc        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE segments (
    id      INTEGER PRIMARY KEY,
    doc     TEXT NOT NULL,
    version INTEGER NOT NULL
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
    seq         INTEGER PRIMARY KEY,
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
    last_evaluated_ms INTEGER NOT NULL,
    yes               INTEGER NOT NULL,
    no                INTEGER NOT NULL,
    variants          TEXT NOT NULL,
    PRIMARY KEY (flag, environment)
);
