//! The path actbridge judges is the path the app serves: a differential test through the
//! real Envoy. A generated corpus of spellings of each guarded path (percent-encoding,
//! double encoding, dot segments plain and encoded, `//`, `;` parameters, `..;`,
//! backslashes, bad escapes, a bypass prefix climbed out of) is sent as raw HTTP/1.1; the
//! app records the path it was asked for. For every request: either it was refused, or
//! no reading of the recorded path that an app might make (decode once, decode twice,
//! `\` as `/`, `;` parameters dropped, dot segments resolved, slashes merged) lands on
//! what the guard protects. A few plain spellings must get through, so the assertion is
//! never vacuous.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::net::raw_http;
use crate::support::world::{AGENT, Sts, World, policies_dir, sidecar_head};

/// summarizer-tech's sidecar with a bypass prefix, a single-use path, an introspected
/// prefix (at the token service) and the demo policy judging every inbound request.
fn config(sts: &Sts) -> String {
    sidecar_head(sts, AGENT)
        + &format!(
            r#"    introspection:
      endpoint: {introspection}
inbound:
  bypass_paths:
    - prefix: /public/
  single_use_paths:
    - exact: /tool/run
  introspect_paths:
    - prefix: /checked/
outbound:
  token_endpoint: {token}
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_basic, secret: summarizer-tech-demo-secret}}
policy:
  dir: {policies}
"#,
            introspection = sts.service.introspection_endpoint(),
            token = sts.service.token_endpoint(),
            policies = policies_dir().display(),
        )
}

