//! The PostgreSQL [`Store`], for several replicas sharing one database.
//! Same schema shape and semantics as the SQLite store (JSON documents as
//! TEXT with key/version columns); migrations are embedded and run on open.
//!
//! Concurrency between replicas: every commit first locks the `revision` row
//! of `meta` (`SELECT ... FOR UPDATE`), so commits are serialized across
//! processes. Under READ COMMITTED each later statement of the transaction
//! sees every commit that finished before the lock was granted: two replicas
//! never both pass a version check, and the audit chain never forks.
//! Event appends lock `event_batches` exclusively so ids become visible in
//! ascending order; usage merges lock `usage` the same way.
#![forbid(unsafe_code)]

use std::str::FromStr;

use chrono::{DateTime, Utc};
use gantry_api_types::{Environment, Release, TokenKind};
use gantry_core::audit;
use gantry_core::clock::rfc3339;
use gantry_core::{
    AuditEntry, Commit, Committed, EventBatchRow, Expect, Mutation, ReleaseObject, Snapshot, Store, StoreError, StoredEnvironment,
    StoredExperiment, StoredFlag, StoredMaintenance, StoredReleaseObject, StoredSegment, StoredToken, UsageRow,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Row};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A PostgreSQL-backed store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap_or_default()
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and migrates the
    /// database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(backend)?;
        Self::connect_with(options).await
    }

    /// Connects with explicit options (e.g. a `search_path` for one schema)
    /// and migrates.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(backend)?;
        MIGRATOR.run(&pool).await.map_err(backend)?;
        Ok(PgStore { pool })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn current_version(conn: &mut PgConnection, sql: &str, key: &str) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar::<_, i64>(sql).bind(key).fetch_optional(conn).await.map_err(backend)
}

fn check(kind: &'static str, key: &str, current: Option<i64>, expect: Expect) -> Result<(), StoreError> {
    match (expect, current) {
        (Expect::Absent, Some(_)) => Err(StoreError::AlreadyExists { kind, key: key.to_owned() }),
        (Expect::Version(_) | Expect::Exists, None) => Err(StoreError::NotFound { kind, key: key.to_owned() }),
        (Expect::Version(v), Some(c)) if v != c => Err(StoreError::VersionMismatch { kind, key: key.to_owned(), current: c }),
        _ => Ok(()),
    }
}

/// A table of versioned JSON documents keyed by one text column.
struct DocTable {
    kind: &'static str,
    table: &'static str,
    key: &'static str,
}

const ENVIRONMENTS: DocTable = DocTable { kind: "environment", table: "environments", key: "name" };
const EXPERIMENTS: DocTable = DocTable { kind: "experiment", table: "experiments", key: "key" };

/// Inserts or replaces a document after the version check; returns the new version.
async fn put_doc(conn: &mut PgConnection, t: &DocTable, key: &str, doc: String, expect: Expect) -> Result<i64, StoreError> {
    let cur = current_version(conn, &format!("SELECT version FROM {} WHERE {} = $1", t.table, t.key), key).await?;
    check(t.kind, key, cur, expect)?;
    let version = cur.unwrap_or(0) + 1;
    let sql = format!(
        "INSERT INTO {0} ({1}, doc, version) VALUES ($1, $2, $3) ON CONFLICT ({1}) DO UPDATE SET doc = excluded.doc, version = excluded.version",
        t.table, t.key
    );
    sqlx::query(&sql).bind(key).bind(doc).bind(version).execute(&mut *conn).await.map_err(backend)?;
    Ok(version)
}

/// Deletes a document after the version check.
async fn delete_doc(conn: &mut PgConnection, t: &DocTable, key: &str, expect: Expect) -> Result<i64, StoreError> {
    let cur = current_version(conn, &format!("SELECT version FROM {} WHERE {} = $1", t.table, t.key), key).await?;
    check(t.kind, key, cur, expect)?;
    sqlx::query(&format!("DELETE FROM {} WHERE {} = $1", t.table, t.key)).bind(key).execute(&mut *conn).await.map_err(backend)?;
    Ok(0)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(backend)
}

