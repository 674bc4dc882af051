//! Which session ids are live in a side's table, and fresh ones.

use pavex_session::SessionId;
use rand::{Rng as _, SeedableRng as _, rngs::StdRng, seq::SliceRandom as _};

/// The ids live in one side's table, as far as the benchmark knows.
pub struct LiveIds {
    ids: Vec<SessionId>,
    rng: StdRng,
}

impl LiveIds {
    /// `ids` are live; `seed` drives the random choices.
    pub fn new(ids: Vec<SessionId>, seed: u64) -> Self {
        Self {
            ids,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// How many ids are live.
    pub fn len(&self) -> usize {
        self.ids.len()
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
