//! Model-based test: random sequences of operations run in lockstep against our store and
//! against `pavex_session_memory_store::InMemorySessionStore`, the reference semantics. Every
//! result must match: the same `Ok`/`Err` variant, the same loaded state, TTLs within a
//! tolerance, the same number of expired records deleted.
//!
//! Ids come from a pool of four, so they collide; TTLs are zero (expired at once), short (they
//! expire when the sequence sleeps) or long. CI runs `PSS_MODEL_CASES` sequences (default 12)
//! per backend; set it higher for a longer hunt, and `PSS_MODEL_SEED` to replay a failure: a
//! failure prints its seed and the whole sequence up to the mismatch.

mod common;

use common::{Backend, store_on};
use pavex_session::{
    SessionId,
    store::{
        SessionRecordRef, SessionStorageBackend,
        errors::{ChangeIdError, CreateError, DeleteError, UpdateError, UpdateTtlError},
    },
};
use pavex_session_memory_store::InMemorySessionStore;
use pavex_session_sea_orm::entity::sessions;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use std::{borrow::Cow, collections::HashMap, fmt, num::NonZeroUsize, time::Duration};

type State = HashMap<Cow<'static, str>, Value>;

const OPS_PER_CASE: usize = 30;
/// Short TTLs outlive any run of operations between two sleeps (even a slow one on a loaded
/// machine), and not a sleep.
const SHORT: Duration = Duration::from_secs(2);
const SLEEP: Duration = Duration::from_millis(2500);
const LONG: Duration = Duration::from_secs(3600);
/// Two clocks (the database's and the process's) measure one TTL: allow for the gap, plus the
/// time our statement took (the reference sets its deadline only after ours returned).
const TTL_TOLERANCE: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
enum Op {
    Create(usize, u8, Duration),
    Update(usize, u8, Duration),
    UpdateTtl(usize, Duration),
    Load(usize),
    Delete(usize),
    ChangeId(usize, usize),
    DeleteExpired(Option<NonZeroUsize>),
    Sleep,
}

/// What an operation returned, in a form both stores can be compared on.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Ok,
    DuplicateId,
    UnknownId,
    Loaded(Option<(State, Duration)>),
    Deleted(usize),
    Failed(String),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

fn random_op(rng: &mut fastrand::Rng) -> Op {
    let id = |rng: &mut fastrand::Rng| rng.usize(0..4);
    let ttl = |rng: &mut fastrand::Rng| match rng.u8(0..10) {
        0..=1 => Duration::ZERO,
        2..=4 => SHORT,
        _ => LONG,
    };
    match rng.u8(0..100) {
        0..=19 => Op::Create(id(rng), rng.u8(0..3), ttl(rng)),
        20..=34 => Op::Update(id(rng), rng.u8(0..3), ttl(rng)),
        35..=44 => Op::UpdateTtl(id(rng), ttl(rng)),
        45..=64 => Op::Load(id(rng)),
        65..=74 => Op::Delete(id(rng)),
        75..=89 => Op::ChangeId(id(rng), id(rng)),
        90..=97 => Op::DeleteExpired(NonZeroUsize::new(rng.usize(0..3))),
        _ => Op::Sleep,
    }
}

fn state_for(n: u8) -> State {
    let value = match n {
        0 => json!({}),
        1 => json!({"user_id": 7, "roles": ["admin"]}),
        _ => json!({"cart": {"items": [1, 2, 3]}, "note": "\"quoted\" ✓"}),
    };
    serde_json::from_value(value).unwrap()
}