async fn apply(conn: &mut PgConnection, m: &Mutation, at: &str) -> Result<i64, StoreError> {
    Ok(match m {
        Mutation::PutFlag { flag, expect } => {
            let cur = current_version(conn, "SELECT version FROM flags WHERE key = $1", &flag.key).await?;
            check("flag", &flag.key, cur, *expect)?;
            let doc = to_json(flag)?;
            let version = cur.unwrap_or(0) + 1;
            sqlx::query(
                "INSERT INTO flags (key, doc, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (key) DO UPDATE SET doc = excluded.doc, version = excluded.version, updated_at = excluded.updated_at",
            )
            .bind(&flag.key)
            .bind(doc)
            .bind(version)
            .bind(at)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
            version
        }
        Mutation::DeleteFlag { key, expect } => {
            let cur = current_version(conn, "SELECT version FROM flags WHERE key = $1", key).await?;
            check("flag", key, cur, *expect)?;
            sqlx::query("DELETE FROM flags WHERE key = $1").bind(key).execute(&mut *conn).await.map_err(backend)?;
            0
        }
        Mutation::PutSegment { segment, expect } => {
            let key = segment.id.to_string();
            let cur = sqlx::query_scalar::<_, i64>("SELECT version FROM segments WHERE id = $1")
                .bind(i64::from(segment.id))
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
            check("segment", &key, cur, *expect)?;
            let version = cur.unwrap_or(0) + 1;
            sqlx::query("INSERT INTO segments (id, doc, version) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, version = excluded.version")
                .bind(i64::from(segment.id))
                .bind(to_json(segment)?)
                .bind(version)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            version
        }
        Mutation::DeleteSegment { id, expect } => {
            let cur = sqlx::query_scalar::<_, i64>("SELECT version FROM segments WHERE id = $1")
                .bind(i64::from(*id))
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
            check("segment", &id.to_string(), cur, *expect)?;
            sqlx::query("DELETE FROM segments WHERE id = $1").bind(i64::from(*id)).execute(&mut *conn).await.map_err(backend)?;
            0
        }
        Mutation::PutEnvironment { environment, expect } => {
            put_doc(conn, &ENVIRONMENTS, &environment.name, to_json(environment)?, *expect).await?
        }
        Mutation::DeleteEnvironment { name, expect } => delete_doc(conn, &ENVIRONMENTS, name, *expect).await?,
        Mutation::PutExperiment { experiment, expect } => {
            put_doc(conn, &EXPERIMENTS, &experiment.key, to_json(experiment)?, *expect).await?
        }
        Mutation::DeleteExperiment { key, expect } => delete_doc(conn, &EXPERIMENTS, key, *expect).await?,
        Mutation::PutReleaseObject { object, expect } => {
            let cur = sqlx::query_scalar::<_, i64>("SELECT version FROM release_objects WHERE kind = $1 AND key = $2")
                .bind(&object.kind)
                .bind(&object.key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
            check("release object", &object.key, cur, *expect)?;
            let version = cur.unwrap_or(0) + 1;
            sqlx::query(
                "INSERT INTO release_objects (kind, key, doc, state, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc, state = excluded.state, version = excluded.version,
                   updated_at = excluded.updated_at",
            )
            .bind(&object.kind)
            .bind(&object.key)
            .bind(object.doc.to_string())
            .bind(object.state.to_string())
            .bind(version)
            .bind(at)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
            version
        }
        Mutation::DeleteReleaseObject { kind, key, expect } => {
            let cur = sqlx::query_scalar::<_, i64>("SELECT version FROM release_objects WHERE kind = $1 AND key = $2")
                .bind(kind)
                .bind(key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
            check("release object", key, cur, *expect)?;
            sqlx::query("DELETE FROM release_objects WHERE kind = $1 AND key = $2")
                .bind(kind)
                .bind(key)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            0
        }
        Mutation::InsertToken(t) => {
            sqlx::query(
                "INSERT INTO tokens (id, kind, environment, name, prefix, secret_hash, created_at, expires_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&t.id)
            .bind(t.kind.as_str())
            .bind(&t.environment)
            .bind(&t.name)
            .bind(&t.prefix)
            .bind(&t.secret_hash)
            .bind(rfc3339(t.created_at))
            .bind(t.expires_at.map(rfc3339))
            .bind(t.revoked_at.map(rfc3339))
            .execute(&mut *conn)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::AlreadyExists { kind: "token", key: t.id.clone() },
                _ => backend(e),
            })?;
            1
        }
        Mutation::RevokeToken { id } => {
            let n = sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(at)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(backend)?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound { kind: "token", key: id.clone() });
            }
            1
        }
        Mutation::PutMaintenance { environment, maintenance, expect } => {
            let cur = current_version(conn, "SELECT version FROM maintenance WHERE environment = $1", environment).await?;
            check("maintenance", environment, cur, *expect)?;
            let version = cur.unwrap_or(0) + 1;
            sqlx::query(
                "INSERT INTO maintenance (environment, doc, version, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (environment) DO UPDATE SET doc = excluded.doc, version = excluded.version, updated_at = excluded.updated_at",
            )
            .bind(environment)
            .bind(to_json(maintenance)?)
            .bind(version)
            .bind(at)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
            version
        }
        Mutation::InsertRelease(r) => sqlx::query_scalar::<_, i64>(
            "INSERT INTO releases (id, app, version, environment, commit_sha, notes, released_at, recorded_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(r.id)
        .bind(&r.app)
        .bind(&r.version)
        .bind(&r.environment)
        .bind(&r.commit)
        .bind(&r.notes)
        .bind(&r.released_at)
        .bind(&r.recorded_by)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::AlreadyExists { kind: "release", key: r.id.to_string() },
            _ => backend(e),
        })?,
    })
}

