//! What each ASVS option of the store costs per call: a store with the subject key and nothing
//! else (the baseline) against the same store with a per-subject cap, with states encrypted, and
//! with an absolute lifetime, one call at a time, interleaved round by round so that the
//! machine's drift hits every store alike.
//!
//! ```sh
//! cargo run --release --manifest-path benches/Cargo.toml --bin asvs_cost -- --backend all
//! ```
//!
//! Per backend, in a fresh database (dropped at the end): `--users` users with 5 live sessions
//! each, then per round and per store, `--calls` of each operation: `sign_in` (a `create` for a
//! random user, who is at the cap of 5, so the capped store ends one session each time), `update`
//! (a session's state, same subject), `update_ttl` and `load`. Prints the median per operation
//! and store, and its ratio to the baseline.

#[path = "../support/mod.rs"]
mod support;

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use pavex_session::{
    SessionId,
    store::{SessionRecordRef, SessionStorageBackend},
};
use pavex_session_sea_orm::{AtCap, SeaOrmSessionStore, StateEncryption, StateKey};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use serde_json::{Value, json};
use std::{
    borrow::Cow,
    collections::HashMap,
    num::NonZeroU32,
    time::{Duration, Instant},
};
use support::{Backend, Scratch, connect};

#[derive(Parser)]
#[command(about = "Cost per call of the cap, encryption and absolute lifetime, per backend")]
struct Args {
    /// postgres, mysql, sqlite or all.
    #[arg(long, default_value = "all")]
    backend: String,
    /// Users, each with as many live sessions as the cap allows.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Calls of each operation per store and round.
    #[arg(long, default_value_t = 300)]
    calls: usize,
    /// Rounds (the stores take turns within each).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306/test")]
    mysql_url: String,
}

/// The cap of the capped store, and the sessions each user starts with.
const CAP: u32 = 5;

const OPERATIONS: [&str; 4] = ["sign_in", "update", "update_ttl", "load"];

type State = HashMap<Cow<'static, str>, Value>;

/// A state of about 300 bytes of JSON: a user (of the store `store`: the stores share the table,
/// and a capped sign-in must not end another store's sessions), a CSRF token, a cart, flags.
fn state(store: usize, user: usize, step: usize) -> State {
    serde_json::from_value(json!({
        "user_id": format!("store-{store}-user-{user}"),
        "csrf": "9f2c1e7a4b6d8f0e2a4c6e8f0a2b4d6f",
        "cart": [{"sku": "A-100", "qty": 2}, {"sku": "B-220", "qty": 1}],
        "locale": "en-GB",
        "theme": "dark",
        "step": step,
        "flags": {"beta": true, "mfa": true},
    }))
    .unwrap_or_default()
}

fn record(state: &State) -> SessionRecordRef<'_> {
    SessionRecordRef {
        state: Cow::Borrowed(state),
        ttl: Duration::from_secs(3600),
    }
}

/// One store under test and the sessions it works on.
struct Subject {
    index: usize,
    label: &'static str,
    store: SeaOrmSessionStore,
    /// Each user's live sessions, the newest last (kept in step with the cap's evictions).
    sessions: Vec<Vec<SessionId>>,
    samples: HashMap<&'static str, Vec<Duration>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.users > 0 && args.calls > 0 && args.rounds > 0,
        "counts must be positive"
    );
    for backend in Backend::parse_list(&args.backend)? {
        let scratch = Scratch::create(backend, "asvs", &args.postgres_url, &args.mysql_url).await?;
        let run = run(backend, &scratch.url, &args).await;
        scratch.destroy().await?;
        let subjects = run.with_context(|| format!("{}: the run failed", backend.name()))?;
        print(backend, &args, &subjects);
    }
    Ok(())
}

