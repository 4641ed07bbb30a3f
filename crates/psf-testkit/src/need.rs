//! What a test needs from the machine: a service URL from the environment, or a tool
//! on `PATH`. Without it a test skips on a developer's machine, saying so, and fails
//! under `CI` (set by `.ci/run`), where every service and tool is installed and a skip
//! would hide a check that did not run.

/// Whether the tests run in CI (`CI` is set and not `false` or `0`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Says that a test cannot run `what`, and why: a skip outside CI, a failure in CI.
#[expect(clippy::panic, reason = "in CI a missing service or tool must fail the test, not skip it")]
pub fn missing(what: &str, why: &str) {
    if in_ci() {
        panic!("{what} cannot run in CI: {why} (.ci/run installs and starts everything the tests need)");
    }
    eprintln!("skipping {what}: {why}");
}

/// The value of `var`, or `None` after [`missing`] (which fails in CI).
pub fn env(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            missing(what, &format!("{var} is not set"));
            None
        }
    }
}

/// Whether `tool` runs (`tool ARG` starts); after [`missing`] when it does not.
pub fn tool(tool: &str, arg: &str, what: &str) -> bool {
    let runs = std::process::Command::new(tool).arg(arg).output().is_ok();
    if !runs {
        missing(what, &format!("`{tool}` is not on PATH"));
    }
    runs
}

/// Whether `path` exists; after [`missing`] when it does not.
pub fn file(path: &std::path::Path, what: &str) -> bool {
    let there = path.exists();
    if !there {
        missing(what, &format!("{} is not there", path.display()));
    }
    there
}
