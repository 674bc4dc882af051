//! Which session ids are live in a side's table, how many expired rows are left, and fresh ids.

use pavex_session::SessionId;
use rand::{Rng as _, SeedableRng as _, rngs::StdRng, seq::SliceRandom as _};
use std::num::NonZeroUsize;

/// The ids live in one side's table, and its expired rows, as far as the benchmark knows.
pub struct LiveIds {
    ids: Vec<SessionId>,
    rng: StdRng,
    expired: usize,
    expired_batch: NonZeroUsize,
}

impl LiveIds {
    /// `ids` are live; `seed` drives the random choices. The table holds no expired rows.
    pub fn new(ids: Vec<SessionId>, seed: u64) -> Self {
        Self {
            ids,
            rng: StdRng::seed_from_u64(seed),
            expired: 0,
            expired_batch: NonZeroUsize::MIN,
        }
    }

    /// The table also holds `expired` expired rows, deleted `batch` per `delete_expired` call.
    pub fn with_expired(mut self, expired: usize, batch: NonZeroUsize) -> Self {
        self.expired = expired;
        self.expired_batch = batch;
        self
    }

    /// How many ids are live.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// How many expired rows are left.
    pub fn expired(&self) -> usize {
        self.expired
    }

    /// The batch sizes of up to `n` `delete_expired` calls, as many as the expired rows left
    /// can fill, which are no longer counted.
    pub(crate) fn take_expired(&mut self, n: usize) -> Vec<NonZeroUsize> {
        let calls = n.min(self.expired / self.expired_batch.get());
        self.expired -= calls * self.expired_batch.get();
        vec![self.expired_batch; calls]
    }

    /// `n` distinct live ids, chosen at random; they stay live.
    pub(crate) fn sample(&mut self, n: usize) -> Vec<SessionId> {
        let (chosen, _) = self.ids.partial_shuffle(&mut self.rng, n);
        chosen.to_vec()
    }

    /// `n` distinct live ids, chosen at random and no longer counted as live.
    pub(crate) fn take(&mut self, n: usize) -> Vec<SessionId> {
        (0..n.min(self.ids.len()))
            .map(|_| {
                let i = self.rng.random_range(0..self.ids.len());
                self.ids.swap_remove(i)
            })
            .collect()
    }

    pub(crate) fn add(&mut self, ids: impl IntoIterator<Item = SessionId>) {
        self.ids.extend(ids);
    }
}

/// `n` fresh random ids.
pub fn fresh_ids(n: usize) -> Vec<SessionId> {
    (0..n).map(|_| SessionId::random()).collect()
}