async fn apply(store: &dyn SessionStorageBackend, ids: &[SessionId; 4], op: &Op) -> Outcome {
    let record = |n: u8, ttl: Duration| (state_for(n), ttl);
    match op {
        Op::Create(i, n, ttl) => {
            let (state, ttl) = record(*n, *ttl);
            let r = SessionRecordRef {
                state: Cow::Owned(state),
                ttl,
            };
            match store.create(&ids[*i], r).await {
                Ok(()) => Outcome::Ok,
                Err(CreateError::DuplicateId(_)) => Outcome::DuplicateId,
                Err(e) => Outcome::Failed(format!("{e:?}")),
            }
        }
        Op::Update(i, n, ttl) => {
            let (state, ttl) = record(*n, *ttl);
            let r = SessionRecordRef {
                state: Cow::Owned(state),
                ttl,
            };
            match store.update(&ids[*i], r).await {
                Ok(()) => Outcome::Ok,
                Err(UpdateError::UnknownIdError(_)) => Outcome::UnknownId,
                Err(e) => Outcome::Failed(format!("{e:?}")),
            }
        }
        Op::UpdateTtl(i, ttl) => match store.update_ttl(&ids[*i], *ttl).await {
            Ok(()) => Outcome::Ok,
            Err(UpdateTtlError::UnknownId(_)) => Outcome::UnknownId,
            Err(e) => Outcome::Failed(format!("{e:?}")),
        },
        Op::Load(i) => match store.load(&ids[*i]).await {
            Ok(loaded) => Outcome::Loaded(loaded.map(|r| (r.state, r.ttl))),
            Err(e) => Outcome::Failed(format!("{e:?}")),
        },
        Op::Delete(i) => match store.delete(&ids[*i]).await {
            Ok(()) => Outcome::Ok,
            Err(DeleteError::UnknownId(_)) => Outcome::UnknownId,
            Err(e) => Outcome::Failed(format!("{e:?}")),
        },
        Op::ChangeId(old, new) => match store.change_id(&ids[*old], &ids[*new]).await {
            Ok(()) => Outcome::Ok,
            Err(ChangeIdError::DuplicateId(_)) => Outcome::DuplicateId,
            Err(ChangeIdError::UnknownId(_)) => Outcome::UnknownId,
            Err(e) => Outcome::Failed(format!("{e:?}")),
        },
        Op::DeleteExpired(batch) => match store.delete_expired(*batch).await {
            Ok(n) => Outcome::Deleted(n),
            Err(e) => Outcome::Failed(format!("{e:?}")),
        },
        Op::Sleep => {
            tokio::time::sleep(SLEEP).await;
            Outcome::Ok
        }
    }
}

fn agree(ours: &Outcome, reference: &Outcome, slowest_op: Duration) -> bool {
    match (ours, reference) {
        (Outcome::Loaded(Some((a, ta))), Outcome::Loaded(Some((b, tb)))) => {
            a == b && ta.abs_diff(*tb) <= TTL_TOLERANCE + 2 * slowest_op
        }
        // The reference store drops an expired record as a side effect of a failed `delete` or
        // `change_id` on it (it removes, then finds it stale); ours changes nothing on a failed
        // operation, as the contract says. Expired records are invisible either way, so only
        // `delete_expired`'s count can tell: ours may count those records too.
        (Outcome::Deleted(a), Outcome::Deleted(b)) => a >= b,
        (a, b) => a == b,
    }
}

