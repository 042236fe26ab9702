//! The store conformance suite (shared with PostgreSQL) against real SQLite
//! files.

use gantry_core::conformance;
use gantry_store_sqlite::SqliteStore;

macro_rules! conformance_test {
    ($name:ident) => {
        #[tokio::test]
        async fn $name() {
            let dir = tempfile::tempdir().unwrap();
            let s = SqliteStore::open_dir(dir.path()).await.unwrap();
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

/// Two stores (two pools) on the same file, as two processes would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let a = SqliteStore::open_dir(dir.path()).await.unwrap();
    let b = SqliteStore::open_dir(dir.path()).await.unwrap();
    conformance::concurrent_commits_one_wins(&a, &b).await;
    a.close().await;
    b.close().await;
}
