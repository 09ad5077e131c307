//! One run names every problem in the file, each at its line: parse errors in several
//! sections and list items, and the validation errors of what did parse.

use super::*;

/// Each problem as (line, key).
fn located(yaml: &str) -> Vec<(Option<usize>, String)> {
    match Config::from_yaml(yaml, &env()).unwrap_err() {
        ConfigError::Several { problems, .. } => problems
            .iter()
            .map(|(line, e)| (*line, e.key().unwrap_or("-").to_string()))
            .collect(),
        other => panic!("not located: {other}"),
    }
}

const FILE: &str = "listen:
  ext_proc: tcp://127.0.0.1:9001
issuers:
  - issuer: http://127.0.0.1:1/realms/demo
    audiences: [a]
    algorithms: [HS256]
  - issuer: http://127.0.0.1:2/realms/demo
    leeway: 1h
outbound:
  token_endpoint: http://127.0.0.1:1/t
  client: {client_id: c, auth: {method: client_secret_post}}
  routes:
    - host: a.example
      action: exchnage
    - host: b.example
      action: exchange
    - host: c.example
      action: deny
      colour: red
    - host: d.example
      action: passthrough
      forward_authorization: sometimes
telemetry:
  sample_ratio: 2
";

#[test]
fn every_problem_is_named_at_its_line_in_the_files_order() {
    let got = located(FILE);
    let want: Vec<(Option<usize>, String)> = [
        (6, "issuers[0].algorithms"),
        (8, "issuers[1].leeway"),
        (11, "outbound.client.auth"),
        (14, "outbound.routes[0].action"),
        // Validated with routes 0 and 2 set aside: its index is still the file's.
        (15, "outbound.routes[1].audience"),
        (19, "outbound.routes[2].colour"),
        (22, "outbound.routes[3].forward_authorization"),
        (24, "telemetry.sample_ratio"),
    ]
    .into_iter()
    .map(|(l, k)| (Some(l), k.to_string()))
    .collect();
    assert_eq!(got, want);
    let text = Config::from_yaml(FILE, &env()).unwrap_err().to_string();
    assert!(
        text.starts_with("line 6: config key `issuers[0].algorithms`"),
        "{text}"
    );
    assert!(text.ends_with("8 problems"), "{text}");
    // A misspelt closed value names the allowed ones, not another key.
    assert!(
        text.contains("unknown variant `exchnage`, expected one of `exchange`"),
        "{text}"
    );
}

#[test]
fn a_file_with_one_problem_names_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("actbridge.yaml");
    std::fs::write(
        &path,
        "listen:\n  ext_proc: tcp://127.0.0.1:9001\nissuers:\n  - issuer: http://x/r\n    leeway: 1h\n",
    )
    .unwrap();
    let text = Config::load(&path, &env()).unwrap_err().to_string();
    assert_eq!(
        text,
        format!(
            "{}:5: config key `issuers[0].leeway`: must be at most 5m",
            path.display()
        )
    );
}

/// What a part that failed to parse would make another section say is not reported: a
/// route naming a credential that did not parse is not called unknown.
#[test]
fn no_complaint_comes_from_a_part_set_aside() {
    let yaml = "listen: {ext_proc: 'tcp://127.0.0.1:9001'}
issuers: [{issuer: 'http://x/r', audiences: [a]}]
outbound:
  token_endpoint: http://x/t
  client: {client_id: c, auth: {method: client_secret_post, secret: s}}
  routes:
    - {host: s3.example, action: credential, credential: docs, mode: sign, cluster: s3}
credentials:
  - name: docs
    aws_sts: {role_arn: 'arn:aws:iam::000000000000:role/r', region: us-east-1, bucket: b, sessions_tag: true}
policy: {dir: policies}
";
    let got = located(yaml);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "credentials[0].aws_sts.sessions_tag");
    assert_eq!(got[0].0, Some(10));
}

/// A YAML syntax error is one problem, at its line.
#[test]
fn a_syntax_error_is_reported_at_its_line() {
    let text = Config::from_yaml("listen:\n  ext_proc: [\n", &env())
        .unwrap_err()
        .to_string();
    assert!(text.contains("line 3") || text.contains("line 2"), "{text}");
}
