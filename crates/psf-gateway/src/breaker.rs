//! A circuit breaker per model endpoint (MS-4): closed → open after N consecutive faults →
//! half-open after a pause, letting exactly one probe through → closed on success, open
//! again on failure.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// One provider's breaker.
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    open_for: Duration,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive faults, for `open_for`.
    pub fn new(threshold: u32, open_for: Duration) -> Breaker {
        Breaker { state: Mutex::new(State::Closed { failures: 0 }), threshold: threshold.max(1), open_for }
    }

    /// Whether a request may go to the provider now. In half-open state only the first
    /// caller gets `true` (the probe).
    pub fn allow(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match *s {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *s = State::HalfOpen { probing: true };
                true
            }
            State::Open { .. } => false,
            State::HalfOpen { probing: true } => false,
            State::HalfOpen { probing: false } => {
                *s = State::HalfOpen { probing: true };
                true
            }
        }
    }

    /// The call succeeded.
    pub fn success(&self) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = State::Closed { failures: 0 };
    }

    /// The call failed through the provider's fault.
    pub fn failure(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *s = match *s {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed { failures: failures + 1 },
            _ => State::Open { until: Instant::now() + self.open_for },
        };
    }

    /// A call was let through but ended without a verdict on the provider (the caller's
    /// own error): a half-open breaker lets the next probe through.
    pub fn release(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let State::HalfOpen { probing: true } = *s {
            *s = State::HalfOpen { probing: false };
        }
    }

    /// Whether it is open (refusing calls) now.
    pub fn is_open(&self) -> bool {
        matches!(*self.state.lock().unwrap_or_else(PoisonError::into_inner), State::Open { until } if Instant::now() < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_probes_and_closes() {
        let b = Breaker::new(2, Duration::from_millis(30));
        assert!(b.allow());
        b.failure();
        assert!(b.allow(), "one failure is below the threshold");
        b.failure();
        assert!(b.is_open());
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "after the pause one probe goes through");
        assert!(!b.allow(), "and only one");
        b.failure();
        assert!(!b.allow(), "a failed probe opens it again");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        b.success();
        assert!(b.allow() && b.allow(), "closed again");
    }
}
