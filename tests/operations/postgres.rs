//! Running on PostgreSQL as a deployment does: replicas that start at once
//! on one fresh database make each service's schema and migrations exactly
//! once, under an advisory lock, and all serve; and a database that
//! requires TLS is reached over TLS.

use corridor_tests::{Backend, TestDatabase};
use sqlx::Row;

use crate::process::Process;

/// The migrations every service's schema gets.
fn migrations_shipped() -> i64 {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/store/migrations/postgres"
    );
    let count = std::fs::read_dir(dir)
        .expect("the PostgreSQL migrations")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    i64::try_from(count).expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_started_at_once_on_a_fresh_postgres_database_migrate_once_and_both_serve() {
    corridor_tests::init_logs();
    let Some(db) = TestDatabase::new(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let settings = [("CORRIDOR_DATABASE_URL", db.url.as_str())];
    // Both at once, each with its own data folder (its signing key).
    let first_dir = dir.path().join("first");
    let second_dir = dir.path().join("second");
    let mut first = Process::start(&created(&first_dir), "first", &settings);
    let mut second = Process::start(&created(&second_dir), "second", &settings);
    first.ready().await;
    second.ready().await;

    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
        .await
        .expect("connect");
    let shipped = migrations_shipped();
    for schema in ["identity", "encounters", "referrals"] {
        let rows = sqlx::query(&format!(
            "SELECT version, success FROM \"{schema}\"._sqlx_migrations ORDER BY version"
        ))
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{schema}'s migrations: {e}"));
        assert_eq!(
            i64::try_from(rows.len()).expect("count"),
            shipped,
            "{schema}: every migration recorded once"
        );
        for row in &rows {
            let version: i64 = row.get("version");
            let success: bool = row.get("success");
            assert!(success, "{schema}: migration {version} succeeded");
        }
    }
    for (name, process) in [("first", &first), ("second", &second)] {
        let log = process.log();
        assert!(
            !log.contains("error"),
            "the {name} node reported an error:\n{log}"
        );
    }
}

/// `dir`, created.
fn created(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("node dir");
    dir.to_path_buf()
}

/// A managed PostgreSQL that requires TLS is reached over TLS when the URL
/// says `sslmode=require`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reaches_postgres_over_tls_when_its_url_requires_it() {
    corridor_tests::init_logs();
    let Some(db) = TestDatabase::new(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("{}?sslmode=require", db.url);
    let mut node = Process::start(dir.path(), "node", &[("CORRIDOR_DATABASE_URL", &url)]);
    node.ready().await;
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
        .await
        .expect("connect");
    let name = db.url.rsplit('/').next().expect("database name");
    let row = sqlx::query(
        "SELECT COUNT(*) FILTER (WHERE s.ssl) AS encrypted, COUNT(*) AS total \
         FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid \
         WHERE a.datname = $1 AND a.pid <> pg_backend_pid()",
    )
    .bind(name)
    .fetch_one(&mut conn)
    .await
    .expect("pg_stat_ssl");
    let encrypted: i64 = row.get("encrypted");
    let total: i64 = row.get("total");
    assert!(total > 0, "the node holds connections");
    assert_eq!(
        encrypted, total,
        "every connection of the node is encrypted"
    );
}
