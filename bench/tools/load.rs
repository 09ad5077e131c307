//! A small load generator for the cases oha cannot drive: every request carries a
//! different bearer token (the cold exchange, the cache fill). It works like oha:
//! `--rate` sends at a fixed rate through `--concurrency` connections, and a request's
//! latency counts from the tick that released it, so time spent queued behind a slow
//! answer is counted (oha's `--latency-correction`); without `--rate` each connection
//! sends as fast as it is answered. It prints one JSON object with the figures.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::sync::{Mutex, mpsc};

/// `bench-tools load`.
#[derive(clap::Args)]
pub struct Args {
    /// The URL requested (GET).
    #[arg(long)]
    url: String,
    /// The `Host` header (default: the URL's).
    #[arg(long)]
    host: Option<String>,
    /// One bearer token per line; each is sent once, in order.
    #[arg(long)]
    tokens: PathBuf,
    /// Requests per second (open loop); without it, as fast as answered.
    #[arg(long)]
    rate: Option<f64>,
    /// Stop after this many seconds (or when the tokens run out).
    #[arg(long)]
    duration: Option<f64>,
    /// Connections (at most this many requests in flight).
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
}

struct Outcome {
    status: Option<u16>,
    latency: Duration,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.tokens)
        .with_context(|| format!("{}", args.tokens.display()))?;
    let mut tokens: Vec<String> = text.lines().map(|l| format!("Bearer {l}")).collect();
    if let (Some(rate), Some(secs)) = (args.rate, args.duration) {
        tokens.truncate((rate * secs).round() as usize);
    }
    let tokens = Arc::new(tokens);
    let rt = tokio::runtime::Runtime::new()?;
    let (outcomes, elapsed) = rt.block_on(drive(&args, tokens.clone()))?;
    let mut lat: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    lat.sort_unstable();
    let pct = |q: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((q * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i].as_secs_f64()
    };
    let mut statuses = std::collections::BTreeMap::<String, u64>::new();
    let mut errors = 0u64;
    for o in &outcomes {
        match o.status {
            Some(s) => *statuses.entry(s.to_string()).or_default() += 1,
            None => errors += 1,
        }
    }
    let out = json!({
        "requests": outcomes.len(),
        "errors": errors,
        "statuses": statuses,
        "elapsed": elapsed.as_secs_f64(),
        "rate": outcomes.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99),
        "max": lat.last().map_or(0.0, Duration::as_secs_f64),
    });
    println!("{out}");
    Ok(())
}

async fn drive(args: &Args, tokens: Arc<Vec<String>>) -> anyhow::Result<(Vec<Outcome>, Duration)> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(10))
        .build()?;
    let url: reqwest::Url = args.url.parse().context("--url")?;
    let host = args.host.clone();
    let next = Arc::new(AtomicUsize::new(0));
    // Ticks: with a rate, a ticker releases one request per interval; without, every
    // worker takes the next token as soon as it is free.
    let ticks = if let Some(rate) = args.rate {
        let (tx, rx) = mpsc::unbounded_channel::<Instant>();
        let n = tokens.len();
        let start = Instant::now();
        tokio::spawn(async move {
            for i in 0..n {
                let at = start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
                if tx.send(Instant::now()).is_err() {
                    return;
                }
            }
        });
        Some(Arc::new(Mutex::new(rx)))
    } else {
        None
    };
    let started = Instant::now();
    let deadline = args.duration.map(|d| started + Duration::from_secs_f64(d));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, url, host, tokens, next, ticks) = (
            client.clone(),
            url.clone(),
            host.clone(),
            tokens.clone(),
            next.clone(),
            ticks.clone(),
        );
        workers.spawn(async move {
            let mut seen = Vec::new();
            loop {
                let released = match &ticks {
                    Some(rx) => match rx.lock().await.recv().await {
                        Some(t) => t,
                        None => break,
                    },
                    None => Instant::now(),
                };
                if deadline.is_some_and(|d| released >= d) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(token) = tokens.get(i) else { break };
                let mut req = client
                    .get(url.clone())
                    .header(http::header::AUTHORIZATION, token);
                if let Some(h) = &host {
                    req = req.header(http::header::HOST, h);
                }
                let status = match req.send().await {
                    Ok(resp) => {
                        let s = resp.status().as_u16();
                        let _ = resp.bytes().await;
                        Some(s)
                    }
                    Err(_) => None,
                };
                seen.push(Outcome {
                    status,
                    latency: released.elapsed(),
                });
            }
            seen
        });
    }
    let mut all = Vec::with_capacity(tokens.len());
    while let Some(r) = workers.join_next().await {
        all.extend(r?);
    }
    Ok((all, started.elapsed()))
}
