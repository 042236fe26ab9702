-- Release automation (issue #5): rollouts (and later schedules, alert rules,
-- triggers) as JSON documents keyed by kind and key. `doc` is the audited,
-- versioned definition; `state` is the controller's runtime state, written
-- with every audited transition and saved quietly between them.
CREATE TABLE release_objects (
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    doc        TEXT NOT NULL,
    state      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
