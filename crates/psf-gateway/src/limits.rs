//! Rate limits (IG-4): token buckets for the whole gateway, per app and per key, from
//! the manifest, on requests and on model tokens. A refusal carries the time until the
//! bucket has room (`Retry-After`).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use psf_core::manifest::{Manifest, RateLimit};

type Direct = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;
type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The gateway as a whole.
    Global,
    /// The app.
    App,
    /// The key.
    Key,
}

impl Scope {
    /// `global`, `app` or `key`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::App => "app",
            Scope::Key => "key",
        }
    }
}

/// What a refused request ran out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Requests per minute.
    Requests,
    /// Model tokens (prompt and completion) per minute.
    Tokens,
}

/// A refusal: which limit, on what, and how long until it has room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Whose limit.
    pub scope: Scope,
    /// On what.
    pub unit: Unit,
    /// Until there is room again.
    pub wait: Duration,
}

impl Refusal {
    /// `key request limit`, `app token limit`, …
    pub fn describe(&self) -> String {
        let unit = match self.unit {
            Unit::Requests => "request",
            Unit::Tokens => "token",
        };
        format!("{} {unit} limit", self.scope.as_str())
    }
}

/// A tokens-per-minute budget, one balance per name (an app, a key; `""` when direct).
///
/// A call's size is known only after its reply, so the budget is spent afterwards and may
/// go below zero; calls are refused while it is below zero, until the steady refill (a
/// minute's worth at most) brings it back. Governor's buckets cannot go into debt, hence
/// this small bucket of our own.
#[derive(Debug)]
struct Budget {
    per_minute: f64,
    balances: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Budget {
    fn new(per_minute: u32) -> Budget {
        Budget { per_minute: f64::from(per_minute), balances: Mutex::new(HashMap::new()) }
    }

    /// Applies the refill since the last look and returns the balance.
    fn refilled(&self, entry: &mut (f64, Instant), now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(entry.1).as_secs_f64();
        entry.0 = (entry.0 + elapsed * self.per_minute / 60.0).min(self.per_minute);
        entry.1 = now;
        entry.0
    }

    /// `Err(wait)` while the balance is spent.
    fn check(&self, name: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.balances.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = map.get_mut(name) else { return Ok(()) };
        let balance = self.refilled(entry, now);
        if balance > 0.0 {
            return Ok(());
        }
        Err(Duration::from_secs_f64((-balance + 1.0) * 60.0 / self.per_minute))
    }

    fn spend(&self, name: &str, tokens: u64, now: Instant) {
        let mut map = self.balances.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(name.to_string()).or_insert((self.per_minute, now));
        self.refilled(entry, now);
        // Token counts are far below 2^52: the conversion is exact.
        entry.0 -= tokens as f64;
    }

    /// Forgets names whose balance is full again.
    fn shrink(&self, now: Instant) {
        let mut map = self.balances.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, entry| self.refilled(entry, now) < self.per_minute);
    }
}

/// The limiters of one gateway.
#[derive(Debug)]
pub struct Limits {
    global: Option<Direct>,
    apps: HashMap<String, Direct>,
    per_key: Option<Keyed>,
    clock: DefaultClock,
    global_tokens: Option<Budget>,
    app_tokens: HashMap<String, Budget>,
    key_tokens: Option<Budget>,
    /// The request quotas as configured, for the cluster's shared buckets.
    quotas: Quotas,
}

#[derive(Debug, Default)]
struct Quotas {
    global: Option<(u32, u32)>,
    apps: HashMap<String, (u32, u32)>,
    per_key: Option<(u32, u32)>,
}

/// Requests per minute and burst of a limit.
fn rate(limit: &RateLimit) -> Option<(u32, u32)> {
    let rpm = limit.requests_per_minute;
    (rpm > 0).then(|| (rpm, limit.burst.filter(|b| *b > 0).unwrap_or(rpm)))
}

fn quota(limit: &RateLimit) -> Option<Quota> {
    let (rpm, burst) = rate(limit)?;
    Some(Quota::per_minute(NonZeroU32::new(rpm)?).allow_burst(NonZeroU32::new(burst)?))
}

/// One value per app from the limit that applies to it: its own, or `rate_limits.per_app`.
fn per_app<T>(m: &Manifest, f: impl Fn(&RateLimit) -> Option<T>) -> HashMap<String, T> {
    m.apps
        .iter()
        .filter_map(|app| {
            let limit = app.rate_limit.as_ref().or(m.rate_limits.per_app.as_ref())?;
            Some((app.id.clone(), f(limit)?))
        })
        .collect()
}

impl Limits {
    /// The limiters the manifest asks for.
    pub fn new(m: &Manifest) -> Limits {
        let r = &m.rate_limits;
        let budget = |l: &RateLimit| l.tokens_per_minute.filter(|n| *n > 0).map(Budget::new);
        Limits {
            global: r.global.as_ref().and_then(quota).map(RateLimiter::direct),
            apps: per_app(m, |l| quota(l).map(RateLimiter::direct)),
            per_key: r.per_key.as_ref().and_then(quota).map(RateLimiter::keyed),
            clock: DefaultClock::default(),
            global_tokens: r.global.as_ref().and_then(budget),
            app_tokens: per_app(m, budget),
            key_tokens: r.per_key.as_ref().and_then(budget),
            quotas: Quotas {
                global: r.global.as_ref().and_then(rate),
                apps: per_app(m, rate),
                per_key: r.per_key.as_ref().and_then(rate),
            },
        }
    }