fn audit_from_row(r: &sqlx::postgres::PgRow) -> Result<AuditEntry, StoreError> {
    let json = |col: &str| -> Result<Option<serde_json::Value>, StoreError> {
        let s: Option<String> = r.try_get(col).map_err(backend)?;
        s.map(|s| serde_json::from_str(&s).map_err(backend)).transpose()
    };
    Ok(AuditEntry {
        seq: r.try_get("seq").map_err(backend)?,
        at: r.try_get("at").map_err(backend)?,
        actor: r.try_get("actor").map_err(backend)?,
        action: r.try_get("action").map_err(backend)?,
        target_kind: r.try_get("target_kind").map_err(backend)?,
        target: r.try_get("target").map_err(backend)?,
        before: json("before")?,
        after: json("after")?,
        prev_hash: r.try_get("prev_hash").map_err(backend)?,
        hash: r.try_get("hash").map_err(backend)?,
    })
}

impl Store for PgStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let revision: i64 =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'revision'").fetch_one(&mut *conn).await.map_err(backend)?;
        let mut snap = Snapshot { revision, ..Default::default() };
        for r in sqlx::query("SELECT doc, version FROM environments").fetch_all(&mut *conn).await.map_err(backend)? {
            let doc: String = r.try_get("doc").map_err(backend)?;
            let environment: Environment = serde_json::from_str(&doc).map_err(backend)?;
            snap.environments.push(StoredEnvironment { environment, version: r.try_get("version").map_err(backend)? });
        }
        snap.environments
            .sort_by(|a, b| a.environment.sort_order.cmp(&b.environment.sort_order).then(a.environment.name.cmp(&b.environment.name)));
        for r in sqlx::query("SELECT doc, version, created_at, updated_at FROM flags ORDER BY key")
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?
        {
            let doc: String = r.try_get("doc").map_err(backend)?;
            snap.flags.push(StoredFlag {
                flag: serde_json::from_str(&doc).map_err(backend)?,
                version: r.try_get("version").map_err(backend)?,
                created_at: parse_time(&r.try_get::<String, _>("created_at").map_err(backend)?),
                updated_at: parse_time(&r.try_get::<String, _>("updated_at").map_err(backend)?),
            });
        }
        for r in sqlx::query("SELECT doc, version FROM segments ORDER BY id").fetch_all(&mut *conn).await.map_err(backend)? {
            let doc: String = r.try_get("doc").map_err(backend)?;
            snap.segments.push(StoredSegment {
                segment: serde_json::from_str(&doc).map_err(backend)?,
                version: r.try_get("version").map_err(backend)?,
            });
        }
        for r in sqlx::query("SELECT * FROM tokens ORDER BY created_at, id").fetch_all(&mut *conn).await.map_err(backend)? {
            let kind: String = r.try_get("kind").map_err(backend)?;
            let kind = match kind.as_str() {
                "admin" => TokenKind::Admin,
                "server" => TokenKind::Server,
                _ => TokenKind::Client,
            };
            let opt_time = |col: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
                Ok(r.try_get::<Option<String>, _>(col).map_err(backend)?.map(|s| parse_time(&s)))
            };
            snap.tokens.push(StoredToken {
                id: r.try_get("id").map_err(backend)?,
                kind,
                environment: r.try_get("environment").map_err(backend)?,
                name: r.try_get("name").map_err(backend)?,
                prefix: r.try_get("prefix").map_err(backend)?,
                secret_hash: r.try_get("secret_hash").map_err(backend)?,
                created_at: parse_time(&r.try_get::<String, _>("created_at").map_err(backend)?),
                expires_at: opt_time("expires_at")?,
                revoked_at: opt_time("revoked_at")?,
            });
        }
        for r in sqlx::query("SELECT doc, version FROM experiments ORDER BY key").fetch_all(&mut *conn).await.map_err(backend)? {
            let doc: String = r.try_get("doc").map_err(backend)?;
            snap.experiments.push(StoredExperiment {
                experiment: serde_json::from_str(&doc).map_err(backend)?,
                version: r.try_get("version").map_err(backend)?,
            });
        }
        for r in sqlx::query("SELECT environment, doc, version, updated_at FROM maintenance ORDER BY environment")
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?
        {
            let doc: String = r.try_get("doc").map_err(backend)?;
            snap.maintenance.push(StoredMaintenance {
                environment: r.try_get("environment").map_err(backend)?,
                maintenance: serde_json::from_str(&doc).map_err(backend)?,
                version: r.try_get("version").map_err(backend)?,
                updated_at: parse_time(&r.try_get::<String, _>("updated_at").map_err(backend)?),
            });
        }
        for r in sqlx::query("SELECT * FROM releases ORDER BY id").fetch_all(&mut *conn).await.map_err(backend)? {
            snap.releases.push(Release {
                id: r.try_get("id").map_err(backend)?,
                app: r.try_get("app").map_err(backend)?,
                version: r.try_get("version").map_err(backend)?,
                environment: r.try_get("environment").map_err(backend)?,
                commit: r.try_get("commit_sha").map_err(backend)?,
                notes: r.try_get("notes").map_err(backend)?,
                released_at: r.try_get("released_at").map_err(backend)?,
                recorded_by: r.try_get("recorded_by").map_err(backend)?,
            });
        }
        Ok(snap)
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'revision'").fetch_one(&self.pool).await.map_err(backend)
    }

    async fn commit(&self, commit: Commit) -> Result<Committed, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Serializes commits across connections and replicas (see the module docs).
        sqlx::query("SELECT value FROM meta WHERE key = 'revision' FOR UPDATE").execute(&mut *tx).await.map_err(backend)?;
        let at = rfc3339(commit.at);
        let mut versions = Vec::with_capacity(commit.mutations.len());
        for m in &commit.mutations {
            versions.push(apply(&mut tx, m, &at).await?);
        }
        let revision: i64 = sqlx::query_scalar("UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *tx).await.map_err(backend)?;
        let (mut seq, mut prev) = last.unwrap_or((0, audit::GENESIS.to_owned()));
        for a in &commit.audit {
            seq += 1;
            let hash =
                audit::entry_hash(&prev, seq, &at, &a.actor, &a.action, &a.target_kind, &a.target, a.before.as_ref(), a.after.as_ref());
            sqlx::query(
                "INSERT INTO audit (seq, at, actor, action, target_kind, target, before, after, prev_hash, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(seq)
            .bind(&at)
            .bind(&a.actor)
            .bind(&a.action)
            .bind(&a.target_kind)
            .bind(&a.target)
            .bind(a.before.as_ref().map(|v| v.to_string()))
            .bind(a.after.as_ref().map(|v| v.to_string()))
            .bind(&prev)
            .bind(&hash)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            prev = hash;
        }
        tx.commit().await.map_err(backend)?;
        Ok(Committed { revision, versions })
    }

    async fn audit_page(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit WHERE seq < $1 ORDER BY seq DESC LIMIT $2")
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_all(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit ORDER BY seq").fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn add_usage(&self, rows: Vec<UsageRow>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Read-merge-write of the variants: one merger at a time.
        sqlx::query("LOCK TABLE usage IN EXCLUSIVE MODE").execute(&mut *tx).await.map_err(backend)?;
        for r in rows {
            let existing: Option<String> = sqlx::query_scalar("SELECT variants FROM usage WHERE flag = $1 AND environment = $2")
                .bind(&r.flag)
                .bind(&r.environment)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            let mut variants: std::collections::BTreeMap<String, u64> =
                existing.as_deref().map(serde_json::from_str).transpose().map_err(backend)?.unwrap_or_default();
            for (k, v) in &r.variants {
                *variants.entry(k.clone()).or_default() += v;
            }
            sqlx::query(
                "INSERT INTO usage (flag, environment, last_evaluated_ms, yes, no, variants) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (flag, environment) DO UPDATE SET
                   last_evaluated_ms = GREATEST(usage.last_evaluated_ms, excluded.last_evaluated_ms),
                   yes = usage.yes + excluded.yes, no = usage.no + excluded.no, variants = excluded.variants",
            )
            .bind(&r.flag)
            .bind(&r.environment)
            .bind(r.last_evaluated_ms)
            .bind(r.yes as i64)
            .bind(r.no as i64)
            .bind(to_json(&variants)?)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn usage(&self) -> Result<Vec<UsageRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM usage ORDER BY flag, environment").fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter()
            .map(|r| {
                let variants: String = r.try_get("variants").map_err(backend)?;
                Ok(UsageRow {
                    flag: r.try_get("flag").map_err(backend)?,
                    environment: r.try_get("environment").map_err(backend)?,
                    last_evaluated_ms: r.try_get("last_evaluated_ms").map_err(backend)?,
                    yes: r.try_get::<i64, _>("yes").map_err(backend)? as u64,
                    no: r.try_get::<i64, _>("no").map_err(backend)? as u64,
                    variants: serde_json::from_str(&variants).map_err(backend)?,
                })
            })
            .collect()
    }

    async fn append_events(&self, batches: Vec<EventBatchRow>) -> Result<Vec<i64>, StoreError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // One appender at a time, so ids commit (and become visible to
        // `events_after`) in ascending order.
        sqlx::query("LOCK TABLE event_batches IN EXCLUSIVE MODE").execute(&mut *tx).await.map_err(backend)?;
        let mut ids = Vec::with_capacity(batches.len());
        for b in &batches {
            let id: i64 =
                sqlx::query_scalar("INSERT INTO event_batches (environment, received_ms, events) VALUES ($1, $2, $3) RETURNING id")
                    .bind(&b.environment)
                    .bind(b.received_ms)
                    .bind(&b.events)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend)?;
            ids.push(id);
        }
        tx.commit().await.map_err(backend)?;
        Ok(ids)
    }

    async fn save_checkpoint(&self, name: &str, upto: i64, data: Vec<u8>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO checkpoints (name, upto, data) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET upto = excluded.upto, data = excluded.data",
        )
        .bind(name)
        .bind(upto)
        .bind(data)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT upto, data FROM checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| Ok((r.try_get("upto").map_err(backend)?, r.try_get("data").map_err(backend)?))).transpose()
    }

    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<EventBatchRow>, StoreError> {
        let rows = sqlx::query("SELECT id, environment, received_ms, events FROM event_batches WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(EventBatchRow {
                    id: r.try_get("id").map_err(backend)?,
                    environment: r.try_get("environment").map_err(backend)?,
                    received_ms: r.try_get("received_ms").map_err(backend)?,
                    events: r.try_get("events").map_err(backend)?,
                })
            })
            .collect()
    }

    async fn release_objects(&self, kind: &str) -> Result<Vec<StoredReleaseObject>, StoreError> {
        let rows = sqlx::query("SELECT * FROM release_objects WHERE kind = $1 ORDER BY key")
            .bind(kind)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let json = |col: &str| -> Result<serde_json::Value, StoreError> {
                    let s: String = r.try_get(col).map_err(backend)?;
                    serde_json::from_str(&s).map_err(backend)
                };
                Ok(StoredReleaseObject {
                    object: ReleaseObject {
                        kind: r.try_get("kind").map_err(backend)?,
                        key: r.try_get("key").map_err(backend)?,
                        doc: json("doc")?,
                        state: json("state")?,
                    },
                    version: r.try_get("version").map_err(backend)?,
                    created_at: parse_time(&r.try_get::<String, _>("created_at").map_err(backend)?),
                    updated_at: parse_time(&r.try_get::<String, _>("updated_at").map_err(backend)?),
                })
            })
            .collect()
    }

    async fn save_release_state(&self, kind: &str, key: &str, state: serde_json::Value) -> Result<(), StoreError> {
        let n = sqlx::query("UPDATE release_objects SET state = $1 WHERE kind = $2 AND key = $3")
            .bind(state.to_string())
            .bind(kind)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { kind: "release object", key: key.to_owned() });
        }
        Ok(())
    }
}
