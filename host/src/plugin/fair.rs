//! Fair share of one process's work among tenants: a fixed number of work slots (plugin
//! batches mapped at once, across every tenant), handed out by start-time fair queuing, a
//! weighted fair queuing discipline.
//!
//! Each request for a slot carries a cost (the items of the batch) and its tenant's weight.
//! Its *start tag* is the later of the queue's virtual time and the finish tag of that
//! tenant's previous request; its finish tag adds cost ÷ weight. Free slots go to the
//! smallest start tag. A tenant with 50,000 items queued therefore gets its share and no
//! more: a tenant that arrives with one batch is tagged at the current virtual time, ahead
//! of every batch the big tenant queued after it, and waits at most for the slots already
//! running (a bounded delay, whatever the big tenant's backlog).
//!
//! Owns: [`WorkBudget`] and its [`Slot`] guard. Must not touch: what the work is; callers
//! (the map pipeline, through [`crate::plugin::Tenant`]) hold a slot while they work.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Tag units per item at weight 1 (tags are integers so the queue orders exactly).
const TAG_SCALE: u64 = 1_000;

#[derive(Debug)]
struct Waiter {
    tenant: Arc<str>,
    tx: oneshot::Sender<()>,
}

#[derive(Debug, Default)]
struct State {
    free: usize,
    /// The start tag of the last request granted.
    vtime: u64,
    /// Per tenant: the finish tag of its latest request.
    finish: HashMap<Arc<str>, u64>,
    /// Waiting requests by (start tag, arrival).
    queue: BTreeMap<(u64, u64), Waiter>,
    seq: u64,
    /// Slots granted, per tenant (for figures and tests).
    granted: HashMap<Arc<str>, u64>,
}

/// A process-wide budget of work slots, shared fairly among tenants.
#[derive(Debug)]
pub struct WorkBudget {
    state: Mutex<State>,
}

/// A held work slot; dropping it hands the slot to the next request in fair order.
#[derive(Debug)]
pub struct Slot {
    budget: Arc<WorkBudget>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.budget.release();
    }
}

impl WorkBudget {
    /// A budget of `slots` (at least 1) concurrent units of work.
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                free: slots.max(1),
                ..State::default()
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot for `cost` units of `tenant`'s work at `weight` (0 counts as 1).
    pub async fn acquire(self: &Arc<Self>, tenant: &Arc<str>, weight: u32, cost: u64) -> Slot {
        let rx = {
            let mut s = self.lock();
            let last = s.finish.get(tenant).copied().unwrap_or(0);
            let start = last.max(s.vtime);
            let finish = start + cost.max(1) * TAG_SCALE / u64::from(weight.max(1));
            s.finish.insert(tenant.clone(), finish);
            if s.free > 0 && s.queue.is_empty() {
                s.free -= 1;
                s.vtime = start;
                *s.granted.entry(tenant.clone()).or_default() += 1;
                return Slot {
                    budget: self.clone(),
                };
            }
            let (tx, rx) = oneshot::channel();
            let seq = s.seq;
            s.seq += 1;
            s.queue.insert(
                (start, seq),
                Waiter {
                    tenant: tenant.clone(),
                    tx,
                },
            );
            rx
        };
        // The sender is only dropped after a grant is attempted; a closed channel means the
        // budget itself went away, and the work may then go ahead unmetered.
        let _ = rx.await;
        Slot {
            budget: self.clone(),
        }
    }

    fn release(&self) {
        let mut s = self.lock();
        s.free += 1;
        while s.free > 0 {
            let Some(((start, _), w)) = s.queue.pop_first() else {
                break;
            };
            // A waiter that gave up (its future was dropped) does not take the slot.
            if w.tx.send(()).is_ok() {
                s.free -= 1;
                s.vtime = s.vtime.max(start);
                *s.granted.entry(w.tenant).or_default() += 1;
            }
        }
        // Tenants whose tags fell behind the virtual time have no claim left to remember.
        if s.finish.len() > 1024 {
            let v = s.vtime;
            s.finish.retain(|_, f| *f > v);
        }
    }

    /// Slots granted so far, per tenant.
    pub fn granted(&self) -> HashMap<Arc<str>, u64> {
        self.lock().granted.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// One slot; a big tenant queues 50 batches, then a small one arrives with one: the small
    /// one is served next, not after the big tenant's backlog.
    #[tokio::test]
    async fn a_late_small_tenant_overtakes_a_backlog() {
        let budget = WorkBudget::new(1);
        let big: Arc<str> = "big".into();
        let small: Arc<str> = "small".into();
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = budget.acquire(&big, 1, 50).await;
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (b, t, o) = (budget.clone(), big.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _s = b.acquire(&t, 1, 50).await;
                o.lock().unwrap().push(format!("big{i}"));
            }));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (b, t, o) = (budget.clone(), small.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let _s = b.acquire(&t, 1, 50).await;
            o.lock().unwrap().push("small".into());
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        let pos = order.iter().position(|s| s == "small").unwrap();
        assert!(pos <= 1, "small served at position {pos}: {order:?}");
        assert_eq!(order.len(), 51);
    }

    /// Two tenants with equal backlogs and weights 3:1 share slots about 3:1.
    #[tokio::test]
    async fn weights_share_slots() {
        let budget = WorkBudget::new(1);
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        let hold = budget.acquire(&a, 1, 1).await;
        let served = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..40 {
            for (t, w) in [(a.clone(), 3), (b.clone(), 1)] {
                let (bu, s) = (budget.clone(), served.clone());
                tasks.push(tokio::spawn(async move {
                    let _slot = bu.acquire(&t, w, 10).await;
                    s.lock().unwrap().push(t.to_string());
                }));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(hold);
        for t in tasks {
            t.await.unwrap();
        }
        let served = served.lock().unwrap();
        let first40 = &served[..40];
        let a_count = first40.iter().filter(|s| *s == "a").count();
        assert!((27..=33).contains(&a_count), "{a_count} of 40: {served:?}");
    }

    /// A waiter that gives up does not keep the slot from others.
    #[tokio::test]
    async fn abandoned_waiters_are_skipped() {
        let budget = WorkBudget::new(1);
        let t: Arc<str> = "t".into();
        let hold = budget.acquire(&t, 1, 1).await;
        let b = budget.clone();
        let t2 = t.clone();
        let abandoned = tokio::spawn(async move { b.acquire(&t2, 1, 1).await });
        tokio::time::sleep(Duration::from_millis(5)).await;
        abandoned.abort();
        let _ = abandoned.await;
        drop(hold);
        let got = tokio::time::timeout(Duration::from_secs(1), budget.acquire(&t, 1, 1)).await;
        assert!(got.is_ok(), "the slot was lost to an abandoned waiter");
        assert_eq!(budget.granted()[&t], 2);
    }
}
