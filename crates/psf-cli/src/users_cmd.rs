//! `psf users`: the people who may sign in to the console, and their roles.

use std::io::{self, BufRead as _, Write as _};
use std::process::ExitCode;

use psf_console::Role;
use psf_store::Store;

/// What `psf users` does.
#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Add a console user. The password is read from standard input with
    /// `--password-stdin`; otherwise a strong one is made and printed once.
    Create {
        /// What they sign in with.
        #[arg(long)]
        email: String,
        /// Their name, as the console shows it and the records name them.
        #[arg(long)]
        name: String,
        /// operator (incidents, kill switch, keys, erasure), reviewer (the review queue;
        /// the manifest must name them a reviewer of a decision point) or auditor (reads only).
        #[arg(long, value_parser = ["operator", "reviewer", "auditor"])]
        role: String,
        /// Read the password (one line, at least 12 characters) from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List console users (never their passwords).
    List,
    /// Set a new password (ends the user's sessions); made and printed once unless
    /// `--password-stdin`.
    Password {
        /// The user's email.
        email: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: their sessions end and they can no longer sign in.
    Disable {
        /// The user's email.
        email: String,
    },
}

fn fail(message: &str) -> io::Result<ExitCode> {
    eprintln!("psf: {message}");
    Ok(ExitCode::from(2))
}

/// The password given on standard input, or a new random one (and whether it was made).
fn password(from_stdin: bool) -> Result<(String, bool), String> {
    if from_stdin {
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
        let pw = line.trim_end_matches(['\r', '\n']).to_string();
        return Ok((pw, false));
    }
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a password: {e}"))?;
    // 24 characters of URL-safe base64: 144 bits.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(24);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        for shift in [18, 12, 6, 0] {
            out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
        }
    }
    Ok((out, true))
}

fn hashed(from_stdin: bool) -> Result<(String, Option<String>), String> {
    let (pw, made) = password(from_stdin)?;
    let phc = psf_console::hash_password(&pw)?;
    Ok((phc, made.then_some(pw)))
}

/// `psf users`.
pub fn run(command: UsersCommand, store: &str) -> io::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let s = match Store::open(store).await {
            Ok(s) => s,
            Err(e) => return fail(&e.to_string()),
        };
        let mut out = io::stdout().lock();
        let code = match command {
            UsersCommand::Create { email, name, role, password_stdin } => {
                if !email.contains('@') || name.trim().is_empty() || Role::parse(&role).is_none() {
                    return fail("a console user needs an email address, a name and a role");
                }
                let (phc, shown) = match hashed(password_stdin) {
                    Ok(x) => x,
                    Err(e) => return fail(&e),
                };
                match s.create_console_user(&email, name.trim(), &role, &phc).await {
                    Ok(u) => {
                        writeln!(out, "created console user {} ({}, {})", u.email, u.name, u.role)?;
                        if let Some(pw) = shown {
                            writeln!(out, "password: {pw}")?;
                            writeln!(out, "it is shown once; psf keeps only its argon2id hash")?;
                        }
                        if role == "reviewer" {
                            writeln!(out, "a reviewer decides only where the manifest lists {} under a decision point's `reviewers:`", u.email)?;
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => return fail(&e.to_string()),
                }
            }
            UsersCommand::List => match s.console_users().await {
                Ok(users) => {
                    writeln!(out, "{:<32} {:<9} {:<9} NAME", "EMAIL", "ROLE", "STATE")?;
                    for u in users {
                        let state = if u.disabled_ms.is_some() { "disabled" } else { "active" };
                        writeln!(out, "{:<32} {:<9} {:<9} {}", u.email, u.role, state, u.name)?;
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => return fail(&e.to_string()),
            },
            UsersCommand::Password { email, password_stdin } => {
                let (phc, shown) = match hashed(password_stdin) {
                    Ok(x) => x,
                    Err(e) => return fail(&e),
                };
                match s.set_console_password(&email, &phc).await {
                    Ok(true) => {
                        writeln!(out, "new password set for {email}; their sessions have ended")?;
                        if let Some(pw) = shown {
                            writeln!(out, "password: {pw}")?;
                        }
                        ExitCode::SUCCESS
                    }
                    Ok(false) => return fail(&format!("no console user `{email}`; `psf users list` shows them")),
                    Err(e) => return fail(&e.to_string()),
                }
            }
            UsersCommand::Disable { email } => match s.disable_console_user(&email).await {
                Ok(true) => {
                    writeln!(out, "disabled {email}; their sessions have ended")?;
                    ExitCode::SUCCESS
                }
                Ok(false) => return fail(&format!("no active console user `{email}`; `psf users list` shows them")),
                Err(e) => return fail(&e.to_string()),
            },
        };
        s.close().await;
        Ok(code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_passwords_are_long_and_differ() {
        let (a, made) = password(false).unwrap();
        let (b, _) = password(false).unwrap();
        assert!(made);
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        assert!(psf_console::hash_password(&a).is_ok());
    }
}
