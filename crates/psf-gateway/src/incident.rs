//! The kill switch (IR-2): incidents in force, as every request sees them.
//!
//! Incidents live in the store; each gateway reads the ones in force every
//! [`POLL`] and swaps them in whole, so a declaration made anywhere (the CLI, another
//! instance's API) takes effect on every instance sharing the store within a second, and
//! a gateway that restarts is closed from its first request.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use psf_store::Incident;

/// How often a gateway reads the incidents in force.
pub const POLL: Duration = Duration::from_millis(250);

/// What an incident does to the calls in its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentAction {
    /// Refuse calls with `503 IR-2.disabled`.
    Disable,
    /// Serve the decision point's degraded response without calling a model.
    Degrade,
    /// Cut a provider out of every chain (its fallbacks serve), or refuse an app or point.
    Isolate,
}

impl IncidentAction {
    /// The word used in the CLI, the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentAction::Disable => "disable",
            IncidentAction::Degrade => "degrade",
            IncidentAction::Isolate => "isolate",
        }
    }
}

impl FromStr for IncidentAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "disable" => Ok(IncidentAction::Disable),
            "degrade" => Ok(IncidentAction::Degrade),
            "isolate" => Ok(IncidentAction::Isolate),
            other => Err(format!("`{other}` is not an incident action; use disable, degrade or isolate")),
        }
    }
}

/// What an incident covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentScope {
    /// Every call.
    All,
    /// One app's calls.
    App(String),
    /// One decision point's calls.
    Point(String),
    /// One provider.
    Provider(String),
}

impl FromStr for IncidentScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let named = |kind: &str, name: &str| {
            if name.is_empty() {
                Err(format!("scope `{s}` names no {kind}; write `{kind}:ID`"))
            } else {
                Ok(name.to_string())
            }
        };
        match s.split_once(':') {
            None if s == "all" => Ok(IncidentScope::All),
            Some(("app", name)) => named("app", name).map(IncidentScope::App),
            Some(("point", name)) => named("point", name).map(IncidentScope::Point),
            Some(("provider", name)) => named("provider", name).map(IncidentScope::Provider),
            _ => Err(format!("`{s}` is not an incident scope; use all, app:ID, point:ID or provider:ID")),
        }
    }
}

impl fmt::Display for IncidentScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IncidentScope::All => f.write_str("all"),
            IncidentScope::App(a) => write!(f, "app:{a}"),
            IncidentScope::Point(p) => write!(f, "point:{p}"),
            IncidentScope::Provider(p) => write!(f, "provider:{p}"),
        }
    }
}

/// One incident in force, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    /// Its id.
    pub id: String,
    /// What it does.
    pub action: IncidentAction,
    /// What it covers.
    pub scope: IncidentScope,
    /// Whether it is a drill.
    pub drill: bool,
}

/// What the incidents in force say about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing: go on.
    Open,
    /// Refuse it, naming the incident.
    Refuse(String),
    /// Serve the degraded response, naming the incident.
    Degrade(String),
}

/// The incidents in force on this gateway.
#[derive(Debug, Default)]
pub struct KillSwitch {
    in_force: RwLock<Arc<Vec<InForce>>>,
}

impl KillSwitch {
    /// Replaces the incidents in force with `incidents` (those the store holds unresolved).
    /// Ones this version cannot read are skipped with a log line, never half-applied.
    pub fn set(&self, incidents: &[Incident]) {
        let parsed: Vec<InForce> = incidents
            .iter()
            .filter_map(|i| match (i.action.parse(), i.scope.parse()) {
                (Ok(action), Ok(scope)) => Some(InForce { id: i.id.clone(), action, scope, drill: i.drill }),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(incident = %i.id, error = %e, "an incident in the store cannot be applied");
                    None
                }
            })
            .collect();
        *self.in_force.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(parsed);
    }

    fn current(&self) -> Arc<Vec<InForce>> {
        self.in_force.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// How many incidents are in force.
    pub fn count(&self) -> usize {
        self.current().len()
    }

    /// What the incidents say about a call from `app` to `point`. Refusing wins over
    /// degrading, so the strictest incident in force applies.
    pub fn check(&self, app: &str, point: &str) -> Verdict {
        let mut verdict = Verdict::Open;
        for i in self.current().iter() {
            let covers = match &i.scope {
                IncidentScope::All => true,
                IncidentScope::App(a) => a == app,
                IncidentScope::Point(p) => p == point,
                IncidentScope::Provider(_) => false,
            };
            if !covers {
                continue;
            }
            match i.action {
                IncidentAction::Disable | IncidentAction::Isolate => return Verdict::Refuse(i.id.clone()),
                IncidentAction::Degrade => verdict = Verdict::Degrade(i.id.clone()),
            }
        }
        verdict
    }

    /// Whether `provider` is cut out (by an incident scoped to it, whatever its action).
    pub fn provider_cut(&self, provider: &str) -> Option<String> {
        self.current()
            .iter()
            .find(|i| matches!(&i.scope, IncidentScope::Provider(p) if p == provider))
            .map(|i| i.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(id: &str, action: &str, scope: &str) -> Incident {
        Incident {
            id: id.into(),
            declared_ms: 0,
            declared_by: "o".into(),
            action: action.into(),
            scope: scope.into(),
            severity: "sev2".into(),
            reason: "r".into(),
            drill: false,
            resolved_ms: None,
            resolved_by: None,
            resolution: None,
            review: None,
        }
    }

    #[test]
    fn scopes_and_actions_parse_with_clear_errors() {
        assert_eq!("app:loans".parse(), Ok(IncidentScope::App("loans".into())));
        assert_eq!("all".parse(), Ok(IncidentScope::All));
        assert!("app:".parse::<IncidentScope>().is_err_and(|e| e.contains("app:ID")));
        assert!("region:eu".parse::<IncidentScope>().is_err_and(|e| e.contains("provider:ID")));
        assert!("halt".parse::<IncidentAction>().is_err_and(|e| e.contains("disable, degrade or isolate")));
        assert_eq!(IncidentScope::Point("p".into()).to_string(), "point:p");
    }

    #[test]
    fn the_strictest_incident_in_scope_applies() {
        let k = KillSwitch::default();
        assert_eq!(k.check("a", "p"), Verdict::Open);
        k.set(&[
            incident("i1", "degrade", "all"),
            incident("i2", "disable", "point:p"),
            incident("i3", "isolate", "provider:x"),
        ]);
        assert_eq!(k.check("a", "p"), Verdict::Refuse("i2".into()));
        assert_eq!(k.check("a", "q"), Verdict::Degrade("i1".into()));
        assert_eq!(k.provider_cut("x"), Some("i3".into()));
        assert_eq!(k.provider_cut("y"), None);
        k.set(&[incident("bad", "explode", "all"), incident("i4", "isolate", "app:a")]);
        assert_eq!(k.count(), 1, "an unreadable incident is skipped, not half-applied");
        assert_eq!(k.check("a", "p"), Verdict::Refuse("i4".into()));
        assert_eq!(k.check("b", "p"), Verdict::Open);
    }
}
