//! What the database says about the store's statements: their plans, the steps that read a
//! whole table, and how many rows a step really read.

use super::TestDb;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

/// The plan of `statement`, one line per step (`select_type | table | type | key | Extra` on
/// MySQL), as the backend explains it.
pub async fn plan(db: &TestDb, statement: &Statement) -> Vec<String> {
    let (prefix, columns): (&str, &[&str]) = match db.db_backend() {
        DbBackend::Postgres => ("EXPLAIN ", &["QUERY PLAN"]),
        DbBackend::MySql => (
            "EXPLAIN ",
            &["select_type", "table", "type", "key", "Extra"],
        ),
        _ => ("EXPLAIN QUERY PLAN ", &["detail"]),
    };
    let explain = Statement {
        sql: format!("{prefix}{}", statement.sql),
        ..statement.clone()
    };
    let rows = db.db.query_all_raw(explain).await.unwrap();
    rows.iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| {
                    row.try_get::<Option<String>>("", c)
                        .unwrap()
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

/// The steps of `plan` that read the whole `sessions` table.
pub fn full_scans(backend: DbBackend, plan: &[String]) -> Vec<String> {
    plan.iter()
        .filter(|step| match backend {
            DbBackend::Postgres => step.contains("Seq Scan"),
            DbBackend::MySql => {
                let columns: Vec<&str> = step.split(" | ").collect();
                columns.get(1) == Some(&"sessions") && columns.get(2) == Some(&"ALL")
            }
            _ => step.starts_with("SCAN sessions"),
        })
        .cloned()
        .collect()
}

/// The most rows any step of `statement`'s plan read (PostgreSQL, MariaDB), measured by running
/// it in a transaction that is rolled back, and the plan as text.
pub async fn most_rows_read_by_a_step(db: &TestDb, statement: &Statement) -> (u64, String) {
    let prefix = match db.db_backend() {
        DbBackend::Postgres => "EXPLAIN (ANALYZE, FORMAT JSON) ",
        _ => "ANALYZE FORMAT=JSON ",
    };
    let explain = Statement {
        sql: format!("{prefix}{}", statement.sql),
        ..statement.clone()
    };
    let txn = db.db.begin().await.unwrap();
    let row = txn.query_one_raw(explain).await.unwrap().expect("a plan");
    txn.rollback().await.unwrap();
    let mut most = 0;
    let text = match db.db_backend() {
        DbBackend::Postgres => {
            let plan: serde_json::Value = row.try_get_by_index(0).unwrap();
            visit(&plan, &mut |node| {
                if let (Some(r), Some(l)) = (node.get("Actual Rows"), node.get("Actual Loops")) {
                    most = most.max(r.as_f64().unwrap() as u64 * l.as_u64().unwrap());
                }
            });
            plan.to_string()
        }
        _ => {
            // MariaDB's JSON quotes a binary value as it is (not always valid JSON): read the
            // `r_rows` of each step from the text.
            let text: String = row.try_get_by_index(0).unwrap();
            for (at, key) in text.match_indices("\"r_rows\":") {
                let number: String = text[at + key.len()..]
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                most = most.max(number.parse::<f64>().unwrap() as u64);
            }
            assert!(text.contains("r_rows"), "{text}");
            text
        }
    };
    (most, text)
}

fn visit(
    value: &serde_json::Value,
    f: &mut impl FnMut(&serde_json::Map<String, serde_json::Value>),
) {
    match value {
        serde_json::Value::Object(map) => {
            f(map);
            map.values().for_each(|v| visit(v, f));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| visit(v, f)),
        _ => {}
    }
}
