//! `psf keys`: client API keys in the store — create (printed once, kept as its
//! SHA-256), list, revoke.

use std::io::{self, Write as _};
use std::path::Path;
use std::process::ExitCode;

use psf_store::Store;

use crate::serve_cmd::{fail, runtime};
use crate::{read_manifest, today};

/// What `psf keys` does.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key for an app; the key is printed once and stored only as its SHA-256.
    Create {
        /// The app (an `apps[].id` of the manifest).
        #[arg(long)]
        app: String,
        /// A note about who holds the key.
        #[arg(long)]
        label: Option<String>,
        /// The person every request with this key concerns (kept as a hash), so that
        /// `psf erase --subject` finds their records without an `x-psf-subject` header.
        #[arg(long)]
        subject: Option<String>,
    },
    /// List keys (ids, apps, dates; never the keys).
    List,
    /// Revoke a key by id; a running gateway refuses it within a second.
    Revoke {
        /// The key's id, as `psf keys list` shows it.
        id: String,
    },
}

/// `psf keys`.
pub fn keys(command: KeysCommand, manifest: &Path, store: &str) -> io::Result<ExitCode> {
    runtime()?.block_on(async {
        let s = match Store::open(store).await {
            Ok(s) => s,
            Err(e) => return fail(&e.to_string()),
        };
        let mut out = io::stdout().lock();
        match command {
            KeysCommand::Create { app, label, subject } => {
                // The app must exist, or the key would be accepted by nothing.
                if let Ok(text) = read_manifest(manifest) {
                    let known = psf_core::check(&text, &psf_core::CheckOptions { today: today() })
                        .manifest
                        .map(|m| m.apps.iter().any(|a| a.id == app));
                    if known == Some(false) {
                        return fail(&format!(
                            "{}: there is no app `{app}`; add it under `apps:` first",
                            manifest.display()
                        ));
                    }
                }
                match s.create_key(&app, label.as_deref(), subject.as_deref()).await {
                    Ok(k) => {
                        writeln!(out, "created key {} for app {app}", k.record.id)?;
                        writeln!(out, "API key: {}", k.secret)?;
                        writeln!(out, "it is shown once; psf keeps only its SHA-256")?;
                    }
                    Err(e) => return fail(&e.to_string()),
                }
            }
            KeysCommand::List => match s.keys().await {
                Ok(keys) => {
                    writeln!(out, "{:<18} {:<20} {:<8} LABEL", "ID", "APP", "STATE")?;
                    for k in keys {
                        let state = if k.revoked_ms.is_some() { "revoked" } else { "active" };
                        writeln!(out, "{:<18} {:<20} {:<8} {}", k.id, k.app, state, k.label.unwrap_or_default())?;
                    }
                }
                Err(e) => return fail(&e.to_string()),
            },
            KeysCommand::Revoke { id } => match s.revoke_key(&id).await {
                Ok(true) => writeln!(out, "revoked {id}")?,
                Ok(false) => return fail(&format!("no active key `{id}`; `psf keys list` shows the ids")),
                Err(e) => return fail(&e.to_string()),
            },
        }
        s.close().await;
        Ok(ExitCode::SUCCESS)
    })
}