async fn run(backend: Backend, url: &str, args: &Args) -> anyhow::Result<Vec<Subject>> {
    let db = connect(url, 8).await?;
    let plain = SeaOrmSessionStore::new(db).with_subject_key("user_id");
    plain.migrate().await?;
    let cap = NonZeroU32::new(CAP).context("the cap is not zero")?;
    let (key, _) = StateKey::generate()?;
    let stores = [
        ("baseline", plain.clone()),
        (
            "cap 5",
            plain
                .clone()
                .with_max_sessions_per_subject(cap, AtCap::EndOldest),
        ),
        (
            "encrypted",
            plain
                .clone()
                .with_state_encryption(StateEncryption::new(1, key)),
        ),
        (
            "lifetime 30 d",
            plain.with_absolute_lifetime(Duration::from_secs(30 * 24 * 3600)),
        ),
    ];
    let mut subjects = Vec::new();
    for (index, (label, store)) in stores.into_iter().enumerate() {
        let store = store.checked().await?;
        // Each store its own users, so that the capped store's evictions touch only its own.
        let mut sessions = Vec::new();
        for user in 0..args.users {
            let mut ids = Vec::new();
            for _ in 0..CAP {
                let id = SessionId::random();
                store.create(&id, record(&state(index, user, 0))).await?;
                ids.push(id);
            }
            sessions.push(ids);
        }
        subjects.push(Subject {
            index,
            label,
            store,
            sessions,
            samples: HashMap::new(),
        });
    }
    eprintln!(
        "[{}] {} sessions per store; measuring",
        backend.name(),
        args.users * CAP as usize
    );
    let mut rng = StdRng::seed_from_u64(7);
    for round in 0..args.rounds {
        for subject in &mut subjects {
            for operation in OPERATIONS {
                for call in 0..args.calls {
                    let user = rng.random_range(0..args.users);
                    let elapsed =
                        one_call(subject, operation, user, round * args.calls + call).await?;
                    subject.samples.entry(operation).or_default().push(elapsed);
                }
            }
        }
        eprintln!(
            "[{}] round {} of {}",
            backend.name(),
            round + 1,
            args.rounds
        );
    }
    Ok(subjects)
}

/// One call of `operation` on a session of `user`, timed.
async fn one_call(
    subject: &mut Subject,
    operation: &str,
    user: usize,
    step: usize,
) -> anyhow::Result<Duration> {
    let store = &subject.store;
    let ids = subject
        .sessions
        .get_mut(user)
        .context("a user of the run")?;
    // The newest session: never the one a capped sign-in ended.
    let id = *ids.last().context("every user has a session")?;
    let s = state(subject.index, user, step);
    let start = Instant::now();
    match operation {
        "sign_in" => {
            let new = SessionId::random();
            store.create(&new, record(&s)).await?;
            let elapsed = start.elapsed();
            ids.push(new);
            if ids.len() > CAP as usize && subject.label == "cap 5" {
                ids.remove(0);
            }
            return Ok(elapsed);
        }
        "update" => store.update(&id, record(&s)).await?,
        "update_ttl" => store.update_ttl(&id, Duration::from_secs(3600)).await?,
        "load" => {
            if store.load(&id).await?.is_none() {
                bail!("{}: a live session did not load", subject.label);
            }
        }
        other => bail!("unknown operation {other}"),
    }
    Ok(start.elapsed())
}

fn median(samples: &[Duration]) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied()
}

fn print(backend: Backend, args: &Args, subjects: &[Subject]) {
    println!(
        "\n### {} ({} users x {CAP} sessions, {} rounds x {} calls per operation and store)\n",
        backend.name(),
        args.users,
        args.rounds,
        args.calls
    );
    let labels: Vec<&str> = subjects.iter().map(|s| s.label).collect();
    println!("| operation | {} |", labels.join(" | "));
    println!("|---|{}", "---:|".repeat(labels.len()));
    for operation in OPERATIONS {
        let baseline = subjects
            .first()
            .and_then(|s| s.samples.get(operation))
            .and_then(|v| median(v));
        let cells: Vec<String> = subjects
            .iter()
            .map(|subject| {
                let m = subject.samples.get(operation).and_then(|v| median(v));
                match (m, baseline) {
                    (Some(m), Some(b)) if subject.label != "baseline" => format!(
                        "{:.0} µs ({:.2})",
                        m.as_secs_f64() * 1e6,
                        m.as_secs_f64() / b.as_secs_f64().max(f64::EPSILON)
                    ),
                    (Some(m), _) => format!("{:.0} µs", m.as_secs_f64() * 1e6),
                    _ => "-".to_owned(),
                }
            })
            .collect();
        println!("| {operation} | {} |", cells.join(" | "));
    }
}
