//! Keys and token pools. A pool copies a real token the token service issued (header and
//! claims, the nested `act` chain included) and gives each copy its own `jti`, `iat` and
//! `exp`, signed with the same key (`actbridge sts --signing-key` takes the RSA key
//! written here), so that every copy is a distinct token actbridge and the token service
//! accept — without a round trip per token while the pool is made.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// `bench-tools keygen`.
#[derive(clap::Args)]
pub struct KeygenArgs {
    /// `rsa` (RSA-2048, for the token service) or `ed25519`.
    #[arg(long)]
    kind: String,
    /// The private key, PKCS#8 PEM.
    #[arg(long)]
    out: PathBuf,
    /// For `ed25519`: also write the public key as a JWKS here.
    #[arg(long)]
    jwks: Option<PathBuf>,
    /// The `kid` in that JWKS.
    #[arg(long, default_value = "bench-ed25519")]
    kid: String,
}

/// `bench-tools mint`.
#[derive(clap::Args)]
pub struct MintArgs {
    /// The signing key (PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
    /// `RS256` or `EdDSA`.
    #[arg(long, default_value = "RS256")]
    alg: String,
    /// The token to copy (a file holding it).
    #[arg(long)]
    template: PathBuf,
    /// How many tokens.
    #[arg(long)]
    count: usize,
    /// Where (one token per line).
    #[arg(long)]
    out: PathBuf,
    /// Replace `iss`.
    #[arg(long)]
    iss: Option<String>,
    /// Replace the header's `kid` (default: the template's).
    #[arg(long)]
    kid: Option<String>,
    /// Lifetime of each token, seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
}

use actbridge_sts::pem::encode as pem;

pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    match args.kind.as_str() {
        "rsa" => {
            let pair = KeyPair::generate(KeySize::Rsa2048)
                .map_err(|e| anyhow::anyhow!("RSA-2048 generation: {e}"))?;
            let der = pair
                .as_der()
                .map_err(|e| anyhow::anyhow!("PKCS#8 encoding: {e}"))?;
            std::fs::write(&args.out, pem("PRIVATE KEY", der.as_ref()))?;
        }
        "ed25519" => {
            let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|e| anyhow::anyhow!("Ed25519 generation: {e}"))?;
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref())
                .map_err(|e| anyhow::anyhow!("Ed25519 parse: {e}"))?;
            std::fs::write(&args.out, pem("PRIVATE KEY", doc.as_ref()))?;
            if let Some(path) = &args.jwks {
                let jwk = json!({
                    "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                    "kid": args.kid,
                    "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                });
                std::fs::write(path, json!({ "keys": [jwk] }).to_string())?;
            }
        }
        other => bail!("--kind {other}: rsa or ed25519"),
    }
    Ok(())
}

fn decode_part(part: &str) -> anyhow::Result<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).context("base64url")?;
    serde_json::from_slice(&bytes).context("JSON")
}

pub fn mint(args: MintArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.template)
        .with_context(|| format!("{}", args.template.display()))?;
    let parts: Vec<&str> = text.trim().split('.').collect();
    let [head, body, _] = parts[..] else {
        bail!("the template is not a JWS compact token");
    };
    let template_header = decode_part(head)?;
    let claims = decode_part(body)?;
    let pem = std::fs::read(&args.key)?;
    let (alg, key) = match args.alg.as_str() {
        "RS256" => (Algorithm::RS256, EncodingKey::from_rsa_pem(&pem)?),
        "EdDSA" => (Algorithm::EdDSA, EncodingKey::from_ed_pem(&pem)?),
        other => bail!("--alg {other}: RS256 or EdDSA"),
    };
    let mut header = Header::new(alg);
    header.typ = Some("JWT".into());
    header.kid = args
        .kid
        .clone()
        .or_else(|| template_header["kid"].as_str().map(str::to_owned));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per = args.count.div_ceil(threads.max(1)).max(1);
    let chunks: Vec<anyhow::Result<Vec<String>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.count)
            .step_by(per)
            .map(|start| {
                let (header, key, claims, iss) = (&header, &key, &claims, &args.iss);
                let end = (start + per).min(args.count);
                s.spawn(move || {
                    let mut out = Vec::with_capacity(end - start);
                    for _ in start..end {
                        let mut c = claims.clone();
                        c["jti"] = json!(uuid::Uuid::new_v4().to_string());
                        c["iat"] = json!(now);
                        c["exp"] = json!(now + args.ttl);
                        if c.get("nbf").is_some() {
                            c["nbf"] = json!(now);
                        }
                        if let Some(iss) = iss {
                            c["iss"] = json!(iss);
                        }
                        out.push(jsonwebtoken::encode(header, &c, key)?);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signing thread"))
            .collect()
    });
    let mut file = std::io::BufWriter::new(std::fs::File::create(&args.out)?);
    for chunk in chunks {
        for token in chunk? {
            writeln!(file, "{token}")?;
        }
    }
    file.flush()?;
    Ok(())
}
