//! Signed attestations: an assessment as an in-toto v1 Statement, signed with Ed25519 in a
//! DSSE envelope, so an auditor can check that a report came from a given key and is about
//! a given manifest, byte for byte.
//!
//! - The Statement's subject is the manifest (its path and SHA-256); its predicate is the
//!   whole assessment (`psf.assessment/v1`).
//! - The signature covers DSSE's pre-authentication encoding of the payload type and the
//!   payload, never the JSON re-serialised: what is verified is what was signed.
//! - Keys: `psf keygen` writes the private key as base64 PKCS#8 and the public key as base64
//!   of its 32 bytes; a key's id is the first 16 hex digits of the public key's SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::Assessment;
use crate::context::sha256_hex;

/// The DSSE payload type of an in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of a psf assessment.
pub const PREDICATE_TYPE: &str = "https://github.com/psf-rs/psf/blob/main/docs/assessment-schema.md#v1";
/// The in-toto predicate type of a knowledge-check certificate (`psf exam`).
pub const CERTIFICATE_PREDICATE_TYPE: &str = "https://github.com/psf-rs/psf/blob/main/docs/knowledge-check.md#v1";

/// Why signing or verifying failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestError(pub String);

impl std::fmt::Display for AttestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AttestError {}

fn err(message: impl Into<String>) -> AttestError {
    AttestError(message.into())
}

/// A new key pair: `(private key file text, public key file text)`.
pub fn generate() -> Result<(String, String), AttestError> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| err("no randomness for a key"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| err("a fresh key did not parse"))?;
    Ok((format!("{}\n", B64.encode(pkcs8.as_ref())), format!("{}\n", B64.encode(pair.public_key().as_ref()))))
}

/// The hex SHA-256 of a file's bytes, as a Statement's subject carries it.
pub fn digest(bytes: &[u8]) -> String {
    sha256_hex(bytes)
}

/// The id of a public key (its bytes).
pub fn key_id(public: &[u8]) -> String {
    sha256_hex(public)[..16].to_string()
}

/// A private key, read from the text `psf keygen` wrote.
#[derive(Debug)]
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl SigningKey {
    /// Reads a private key file's text.
    pub fn from_text(text: &str) -> Result<SigningKey, AttestError> {
        let der = B64.decode(text.trim()).map_err(|e| err(format!("the key is not base64: {e}")))?;
        let pair = Ed25519KeyPair::from_pkcs8(&der)
            .map_err(|_| err("the key is not an Ed25519 PKCS#8 private key (as `psf keygen` writes)"))?;
        Ok(SigningKey { pair })
    }

    /// Its id.
    pub fn key_id(&self) -> String {
        key_id(self.pair.public_key().as_ref())
    }
}

/// DSSE's pre-authentication encoding.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The in-toto Statement of an assessment: its first subject is the manifest, and
/// `files` (path and hex SHA-256, e.g. an export bundle's) follow.
pub fn statement(a: &Assessment, files: &[(String, String)]) -> Value {
    // Subjects are named relative to what is signed, never by the assessor's paths: the
    // manifest's file name, or its place in the bundle.
    let base = std::path::Path::new(&a.manifest.file)
        .file_name()
        .map_or_else(|| a.manifest.file.clone(), |n| n.to_string_lossy().to_string());
    let name = if files.is_empty() { base } else { format!("manifest/{base}") };
    let mut subject = vec![json!({"name": name, "digest": {"sha256": a.manifest.sha256}})];
    subject.extend(files.iter().map(|(name, sha256)| json!({"name": name, "digest": {"sha256": sha256}})));
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": a,
    })
}

/// The signed envelope of an assessment, as JSON text.
pub fn sign(a: &Assessment, key: &SigningKey) -> String {
    sign_bundle(a, key, &[])
}

/// The signed envelope of an assessment and the files that go with it (`psf export`).
pub fn sign_bundle(a: &Assessment, key: &SigningKey, files: &[(String, String)]) -> String {
    sign_statement(&statement(a, files), key)
}