    /// The request buckets that apply to a call, narrowest first, as GCRA parameters for
    /// the cluster's shared limiter: `(scope, name, interval µs, tolerance µs)`.
    pub fn shared_buckets<'a>(&'a self, app: &'a str, key_id: &'a str) -> Vec<(Scope, &'a str, u64, u64)> {
        let gcra = |(rpm, burst): (u32, u32)| {
            let interval = 60_000_000 / u64::from(rpm.max(1));
            (interval, interval * u64::from(burst.max(1) - 1))
        };
        let mut out = Vec::with_capacity(3);
        if let Some(q) = self.quotas.per_key {
            let (i, t) = gcra(q);
            out.push((Scope::Key, key_id, i, t));
        }
        if let Some(q) = self.quotas.apps.get(app) {
            let (i, t) = gcra(*q);
            out.push((Scope::App, app, i, t));
        }
        if let Some(q) = self.quotas.global {
            let (i, t) = gcra(q);
            out.push((Scope::Global, "all", i, t));
        }
        out
    }

    /// Refuses a request whose key, app or gateway has spent its token budget (kept per
    /// instance, also in cluster mode).
    pub fn check_tokens(&self, app: &str, key_id: &str) -> Result<(), Refusal> {
        let instant = Instant::now();
        for (scope, budget, name) in self.budgets(app, key_id) {
            budget.check(name, instant).map_err(|wait| Refusal { scope, unit: Unit::Tokens, wait })?;
        }
        Ok(())
    }

    /// Refuses a request whose key, app or gateway has spent its token budget; otherwise
    /// takes one request from every request bucket that applies, narrowest first so a key
    /// over its own limit does not use up the app's or the gateway's.
    pub fn check(&self, app: &str, key_id: &str) -> Result<(), Refusal> {
        self.check_tokens(app, key_id)?;
        let now = self.clock.now();
        let requests =
            |scope, n: governor::NotUntil<_>| Refusal { scope, unit: Unit::Requests, wait: n.wait_time_from(now) };
        if let Some(l) = &self.per_key {
            l.check_key(&key_id.to_string()).map_err(|n| requests(Scope::Key, n))?;
        }
        if let Some(l) = self.apps.get(app) {
            l.check().map_err(|n| requests(Scope::App, n))?;
        }
        if let Some(l) = &self.global {
            l.check().map_err(|n| requests(Scope::Global, n))?;
        }
        Ok(())
    }

    /// Spends the model tokens a finished call used (as the provider reported them).
    pub fn spend(&self, app: &str, key_id: &str, tokens: u64) {
        let now = Instant::now();
        for (_, budget, name) in self.budgets(app, key_id) {
            budget.spend(name, tokens, now);
        }
    }

    fn budgets<'a>(&'a self, app: &'a str, key_id: &'a str) -> impl Iterator<Item = (Scope, &'a Budget, &'a str)> {
        [
            self.key_tokens.as_ref().map(|b| (Scope::Key, b, key_id)),
            self.app_tokens.get(app).map(|b| (Scope::App, b, "")),
            self.global_tokens.as_ref().map(|b| (Scope::Global, b, "")),
        ]
        .into_iter()
        .flatten()
    }

    /// Drops the state of keys that have been idle long enough to have a full bucket.
    pub fn shrink(&self) {
        if let Some(l) = &self.per_key {
            l.retain_recent();
        }
        if let Some(b) = &self.key_tokens {
            b.shrink(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_budget_goes_into_debt_refuses_and_refills() {
        let budget = Budget::new(600); // 10 a second
        let t0 = Instant::now();
        assert!(budget.check("k", t0).is_ok(), "an unseen name has its whole budget");
        budget.spend("k", 500, t0);
        assert!(budget.check("k", t0).is_ok(), "100 left");
        budget.spend("k", 150, t0);
        let wait = budget.check("k", t0).err();
        // 50 in debt at 10 a second: a little over 5 s.
        assert!(wait.is_some_and(|w| w > Duration::from_secs(5) && w < Duration::from_secs(6)), "{wait:?}");
        assert!(budget.check("other", t0).is_ok(), "names have their own balances");
        assert!(budget.check("k", t0 + Duration::from_secs(6)).is_ok(), "refilled");
        // The refill stops at a minute's worth.
        budget.shrink(t0 + Duration::from_secs(3600));
        assert!(budget.balances.lock().map(|m| m.is_empty()).unwrap_or(false));
    }
}

/// Requests a source address may send without a valid key, per minute, and at once.
const UNAUTHENTICATED_PER_MINUTE: u32 = 60;
const UNAUTHENTICATED_BURST: u32 = 20;
/// Sources remembered before the ones seen least recently are let go.
const MAX_SOURCES: usize = 100_000;

/// A limit per source address, for requests that carry no valid key (which have no key
/// or app to be limited by).
#[derive(Debug)]
pub(crate) struct PerSource {
    limiter: RateLimiter<std::net::IpAddr, DefaultKeyedStateStore<std::net::IpAddr>, DefaultClock>,
}

impl PerSource {
    pub(crate) fn new() -> PerSource {
        let per_minute = NonZeroU32::new(UNAUTHENTICATED_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(UNAUTHENTICATED_BURST).unwrap_or(NonZeroU32::MIN);
        PerSource { limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)) }
    }

    /// `Err(wait)` when `source` has sent too many requests without a valid key.
    pub(crate) fn check(&self, source: std::net::IpAddr) -> Result<(), std::time::Duration> {
        if self.limiter.len() > MAX_SOURCES {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&source).map_err(|n| n.wait_time_from(DefaultClock::default().now()))
    }
}
