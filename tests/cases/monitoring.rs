//! The shipped Grafana dashboard and PrometheusRule alerts (deploy/monitoring/) query
//! what actbridge exports: every expression parses as PromQL (promql-parser, the parser
//! GreptimeDB uses), and every metric it names is in docs/observability.md's table and,
//! for those a plain sidecar has, in a real sidecar's `/metrics`.

use std::collections::BTreeSet;

use promql_parser::parser::{self, Expr};

use crate::support::world::World;

fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every metric name `expr` selects.
fn metric_names(expr: &Expr, out: &mut BTreeSet<String>) {
    match expr {
        Expr::Aggregate(a) => {
            metric_names(&a.expr, out);
            if let Some(p) = &a.param {
                metric_names(p, out);
            }
        }
        Expr::Unary(u) => metric_names(&u.expr, out),
        Expr::Binary(b) => {
            metric_names(&b.lhs, out);
            metric_names(&b.rhs, out);
        }
        Expr::Paren(p) => metric_names(&p.expr, out),
        Expr::Subquery(s) => metric_names(&s.expr, out),
        Expr::VectorSelector(vs) => out.extend(vs.name.clone()),
        Expr::MatrixSelector(ms) => out.extend(ms.vs.name.clone()),
        Expr::Call(c) => {
            for a in &c.args.args {
                metric_names(a, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// The family a sample or series name belongs to (`_bucket`, `_sum`, `_count` of a
/// histogram; `_total` is part of a counter's documented name).
fn family(name: &str) -> &str {
    ["_bucket", "_sum", "_count", "_created"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// The metric names docs/observability.md's table documents (first column).
fn documented() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(root().join("docs/observability.md")).unwrap();
    let table = doc
        .split("## Metrics")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap();
    table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .flat_map(|l| {
            let first = l.split(" |").next().unwrap_or_default();
            first
                .split(", ")
                .map(|n| n.trim_matches('`').to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Each expression of the alerts and the dashboard, with where it is.
fn expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("deploy/monitoring/prometheus-rules.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(rules["kind"], "PrometheusRule");
    for group in rules["spec"]["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            assert!(rule["for"].is_string(), "{name}: no `for`");
            assert!(
                rule["labels"]["severity"].is_string(),
                "{name}: no severity"
            );
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{name}: no summary"
            );
            out.push((
                format!("alert {name}"),
                rule["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/monitoring/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    for var in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["query"].as_str()
            && let Some(inner) = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(selector, _)| selector)
        {
            out.push((format!("variable {}", var["name"]), grafana(inner)));
        }
    }
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            out.push((
                format!("panel {}", panel["title"]),
                grafana(target["expr"].as_str().unwrap()),
            ));
        }
    }
    out
}

/// A Grafana query with its variables as Prometheus would receive them.
fn grafana(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$namespace", ".*")
        .replace("$pod", ".*")
}

#[tokio::test]
async fn the_shipped_dashboard_and_alerts_query_what_actbridge_exports() {
    let documented = documented();
    assert!(
        documented.contains("actbridge_requests_total") && documented.len() > 15,
        "{documented:?}"
    );
    let world = World::start().await;
    let scrape = world.actbridge.metrics().await;
    let exported: BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| family(n).to_string())
        .collect();
    // What a sidecar exports is documented (process_* are Prometheus' standard names).
    for name in &exported {
        assert!(
            documented.contains(name) || name.starts_with("process_"),
            "`{name}` is exported but not in docs/observability.md"
        );
    }
    let mut used = BTreeSet::new();
    for (at, expr) in expressions() {
        let parsed = parser::parse(&expr).unwrap_or_else(|e| panic!("{at}: {e}\n{expr}"));
        let mut names = BTreeSet::new();
        metric_names(&parsed, &mut names);
        assert!(!names.is_empty(), "{at} selects no metric");
        for name in names {
            let name = family(&name).to_string();
            let known = documented.contains(&name)
                || (name.starts_with("process_") && exported.contains(&name));
            assert!(known, "{at}: `{name}` is not a metric actbridge exports");
            used.insert(name);
        }
    }
    // The dashboard and alerts cover the health signals an operator needs.
    for needed in [
        "actbridge_audit_writer_failed",
        "actbridge_revocations_sync_age_seconds",
        "actbridge_jwks_age_seconds",
        "actbridge_svid_expiry_timestamp_seconds",
        "actbridge_policy_reload_failing",
        "actbridge_upstream_duration_seconds",
        "actbridge_build_info",
        "process_resident_memory_bytes",
    ] {
        assert!(used.contains(needed), "nothing watches {needed}");
    }
}
