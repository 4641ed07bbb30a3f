//! What changed between two manifests, as a reviewer reads it: each change with where it
//! is (items of a list are named by their `id`, so removing one does not make every
//! later one look changed), what it was and is, and the area it touches — oversight,
//! data flow, models and providers, or the rest. Changes to oversight and to what a
//! decision point does are what HO-5 asks a review after.

use serde::Serialize;
use serde_json::Value;

/// What a change touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// Who decides: autonomy, reviewers, review deadlines, decision points themselves.
    Oversight,
    /// What data goes where: PII policies, retention, residency, data sources.
    DataFlow,
    /// Models, providers and fallbacks.
    Providers,
    /// Everything else.
    Other,
}

impl Area {
    /// Its name for people.
    pub fn label(self) -> &'static str {
        match self {
            Area::Oversight => "oversight",
            Area::DataFlow => "data flow",
            Area::Providers => "models and providers",
            Area::Other => "other",
        }
    }
}

/// Added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Only in the new manifest.
    Added,
    /// Only in the old one.
    Removed,
    /// In both, different.
    Changed,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Where, for people: `decision_points[appeal].autonomy`.
    pub path: String,
    /// Where, as a JSON pointer into the manifest that has it (the new one, or the old
    /// one for a removal).
    pub pointer: String,
    /// What kind of change.
    pub kind: Kind,
    /// The value before, unless added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The value after, unless removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// What it touches.
    pub area: Area,
    /// The decision point it concerns, when one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_point: Option<String>,
}

/// The changes from `old` to `new`, oversight first, then data flow, providers, the rest,
/// each in document order.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(old, new, &Here::default(), &mut out);
    out.sort_by_key(|c| c.area);
    out
}

/// Where the walk is: the readable path, the pointers into each side, the decision point.
#[derive(Debug, Clone, Default)]
struct Here {
    path: String,
    old: String,
    new: String,
    point: Option<String>,
}

impl Here {
    fn key(&self, k: &str) -> Here {
        let sep = if self.path.is_empty() { "" } else { "." };
        let token = crate::yaml::escape_token(k);
        Here {
            path: format!("{}{sep}{k}", self.path),
            old: format!("{}/{token}", self.old),
            new: format!("{}/{token}", self.new),
            point: self.point.clone(),
        }
    }

    fn item(&self, label: &str, old_index: Option<usize>, new_index: Option<usize>) -> Here {
        let mut h = Here {
            path: format!("{}[{label}]", self.path),
            old: old_index.map_or_else(String::new, |i| format!("{}/{i}", self.old)),
            new: new_index.map_or_else(String::new, |i| format!("{}/{i}", self.new)),
            point: self.point.clone(),
        };
        if self.path == "decision_points" {
            h.point = Some(label.to_string());
        }
        h
    }
}

fn area(path: &str) -> Area {
    let leaf_in = |keys: &[&str]| keys.iter().any(|k| path.contains(k));
    if path.starts_with("models")
        || path.starts_with("providers")
        || (path.starts_with("decision_points") && path.ends_with(".model"))
    {
        return Area::Providers;
    }
    if leaf_in(&[".pii", "retention", "residency", "data_sources", "regions"]) {
        return Area::DataFlow;
    }
    if path.starts_with("decision_points")
        && (path.matches('.').count() == 0
            || leaf_in(&[
                ".autonomy",
                ".reviewers",
                ".review_deadline_minutes",
                ".review_webhook",
                ".stakes",
                ".irreversible",
                ".affects_vulnerable_people",
                ".confidence",
            ]))
    {
        return Area::Oversight;
    }
    if path.starts_with("oversight_reviews") {
        return Area::Oversight;
    }
    Area::Other
}

fn push(out: &mut Vec<Change>, here: &Here, kind: Kind, before: Option<&Value>, after: Option<&Value>) {
    out.push(Change {
        path: here.path.clone(),
        pointer: if kind == Kind::Removed { here.old.clone() } else { here.new.clone() },
        kind,
        before: before.cloned(),
        after: after.cloned(),
        area: area(&here.path),
        decision_point: here.point.clone(),
    });
}

/// Items named by `id` (or `name`) when every item has one.
fn keyed(items: &[Value]) -> Option<Vec<String>> {
    items.iter().map(|v| v.get("id").or_else(|| v.get("name")).and_then(Value::as_str).map(str::to_string)).collect()
}

