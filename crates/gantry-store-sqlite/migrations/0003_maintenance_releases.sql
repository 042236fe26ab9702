-- Maintenance mode per environment (a JSON document like flags) and the
-- release registry: one row per recorded version of an app in an environment.
CREATE TABLE maintenance (
    environment TEXT PRIMARY KEY,
    doc         TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE releases (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    app         TEXT NOT NULL,
    version     TEXT NOT NULL,
    environment TEXT NOT NULL,
    commit_sha  TEXT,
    notes       TEXT,
    released_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);

CREATE INDEX releases_by_app ON releases (app, environment, id);