/// Every reading of `path` an app might make: decoded once or twice, with or without
/// `\` as a separator and `;` parameters dropped, with or without trailing dots and
/// spaces dropped from segments (Windows), dot segments resolved, slashes merged.
fn readings(path: &str) -> Vec<String> {
    let path = path.split('?').next().unwrap_or("");
    let once = decode(path);
    let twice = decode(&once);
    let mut out = Vec::new();
    for p in [path.to_string(), once, twice] {
        for backslash in [false, true] {
            for params in [false, true] {
                let mut q = p.clone();
                if backslash {
                    q = q.replace('\\', "/");
                }
                let resolved = resolve(&q, params);
                let windows: Vec<&str> = resolved
                    .split('/')
                    .map(|s| s.trim_end_matches(['.', ' ']))
                    .collect();
                out.push(resolve(&windows.join("/"), params));
                out.push(resolved);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Lenient percent-decoding (bad escapes kept as they are).
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Merges slashes, drops `;…` of each segment when `params`, resolves `.` and `..`.
fn resolve(path: &str, params: bool) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        let seg = if params {
            seg.split(';').next().unwrap_or("")
        } else {
            seg
        };
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Whether `reading` is `guarded` or below it, by whole segments.
fn under(reading: &str, guarded: &str) -> bool {
    let g = guarded.trim_end_matches('/');
    reading == g || reading.starts_with(&format!("{g}/"))
}

/// Spellings of `target` (a path of plain segments): each mutation alone, then random
/// pairs (a fixed seed, so a failure is reproducible).
fn spellings(target: &str) -> Vec<String> {
    let mut out = vec![target.to_string()];
    let bytes: Vec<(usize, char)> = target.char_indices().collect();
    for &(i, c) in &bytes {
        let (head, tail) = target.split_at(i);
        let tail = &tail[c.len_utf8()..];
        if c == '/' {
            for sep in [
                "//", "/./", "/x/../", "/%2e/", "/%2E%2E/", "%2f", "%2F", "\\", "%5c", "/;/",
                "/.%2e/", "/%252e/", "%252f", "/..;/x/", ";x/",
            ] {
                out.push(format!("{head}{sep}{tail}"));
            }
        } else {
            let b = c as u32;
            for enc in [
                format!("%{b:02x}"),
                format!("%{b:02X}"),
                format!("%25{b:02x}"),
                format!("%u00{b:02x}"),
                format!("%+{:x}", b & 0xf),
                c.to_ascii_uppercase().to_string(),
            ] {
                out.push(format!("{head}{enc}{tail}"));
            }
        }
    }
    for suffix in [
        "/", "/.", "/..", ";v=1", "..;", "%2e", "/%2e", "%00", "%", "%2", "?x=1", "#f", "/x/..",
        "%2f", "\\", "/;",
    ] {
        out.push(format!("{target}{suffix}"));
    }
    let mut rng = StdRng::seed_from_u64(19);
    let singles = out.clone();
    for _ in 0..60 {
        let a = &singles[rng.random_range(0..singles.len())];
        let b = &singles[rng.random_range(0..singles.len())];
        // Splice: a's start, b's end, at the same cut in the target's coordinates.
        let cut = rng.random_range(1..target.len());
        let (Some(x), Some(y)) = (a.get(..cut), b.get(cut.min(b.len())..)) else {
            continue;
        };
        out.push(format!("{x}{y}"));
    }
    out.sort();
    out.dedup();
    out
}

/// Sends `GET path` with `token` (if any); `Some(status)` or `None` when Envoy closed.
async fn get(world: &World, path: &str, token: Option<&str>) -> Option<u16> {
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nhost: app\r\n{auth}connection: close\r\n\r\n");
    raw_http(world.envoy.inbound_port, req.as_bytes())
        .await
        .map(|(status, _)| status)
}

/// Sends every spelling of `corpus` (eight at a time, each tagged `?n=<index>` so what
/// the app records can be traced back to it) and returns how many were not answered 200,
/// and each path the app recorded with the spelling that caused it.
async fn send_all(
    world: &World,
    corpus: &[String],
    token: Option<&str>,
) -> (usize, Vec<(String, String)>) {
    use futures::StreamExt;
    let before = world.app.count();
    let statuses: Vec<Option<u16>> = futures::stream::iter(corpus.iter().enumerate())
        .map(|(i, path)| {
            let tagged = match path.contains('?') {
                true => format!("{path}&n={i}"),
                false => format!("{path}?n={i}"),
            };
            async move { get(world, &tagged, token).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let refused = statuses.iter().filter(|s| **s != Some(200)).count();
    let recorded = world
        .app
        .seen()
        .into_iter()
        .skip(before)
        .map(|seen| {
            let sent = seen
                .path
                .rsplit_once("n=")
                .and_then(|(_, n)| n.parse::<usize>().ok())
                .and_then(|n| corpus.get(n))
                .cloned()
                .unwrap_or_else(|| "(untagged)".to_string());
            (sent, seen.path)
        })
        .collect();
    (refused, recorded)
}

#[tokio::test]
async fn no_spelling_climbs_out_of_a_bypass_prefix() {
    let sts = Sts::start().await;
    let config = config(&sts);
    let world = World::start_with(sts, &config).await;
    let mut corpus = Vec::new();
    for target in ["/admin/secrets", "/checked/pay"] {
        for climb in ["/public/..", "/public/%2e%2e", "/public/..;"] {
            corpus.extend(spellings(target).into_iter().map(|s| format!("{climb}{s}")));
        }
    }
    corpus.extend(spellings("/public/file.txt"));
    let (_, recorded) = send_all(&world, &corpus, None).await;
    for (sent, seen) in &recorded {
        for r in readings(seen) {
            assert!(
                under(&r, "/public/"),
                "{sent:?} reached the app as {seen:?}, read as {r:?}: outside the bypass"
            );
        }
    }
    let reached = recorded.len();
    eprintln!("{} spellings, {reached} reached the app", corpus.len());
    assert!(
        reached >= 3,
        "no bypass spelling got through: the test is vacuous"
    );
}

#[tokio::test]
async fn no_spelling_replays_a_single_use_token_or_skips_introspection_or_the_policy() {
    let sts = Sts::start().await;
    let config = config(&sts);
    let world = World::start_with(sts, &config).await;

    // Single use: the token is used once on /tool/run; every other spelling of that path
    // with the same token must not reach /tool/run.
    let token = world.sts.alice().await;
    assert_eq!(get(&world, "/tool/run", Some(&token)).await, Some(200));
    // Introspection: a revoked token must not reach anything under /checked/.
    let revoked = world.sts.alice().await;
    let r = world
        .http
        .post(world.sts.service.revocation_endpoint())
        .form(&[
            ("client_id", crate::support::world::PORTAL),
            ("client_secret", crate::support::world::PORTAL_SECRET),
            ("token", revoked.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(get(&world, "/checked/pay", Some(&revoked)).await, Some(401));
    // The policy: alice (engineering) may read DOC-001, not HR's DOC-004.
    let alice = world.sts.alice().await;
    assert_eq!(
        get(&world, "/documents/DOC-001", Some(&alice)).await,
        Some(200)
    );
    assert_eq!(
        get(&world, "/documents/DOC-004", Some(&alice)).await,
        Some(403)
    );

    let cases: [(&str, &str, &str); 3] = [
        ("/tool/run", &token, "/tool/run"),
        ("/checked/pay", &revoked, "/checked/"),
        ("/documents/DOC-004", &alice, "/documents/DOC-004"),
    ];
    for (target, token, guarded) in cases {
        let corpus = spellings(target);
        let (refused, recorded) = send_all(&world, &corpus, Some(token)).await;
        for (sent, seen) in &recorded {
            for r in readings(seen) {
                assert!(
                    !under(&r, guarded),
                    "{sent:?} reached the app as {seen:?}, read as {r:?}: the guard on {guarded} was skipped"
                );
            }
        }
        let reached = recorded.len();
        eprintln!(
            "{target}: {} spellings, {refused} refused, {reached} reached the app elsewhere",
            corpus.len()
        );
        assert!(refused > 0);
    }
    // The plain spellings of other paths still get through (the test is not vacuous).
    let before = world.app.count();
    assert_eq!(
        get(&world, "/documents/DOC-001/", Some(&alice)).await,
        Some(200)
    );
    assert_eq!(
        get(&world, "/%64ocuments/DOC-001", Some(&alice)).await,
        Some(200)
    );
    assert_eq!(world.app.count(), before + 2);
}
