//! The map stays true to the ground: `docs/ARCHITECTURE.md` names every module of every
//! crate in that crate's section; its crate graph is the Cargo manifests' graph; only
//! psf-store knows SQL; psf-detect and psf-core do no IO; and no doc comment, README or
//! doc calls a shipped feature something still to come.
#![expect(
    clippy::panic,
    clippy::unwrap_used,
    reason = "the helpers read the repository; a file that cannot be read must fail the test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `.rs` files under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The workspace's crates, by name.
fn crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The `[dependencies]` of a crate's manifest (not dev-dependencies), by name.
fn dependencies(krate: &str) -> BTreeSet<String> {
    let text = read(&root().join("crates").join(krate).join("Cargo.toml"));
    let mut out = BTreeSet::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside
            && let Some(name) = line.split(['.', '=', ' ']).next().filter(|n| !n.is_empty() && !n.starts_with('#'))
        {
            out.insert(name.to_string());
        }
    }
    out
}

/// The text of the map's section for `krate`: from its `### \`crates/NAME\`` heading to
/// the next heading of that level or above.
fn section<'a>(map: &'a str, krate: &str) -> &'a str {
    let heading = format!("### `crates/{krate}`");
    let Some(start) = map.find(&heading) else { panic!("docs/ARCHITECTURE.md has no section `{heading}`") };
    let rest = &map[start + heading.len()..];
    let end = rest.find("\n### ").into_iter().chain(rest.find("\n## ")).min().unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn every_module_is_on_the_map_in_its_crate_section() {
    let map = read(&root().join("docs/ARCHITECTURE.md"));
    let mut missing = Vec::new();
    for krate in crates() {
        let text = section(&map, &krate);
        let src = root().join("crates").join(&krate).join("src");
        for file in sources(&src) {
            let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
            if rel == "lib.rs" || rel == "main.rs" {
                continue;
            }
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            // `pii/mod.rs` is the module `pii/`; others go by their path or file name.
            let named = text.contains(&format!("`{rel}`"))
                || text.contains(&format!("`{name}`"))
                || (name == "mod.rs" && text.contains(&format!("`{}/`", rel.trim_end_matches("/mod.rs"))));
            if !named {
                missing.push(format!("crates/{krate}/src/{rel}"));
            }
        }
    }
    assert!(missing.is_empty(), "modules missing from docs/ARCHITECTURE.md's code map:\n{}", missing.join("\n"));
}

#[test]
fn the_written_crate_graph_is_the_cargo_graph() {
    let map = read(&root().join("docs/ARCHITECTURE.md"));
    let start =
        map.find("<!-- crate graph -->").expect("docs/ARCHITECTURE.md marks its crate graph with <!-- crate graph -->");
    let block = &map[start..];
    let body = block.split("```").nth(1).expect("the crate graph is a code block after its marker");
    let mut written: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in body.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let (krate, deps) = line.split_once(" ← ").unwrap_or((line.trim(), ""));
        let deps = deps.split(", ").map(str::trim).filter(|d| !d.is_empty() && *d != "nothing of psf");
        written.insert(krate.trim().to_string(), deps.map(str::to_string).collect());
    }
    let actual: BTreeMap<String, BTreeSet<String>> = crates()
        .into_iter()
        .map(|c| {
            let deps = dependencies(&c).into_iter().filter(|d| d.starts_with("psf-")).collect();
            (c, deps)
        })
        .collect();
    assert_eq!(written, actual, "docs/ARCHITECTURE.md's crate graph differs from the Cargo manifests");
}

/// Source text outside `#[cfg(test)]` modules (they come last in psf's files).
fn non_test(path: &Path) -> String {
    let text = read(path);
    text.split("#[cfg(test)]").next().unwrap_or_default().to_string()
}

#[test]
fn only_psf_store_knows_sql() {
    for krate in crates().into_iter().filter(|c| c != "psf-store") {
        assert!(!dependencies(&krate).contains("sqlx"), "{krate} depends on sqlx; SQL belongs in psf-store");
        for file in sources(&root().join("crates").join(&krate).join("src")) {
            assert!(!read(&file).contains("sqlx::"), "{} uses sqlx; SQL belongs in psf-store", file.display());
        }
    }
}

#[test]
fn psf_detect_and_psf_core_do_no_io() {
    const IO: [&str; 8] =
        ["std::fs::", "File::open", "TcpStream", "TcpListener", "UdpSocket", "std::process::", "tokio", "reqwest"];
    for krate in ["psf-detect", "psf-core"] {
        for dep in ["tokio", "reqwest", "sqlx", "axum"] {
            assert!(!dependencies(krate).contains(dep), "{krate} depends on {dep}: it must do no IO");
        }
        for file in sources(&root().join("crates").join(krate).join("src")) {
            let text = non_test(&file);
            for io in IO {
                assert!(!text.contains(io), "{} uses {io}: {krate} does no IO", file.display());
            }
        }
    }
}

#[test]
fn nothing_shipped_is_called_planned() {
    const STALE: [&str; 12] = [
        "has not landed",
        "not landed yet",
        "once it lands",
        "once it exists",
        "once the gateway exists",
        "coming soon",
        "yet to come",
        "is planned",
        "are planned",
        "arrives with",
        "arrive with the issues",
        "not implemented yet",
    ];
    let mut files: Vec<PathBuf> =
        crates().iter().flat_map(|c| sources(&root().join("crates").join(c).join("src"))).collect();
    files.push(root().join("README.md"));
    files.extend(std::fs::read_dir(root().join("docs")).unwrap().flatten().map(|e| e.path()));
    files.extend(crates().iter().map(|c| root().join("crates").join(c).join("Cargo.toml")));
    let mut stale = Vec::new();
    for file in files {
        let text = read(&file).to_lowercase();
        for (n, line) in text.lines().enumerate() {
            if let Some(phrase) = STALE.iter().find(|p| line.contains(*p)) {
                stale.push(format!("{}:{}: \"{phrase}\"", file.display(), n + 1));
            }
        }
    }
    // This file names the phrases; it is a test, not a source of the crates above.
    assert!(stale.is_empty(), "text that calls a shipped feature planned:\n{}", stale.join("\n"));
}
