//! The store conformance suite against a real PostgreSQL. Each test gets its
//! own schema (unique name), dropped at the end, so tests run in parallel.
//! `GANTRY_TEST_POSTGRES_URL` overrides the server (default
//! `postgres://postgres@127.0.0.1:5432/test`); an unreachable server fails
//! the tests, it does not skip them.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use gantry_core::conformance;
use gantry_store_postgres::PgStore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

fn url() -> String {
    std::env::var("GANTRY_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema on the test server, dropped with the value.
struct Schema {
    name: String,
}

impl Schema {
    async fn new() -> Schema {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("gantry_t_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), nanos);
        let mut conn = PgConnection::connect(&url()).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is required for these tests and is not reachable at {} ({e}); set GANTRY_TEST_POSTGRES_URL", url())
        });
        sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        Schema { name }
    }

    /// A store (its own pool) confined to this schema.
    async fn store(&self) -> PgStore {
        let options = PgConnectOptions::from_str(&url()).unwrap().options([("search_path", self.name.as_str())]);
        PgStore::connect_with(options).await.unwrap()
    }
}

/// Drops the schema even when the test failed (on a thread of its own:
/// `Drop` cannot await).
impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let mut conn = PgConnection::connect(&url()).await?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            report_leftover(&self.name);
        }
    }
}

#[allow(clippy::print_stderr)]
fn report_leftover(name: &str) {
    eprintln!("could not drop the test schema {name}");
}

macro_rules! conformance_test {
    ($name:ident) => {
        #[tokio::test]
        async fn $name() {
            let schema = Schema::new().await;
            let s = schema.store().await;
            conformance::$name(&s).await;
            s.close().await;
        }
    };
}

conformance_test!(commit_checks_versions);
conformance_test!(audit_chain_verifies);
conformance_test!(snapshot_round_trip);
conformance_test!(events_append_in_order);
conformance_test!(checkpoints_save_and_load);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_one_wins() {
    let schema = Schema::new().await;
    let (a, b) = (schema.store().await, schema.store().await);
    conformance::concurrent_commits_one_wins(&a, &b).await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn reconnecting_keeps_everything() {
    let schema = Schema::new().await;
    let s = schema.store().await;
    conformance::audit_chain_verifies(&s).await;
    let revision = gantry_core::Store::revision(&s).await.unwrap();
    s.close().await;
    // A second open runs the migrator again (a no-op) and sees the same data.
    let s = schema.store().await;
    let snap = gantry_core::Store::load(&s).await.unwrap();
    assert_eq!((snap.revision, snap.flags.len()), (revision, 5));
    s.close().await;
}