fn walk(old: &Value, new: &Value, here: &Here, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => walk(va, vb, &here.key(k), out),
                    None => push(out, &here.key(k), Kind::Removed, Some(va), None),
                }
            }
            for (k, vb) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                push(out, &here.key(k), Kind::Added, None, Some(vb));
            }
        }
        (Value::Array(a), Value::Array(b)) => match (keyed(a), keyed(b)) {
            (Some(ka), Some(kb)) => {
                for (i, id) in ka.iter().enumerate() {
                    match kb.iter().position(|x| x == id) {
                        Some(j) => walk(&a[i], &b[j], &here.item(id, Some(i), Some(j)), out),
                        None => push(out, &here.item(id, Some(i), None), Kind::Removed, Some(&a[i]), None),
                    }
                }
                for (j, id) in kb.iter().enumerate().filter(|(_, id)| !ka.contains(id)) {
                    push(out, &here.item(id, None, Some(j)), Kind::Added, None, Some(&b[j]));
                }
            }
            _ if a != b => push(out, here, Kind::Changed, Some(old), Some(new)),
            _ => {}
        },
        _ if old != new => push(out, here, Kind::Changed, Some(old), Some(new)),
        _ => {}
    }
}

/// One line for a change: `oversight: decision_points[appeal].autonomy: advisory → supervised`.
pub fn describe(c: &Change) -> String {
    let short = |v: &Option<Value>| {
        let s = v.as_ref().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).unwrap_or_default();
        if s.chars().count() > 80 { format!("{}…", s.chars().take(79).collect::<String>()) } else { s }
    };
    match c.kind {
        // A whole item or section is named, not printed.
        Kind::Added if c.after.as_ref().is_some_and(|v| v.is_object()) => {
            format!("{}: added {}", c.area.label(), c.path)
        }
        Kind::Added => format!("{}: added {}: {}", c.area.label(), c.path, short(&c.after)),
        Kind::Removed => format!("{}: removed {}", c.area.label(), c.path),
        Kind::Changed => format!("{}: {}: {} → {}", c.area.label(), c.path, short(&c.before), short(&c.after)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn items_are_matched_by_id_and_changes_sorted_by_area() {
        let old = json!({
            "system": {"name": "A"},
            "decision_points": [
                {"id": "a", "autonomy": "advisory", "model": "m", "input": {"pii": {"contact": "tokenize"}}},
                {"id": "b", "autonomy": "autonomous", "model": "m"}
            ],
            "models": [{"id": "m", "provider": "p"}]
        });
        let new = json!({
            "system": {"name": "B"},
            "decision_points": [
                {"id": "b", "autonomy": "autonomous", "model": "n"},
                {"id": "c", "autonomy": "supervised", "model": "m"}
            ],
            "models": [{"id": "m", "provider": "p", "fallback": "n"}, {"id": "n", "provider": "p"}]
        });
        let lines: Vec<String> = diff(&old, &new).iter().map(describe).collect();
        assert_eq!(
            lines,
            [
                "oversight: removed decision_points[a]",
                "oversight: added decision_points[c]",
                "models and providers: decision_points[b].model: m → n",
                "models and providers: added models[m].fallback: n",
                "models and providers: added models[n]",
                "other: system.name: A → B",
            ]
        );
        let changes = diff(&old, &new);
        assert_eq!(changes[0].pointer, "/decision_points/0", "a removal points into the old manifest");
        assert_eq!(changes[1].pointer, "/decision_points/1");
        assert_eq!(changes[2].decision_point.as_deref(), Some("b"));
        assert!(diff(&old, &old).is_empty());
    }

    #[test]
    fn pii_policy_and_reviewers_fall_in_their_areas() {
        let old = json!({"decision_points": [{"id": "a", "reviewers": [], "input": {"pii": {"contact": "tokenize"}}}]});
        let new = json!({"decision_points": [{"id": "a", "reviewers": [{"name": "R", "email": "r@x"}], "input": {"pii": {"contact": "allow"}}}]});
        let areas: Vec<(Area, String)> = diff(&old, &new).into_iter().map(|c| (c.area, c.path)).collect();
        assert_eq!(
            areas,
            [
                (Area::Oversight, "decision_points[a].reviewers[R]".to_string()),
                (Area::DataFlow, "decision_points[a].input.pii.contact".to_string()),
            ]
        );
    }
}