fn cases() -> usize {
    std::env::var("PSS_MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12)
}

fn base_seed() -> u64 {
    std::env::var("PSS_MODEL_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

async fn random_sequences_match_the_in_memory_store(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let seed = base_seed();
    let mut operations = 0;
    for case in 0..cases() as u64 {
        let case_seed = seed.wrapping_add(case);
        let mut rng = fastrand::Rng::with_seed(case_seed);
        sessions::Entity::delete_many().exec(&db.db).await.unwrap();
        let reference = InMemorySessionStore::new();
        let ids: [SessionId; 4] = std::array::from_fn(|_| SessionId::random());
        let (mut history, mut slowest_op) = (Vec::new(), Duration::ZERO);
        for _ in 0..OPS_PER_CASE {
            let op = random_op(&mut rng);
            let started = std::time::Instant::now();
            let ours = apply(&store, &ids, &op).await;
            if !matches!(op, Op::Sleep) {
                slowest_op = slowest_op.max(started.elapsed());
            }
            let theirs = apply(&reference, &ids, &op).await;
            history.push(format!("{op} -> {ours:?}"));
            operations += 1;
            assert!(
                agree(&ours, &theirs, slowest_op),
                "{backend:?}: PSS_MODEL_SEED={case_seed} disagrees with the reference store \
                 on the last of:\n  {}\nours:      {ours:?}\nreference: {theirs:?}",
                history.join("\n  ")
            );
            // Which expired records a bounded `delete_expired` removes is not the reference's
            // business (ours takes the oldest, the reference any): once the two have kept
            // different ones, a later `create` on one of those ids overwrites a record in one
            // store and adds one in the other, and their counts part. Both drop the rest, so
            // they hold the same records again. The hunt below checks the order exactly.
            if matches!(op, Op::DeleteExpired(Some(_))) {
                store.delete_expired(None).await.unwrap();
                reference.delete_expired(None).await.unwrap();
                history.push("(both drop their remaining expired records)".to_owned());
            }
        }
    }
    eprintln!(
        "{backend:?}: {} sequences, {operations} operations, seed {seed}",
        cases()
    );
}

on_every_backend!(random_sequences_match_the_in_memory_store);

/// The fast hunt: the same operations, plus `Expire(i)`, which moves a live record's deadline
/// into the past with SQL, so that no sequence sleeps. Each result is checked against
/// [`Reference`], a model of the contract that `reference_agrees_with_the_in_memory_store`
/// checks in lockstep against `InMemorySessionStore`. `PSS_HUNT_OPS` operations per backend
/// (default 10 000; `PSS_MODEL_SEED` replays), in sequences of `OPS_PER_CASE`.
mod hunt {
    use super::*;
    use pavex_session_sea_orm::SeaOrmSessionStore;
    use sea_orm::{ColumnTrait, QueryFilter, sea_query::Expr};

    /// Hunt TTLs are long: a record expires only by `Expire`.
    const TTLS: [Duration; 2] = [LONG, Duration::from_secs(7200)];
    /// Expired deadlines are `EXPIRED_AT + n`, in the order records expired (the first
    /// expired is the oldest), long ago.
    const EXPIRED_AT: i64 = 1_000_000_000;

    #[derive(Debug, Clone)]
    pub(super) enum HuntOp {
        Create(usize, u8, usize),
        Update(usize, u8, usize),
        UpdateTtl(usize, usize),
        Load(usize),
        Delete(usize),
        ChangeId(usize, usize),
        DeleteExpired(Option<NonZeroUsize>),
        Expire(usize),
    }

    pub(super) fn random_hunt_op(rng: &mut fastrand::Rng, expire: bool) -> HuntOp {
        let id = |rng: &mut fastrand::Rng| rng.usize(0..4);
        let ttl = |rng: &mut fastrand::Rng| rng.usize(0..TTLS.len());
        match rng.u8(0..100) {
            0..=17 => HuntOp::Create(id(rng), rng.u8(0..3), ttl(rng)),
            18..=31 => HuntOp::Update(id(rng), rng.u8(0..3), ttl(rng)),
            32..=41 => HuntOp::UpdateTtl(id(rng), ttl(rng)),
            42..=59 => HuntOp::Load(id(rng)),
            60..=69 => HuntOp::Delete(id(rng)),
            70..=83 => HuntOp::ChangeId(id(rng), id(rng)),
            84..=89 if expire => HuntOp::DeleteExpired(NonZeroUsize::new(rng.usize(0..3))),
            _ if expire => HuntOp::Expire(id(rng)),
            _ => HuntOp::Load(id(rng)),
        }
    }

    /// A record of the model: its state, the TTL it was last given, and, once expired, its
    /// place in the order of expiry.
    #[derive(Debug, Clone)]
    struct Record {
        state: u8,
        ttl: Duration,
        expired: Option<u64>,
    }

    /// The contract, for the hunt's operations: a map from id to record.
    #[derive(Debug, Default)]
    pub(super) struct Reference {
        records: [Option<Record>; 4],
        expiries: u64,
    }

    impl Reference {
        fn live(&self, i: usize) -> Option<&Record> {
            self.records[i].as_ref().filter(|r| r.expired.is_none())
        }

        pub(super) fn apply(&mut self, op: &HuntOp) -> Outcome {
            match *op {
                HuntOp::Create(i, state, ttl) => match self.live(i) {
                    Some(_) => Outcome::DuplicateId,
                    None => {
                        let ttl = TTLS[ttl];
                        self.records[i] = Some(Record {
                            state,
                            ttl,
                            expired: None,
                        });
                        Outcome::Ok
                    }
                },
                HuntOp::Update(i, state, ttl) => match self.live(i) {
                    Some(_) => {
                        let ttl = TTLS[ttl];
                        self.records[i] = Some(Record {
                            state,
                            ttl,
                            expired: None,
                        });
                        Outcome::Ok
                    }
                    None => Outcome::UnknownId,
                },
                HuntOp::UpdateTtl(i, ttl) => match self.live(i).cloned() {
                    Some(record) => {
                        self.records[i] = Some(Record {
                            ttl: TTLS[ttl],
                            ..record
                        });
                        Outcome::Ok
                    }
                    None => Outcome::UnknownId,
                },
                HuntOp::Load(i) => {
                    Outcome::Loaded(self.live(i).map(|r| (state_for(r.state), r.ttl)))
                }
                HuntOp::Delete(i) => match self.live(i) {
                    Some(_) => {
                        self.records[i] = None;
                        Outcome::Ok
                    }
                    None => Outcome::UnknownId,
                },
                HuntOp::ChangeId(old, new) => {
                    if self.live(new).is_some() {
                        return Outcome::DuplicateId;
                    }
                    let Some(record) = self.live(old).cloned() else {
                        return Outcome::UnknownId;
                    };
                    self.records[old] = None;
                    self.records[new] = Some(record);
                    Outcome::Ok
                }
                HuntOp::DeleteExpired(batch) => {
                    let mut expired: Vec<(u64, usize)> = (0..4)
                        .filter_map(|i| Some((self.records[i].as_ref()?.expired?, i)))
                        .collect();
                    expired.sort();
                    let n = batch.map_or(expired.len(), |b| b.get().min(expired.len()));
                    for &(_, i) in &expired[..n] {
                        self.records[i] = None;
                    }
                    Outcome::Deleted(n)
                }
                HuntOp::Expire(i) => {
                    if let Some(record) = self.records[i].as_mut().filter(|r| r.expired.is_none()) {
                        record.expired = Some(self.expiries);
                        self.expiries += 1;
                    }
                    Outcome::Ok
                }
            }
        }
    }

    /// Runs `op` on a store; `Expire` moves the record's deadline with SQL (through the entity).
    pub(super) async fn run(
        store: &dyn SessionStorageBackend,
        db: Option<(&common::TestDb, u64)>,
        ids: &[SessionId; 4],
        op: &HuntOp,
    ) -> Outcome {
        let as_op = match *op {
            HuntOp::Create(i, n, t) => Op::Create(i, n, TTLS[t]),
            HuntOp::Update(i, n, t) => Op::Update(i, n, TTLS[t]),
            HuntOp::UpdateTtl(i, t) => Op::UpdateTtl(i, TTLS[t]),
            HuntOp::Load(i) => Op::Load(i),
            HuntOp::Delete(i) => Op::Delete(i),
            HuntOp::ChangeId(a, b) => Op::ChangeId(a, b),
            HuntOp::DeleteExpired(b) => Op::DeleteExpired(b),
            HuntOp::Expire(i) => {
                let Some((db, order)) = db else {
                    return Outcome::Failed("Expire needs the database".to_owned());
                };
                let now = db.db_now_millis().await;
                sessions::Entity::update_many()
                    .col_expr(
                        sessions::Column::Deadline,
                        Expr::val(EXPIRED_AT + order as i64),
                    )
                    .filter(sessions::Column::Id.eq(common::key(&ids[i])))
                    .filter(sessions::Column::Deadline.gt(now))
                    .exec(&db.db)
                    .await
                    .unwrap();
                return Outcome::Ok;
            }
        };
        apply(store, ids, &as_op).await
    }

    pub(super) fn ops() -> usize {
        std::env::var("PSS_HUNT_OPS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000)
    }

    /// Loaded TTLs: at most the TTL given, and less by no more than the run so far.
    pub(super) fn agrees(ours: &Outcome, reference: &Outcome, elapsed: Duration) -> bool {
        match (ours, reference) {
            (Outcome::Loaded(Some((a, ta))), Outcome::Loaded(Some((b, tb)))) => {
                a == b && ta <= tb && *tb - *ta <= elapsed + TTL_TOLERANCE
            }
            (a, b) => a == b,
        }
    }

    pub(super) async fn hunt(store: &SeaOrmSessionStore, db: &common::TestDb, seed: u64) -> usize {
        let mut operations = 0;
        let mut case = 0;
        while operations < ops() {
            let case_seed = seed.wrapping_add(case);
            case += 1;
            let mut rng = fastrand::Rng::with_seed(case_seed);
            sessions::Entity::delete_many().exec(&db.db).await.unwrap();
            let mut reference = Reference::default();
            let ids: [SessionId; 4] = std::array::from_fn(|_| SessionId::random());
            let (started, mut history) = (std::time::Instant::now(), Vec::new());
            for _ in 0..OPS_PER_CASE {
                let op = random_hunt_op(&mut rng, true);
                let ours = run(store, Some((db, reference.expiries)), &ids, &op).await;
                let expected = reference.apply(&op);
                history.push(format!("{op:?} -> {ours:?}"));
                operations += 1;
                assert!(
                    agrees(&ours, &expected, started.elapsed()),
                    "PSS_MODEL_SEED={case_seed} disagrees with the model on the last of:\n  {}\n\
                     ours:  {ours:?}\nmodel: {expected:?}",
                    history.join("\n  ")
                );
            }
        }
        operations
    }
}

/// The hunt's model against the reference store, on the operations both can run (no `Expire`:
/// the in-memory store's deadlines cannot be moved).
#[tokio::test]
async fn reference_agrees_with_the_in_memory_store() {
    let seed = base_seed();
    for case in 0..200 {
        let case_seed = seed.wrapping_add(case);
        let mut rng = fastrand::Rng::with_seed(case_seed);
        let (mut model, store) = (hunt::Reference::default(), InMemorySessionStore::new());
        let ids: [SessionId; 4] = std::array::from_fn(|_| SessionId::random());
        let started = std::time::Instant::now();
        for _ in 0..OPS_PER_CASE {
            let op = hunt::random_hunt_op(&mut rng, false);
            let theirs = hunt::run(&store, None, &ids, &op).await;
            let expected = model.apply(&op);
            assert!(
                hunt::agrees(&theirs, &expected, started.elapsed()),
                "PSS_MODEL_SEED={case_seed}: {op:?}: in-memory {theirs:?}, model {expected:?}"
            );
        }
    }
}

async fn a_long_hunt_with_instant_expiry(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let seed = base_seed();
    let started = std::time::Instant::now();
    let operations = hunt::hunt(&store, &db, seed).await;
    eprintln!(
        "{backend:?}: hunt of {operations} operations in {:.1} s, seed {seed}",
        started.elapsed().as_secs_f64()
    );
}

mod hunting {
    use super::*;
    on_every_backend!(a_long_hunt_with_instant_expiry);
}