/// A knowledge-check certificate: an in-toto Statement whose subject is the question
/// bank (its SHA-256) and whose predicate names the person, the day, the bank's version
/// and the score.
pub fn certificate(bank_sha256: &str, predicate: &Value, key: &SigningKey) -> String {
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "psf-knowledge-check-bank", "digest": {"sha256": bank_sha256}}],
        "predicateType": CERTIFICATE_PREDICATE_TYPE,
        "predicate": predicate,
    });
    sign_statement(&statement, key)
}

/// Any Statement, signed in a DSSE envelope.
fn sign_statement(statement: &Value, key: &SigningKey) -> String {
    let payload = statement.to_string();
    let sig = key.pair.sign(&pae(PAYLOAD_TYPE, payload.as_bytes()));
    let envelope = json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": B64.encode(payload.as_bytes()),
        "signatures": [{"keyid": key.key_id(), "sig": B64.encode(sig.as_ref())}],
    });
    serde_json::to_string_pretty(&envelope).map_or_else(|e| format!("{{\"error\": \"{e}\"}}"), |s| s + "\n")
}

/// A verified attestation.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The key that signed it.
    pub key_id: String,
    /// The Statement.
    pub statement: Value,
}

impl Verified {
    /// Whether it is a knowledge-check certificate rather than an assessment.
    pub fn is_certificate(&self) -> bool {
        self.statement["predicateType"] == CERTIFICATE_PREDICATE_TYPE
    }

    /// The manifest the assessment is about: `(path, sha256)`.
    pub fn subject(&self) -> Option<(&str, &str)> {
        self.subjects().into_iter().next()
    }

    /// Every subject, `(path, sha256)`: the manifest, then any bundle files.
    pub fn subjects(&self) -> Vec<(&str, &str)> {
        self.statement["subject"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s.get("name")?.as_str()?, s.pointer("/digest/sha256")?.as_str()?)))
            .collect()
    }
}

/// Verifies an envelope against a public key file's text.
pub fn verify(envelope: &str, public_key: &str) -> Result<Verified, AttestError> {
    let public = B64.decode(public_key.trim()).map_err(|e| err(format!("the public key is not base64: {e}")))?;
    if public.len() != 32 {
        return Err(err("the public key is not 32 bytes of Ed25519 (as `psf keygen` writes)"));
    }
    let env: Value = serde_json::from_str(envelope).map_err(|e| err(format!("the attestation is not JSON: {e}")))?;
    if env["payloadType"] != PAYLOAD_TYPE {
        return Err(err(format!("payload type is {}, not {PAYLOAD_TYPE}", env["payloadType"])));
    }
    let payload = env["payload"]
        .as_str()
        .ok_or_else(|| err("the envelope has no payload"))
        .and_then(|p| B64.decode(p).map_err(|e| err(format!("the payload is not base64: {e}"))))?;
    let id = key_id(&public);
    let key = UnparsedPublicKey::new(&ED25519, &public);
    let signed = pae(PAYLOAD_TYPE, &payload);
    let ok = env["signatures"].as_array().into_iter().flatten().any(|s| {
        let sig = s["sig"].as_str().and_then(|b| B64.decode(b).ok());
        sig.is_some_and(|sig| key.verify(&signed, &sig).is_ok())
    });
    if !ok {
        return Err(err(format!("no signature in the envelope verifies with key {id}")));
    }
    let statement: Value =
        serde_json::from_slice(&payload).map_err(|e| err(format!("the signed payload is not JSON: {e}")))?;
    let known =
        statement["predicateType"] == PREDICATE_TYPE || statement["predicateType"] == CERTIFICATE_PREDICATE_TYPE;
    if statement["_type"] != STATEMENT_TYPE || !known {
        return Err(err("the signed payload is not a psf assessment or knowledge-check Statement"));
    }
    Ok(Verified { key_id: id, statement })
}
