//! Rate limits (IG-4): token buckets for the whole gateway, per app and per key, from
//! the manifest. A refusal carries the time until the bucket has room (`Retry-After`).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

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

/// The limiters of one gateway.
#[derive(Debug)]
pub struct Limits {
    global: Option<Direct>,
    apps: HashMap<String, Direct>,
    per_key: Option<Keyed>,
    clock: DefaultClock,
}

fn quota(limit: &RateLimit) -> Option<Quota> {
    let rpm = NonZeroU32::new(limit.requests_per_minute)?;
    let burst = limit.burst.and_then(NonZeroU32::new).unwrap_or(rpm);
    Some(Quota::per_minute(rpm).allow_burst(burst))
}

impl Limits {
    /// The limiters the manifest asks for.
    pub fn new(m: &Manifest) -> Limits {
        let global = m.rate_limits.global.as_ref().and_then(quota).map(RateLimiter::direct);
        let apps = m
            .apps
            .iter()
            .filter_map(|app| {
                let limit = app.rate_limit.as_ref().or(m.rate_limits.per_app.as_ref())?;
                Some((app.id.clone(), RateLimiter::direct(quota(limit)?)))
            })
            .collect();
        let per_key = m.rate_limits.per_key.as_ref().and_then(quota).map(RateLimiter::keyed);
        Limits { global, apps, per_key, clock: DefaultClock::default() }
    }

    /// Takes one request from every bucket that applies, narrowest first so a key over
    /// its own limit does not use up the app's or the gateway's. `Err` names the limit and
    /// the wait.
    pub fn check(&self, app: &str, key_id: &str) -> Result<(), (Scope, Duration)> {
        let now = self.clock.now();
        if let Some(l) = &self.per_key {
            l.check_key(&key_id.to_string()).map_err(|n| (Scope::Key, n.wait_time_from(now)))?;
        }
        if let Some(l) = self.apps.get(app) {
            l.check().map_err(|n| (Scope::App, n.wait_time_from(now)))?;
        }
        if let Some(l) = &self.global {
            l.check().map_err(|n| (Scope::Global, n.wait_time_from(now)))?;
        }
        Ok(())
    }

    /// Drops the state of keys that have been idle long enough to have a full bucket.
    pub fn shrink(&self) {
        if let Some(l) = &self.per_key {
            l.retain_recent();
        }
    }
}
