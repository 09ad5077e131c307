//! What a request's outcome rests on besides its token and the policy's answer: a
//! person's approval (denied, not given in time, too many waiting, the sidecar shutting
//! down), the audit log taking the decision's record, and the workload's X.509-SVID.
//! What the token service, the issuer's live check and an MCP server answer is in
//! [`super::answers`].

use std::time::Duration;

use actbridge::audit::AuditLog;
use actbridge::spiffe::WorkloadIdentity;
use actbridge::state::Approvals;
use actbridge::state::approvals::PendingApproval;

use super::*;

/// `/approval` needs a person; `/ok` and inbound `/data` are allowed.
pub(super) const POLICY: &str = r#"package actbridge

import rego.v1

default decision := {"allow": false, "reason": "not scripted"}

decision := {"allow": true, "reason": "ok", "grant": ["x"]} if input.path in {"/ok", "/data", "/live"}

decision := {"allow": true, "reason": "a person decides", "grant": ["x"], "approval_required": true} if {
	input.path == "/approval"
}
"#;

/// A sidecar with [`POLICY`] in `policies`, approvals that wait one second and one
/// request at a time, and `extra` (top-level sections) appended.
pub(super) fn config(sts: &Sts, policies: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
listen:
  ext_proc: tcp://127.0.0.1:1
issuers:
  - issuer: {issuer}
    audiences: ["{AGENT}"]
outbound:
  token_endpoint: {token}
  token_timeout: 1s
  client:
    client_id: "{AGENT}"
    auth: {{method: client_secret_post, secret: summarizer-tech-demo-secret}}
  routes:
    - {{name: document-service, host: document-service, cluster: document_service, action: exchange, audience: "{DOCS_AUDIENCE}", scopes: [documents.read]}}
policy:
  dir: {policies}
admin_api:
  audiences: [actbridge-admin]
  roles: [actbridge-admin]
approvals:
  timeout: 1s
  max_pending: 1
{extra}"#,
        issuer = sts.service.issuer(),
        token = sts.service.token_endpoint(),
        policies = policies.display(),
    )
}

/// The policy directory holding [`POLICY`].
pub(super) fn policies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scripted.rego"), POLICY).unwrap();
    dir
}

/// The one request waiting for a person, once it waits.
async fn held(approvals: &Approvals) -> PendingApproval {
    for _ in 0..500 {
        if let Some(waiting) = approvals.list().await.unwrap().into_iter().next() {
            return waiting;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no request was held for approval");
}

/// A request the policy wants a person for ends as the person, the clock or the
/// sidecar's shutdown decides: approved (exchanged), denied (403 approval_denied),
/// unanswered past `approvals.timeout` (403 approval_timeout), one more while the one
/// allowed waits (503 approvals_full), held when the sidecar shuts down, or asked after
/// (503 shutting_down).
#[tokio::test]
async fn a_held_request_ends_as_the_person_or_the_clock_decides() {
    use Expect::*;
    let sts = Sts::start().await;
    let dir = policies();
    let (p, state) = pipeline_and_state(
        &config(&sts, dir.path(), ""),
        Arc::new(DenyList::load(None).unwrap()),
        Clock::system(),
    )
    .await;
    let approvals = state.approvals.clone().expect("approvals configured");
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let asks = row("", "document-service", "/approval", ForwardUnchanged);
    let mut failures = Vec::new();

    // Approved, naming what was shown: the request goes on, exchanged.
    let (got, ()) = tokio::join!(decide(&p, &asks, Some(alice.clone())), async {
        let waiting = held(&approvals).await;
        approvals
            .decide(&waiting.id, true, "bob", Some(&waiting.digest))
            .await
            .unwrap();
    });
    note(
        &mut failures,
        "approved",
        &got,
        ForwardWithNewAuthorization,
        &alice,
    );

    // Denied.
    let (got, ()) = tokio::join!(decide(&p, &asks, Some(alice.clone())), async {
        let waiting = held(&approvals).await;
        approvals
            .decide(&waiting.id, false, "bob", None)
            .await
            .unwrap();
    });
    let expect = Deny(403, "approval_denied");
    note(&mut failures, "denied by a person", &got, expect, &alice);

    // Nobody answers within the second `approvals.timeout` allows (the wait is tokio's
    // timer, not the injectable clock; the shortest timeout the config takes is 1s).
    let got = decide(&p, &asks, Some(alice.clone())).await;
    let expect = Deny(403, "approval_timeout");
    note(
        &mut failures,
        "nobody answers in time",
        &got,
        expect,
        &alice,
    );
    if !approvals.list().await.unwrap().is_empty() {
        failures.push("a timed-out request is still pending".into());
    }

    // One waits (max_pending: 1): the next is refused at once, the first still waits.
    let (got, second) = tokio::join!(decide(&p, &asks, Some(alice.clone())), async {
        let waiting = held(&approvals).await;
        let second = decide(&p, &asks, Some(alice.clone())).await;
        let still = approvals.list().await.unwrap().len();
        approvals
            .decide(&waiting.id, false, "bob", None)
            .await
            .unwrap();
        (second, still)
    });
    let (second, still) = second;
    let expect = Deny(503, "approvals_full");
    note(
        &mut failures,
        "one more than may wait",
        &second,
        expect,
        &alice,
    );
    if still != 1 {
        failures.push(format!("{still} requests pending while one may wait"));
    }
    let expect = Deny(403, "approval_denied");
    note(&mut failures, "the one that waited", &got, expect, &alice);

    // Held when the sidecar shuts down; asked after it did.
    let (got, ()) = tokio::join!(decide(&p, &asks, Some(alice.clone())), async {
        held(&approvals).await;
        approvals.shut_down();
    });
    let expect = Deny(503, "shutting_down");
    note(&mut failures, "held at shutdown", &got, expect, &alice);
    let got = decide(&p, &asks, Some(alice.clone())).await;
    let expect = Deny(503, "shutting_down");
    note(&mut failures, "asked after shutdown", &got, expect, &alice);

    all_passed(&failures, "steps");
}

/// A decision the audit log cannot take is refused (`on_queue_full: refuse`, the writer
/// stopped): an allowed request and an approval's first step alike answer 503
/// `audit_unavailable`, and nothing is held for a person.
#[tokio::test]
async fn a_decision_nobody_can_audit_is_refused() {
    use Expect::*;
    let sts = Sts::start().await;
    let dir = policies();
    let audit = dir.path().join("audit.log");
    let yaml = config(
        &sts,
        dir.path(),
        &format!(
            "audit:\n  path: {}\n  on_queue_full: refuse\n",
            audit.display()
        ),
    );
    let (p, state) = pipeline_and_state(
        &yaml,
        Arc::new(DenyList::load(None).unwrap()),
        Clock::system(),
    )
    .await;
    let cfg = Config::from_yaml(&yaml, &HashMap::new()).unwrap();
    let log = Arc::new(AuditLog::open(cfg.audit.as_ref().unwrap()).unwrap());
    let p = p.with_audit(log.clone());
    let own = format!("Bearer {}", sts.alice().await);
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let inbound = Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", "/data", ForwardWithIdentity)
    };
    let mut failures = Vec::new();

    let got = decide(&p, &inbound, Some(own.clone())).await;
    note(&mut failures, "audited", &got, ForwardWithIdentity, &own);

    // The writer stops: what is submitted now is refused.
    log.shutdown().await;
    let got = decide(&p, &inbound, Some(own.clone())).await;
    let expect = Deny(503, "audit_unavailable");
    note(&mut failures, "an allowed request", &got, expect, &own);
    let asks = row("", "document-service", "/approval", ForwardUnchanged);
    let got = decide(&p, &asks, Some(alice.clone())).await;
    let expect = Deny(503, "audit_unavailable");
    note(&mut failures, "an approval asked", &got, expect, &alice);
    let approvals = state.approvals.as_ref().unwrap();
    if !approvals.list().await.unwrap().is_empty() {
        failures.push("a request nobody could audit was held for a person".into());
    }
    all_passed(&failures, "steps");
}

/// Without a valid X.509-SVID an outbound request would leave without mTLS: refused with
/// 503 `svid_unavailable` while inbound goes on; once the Workload API hands one over,
/// the same request is exchanged.
#[tokio::test]
async fn outbound_waits_for_the_workload_svid() {
    use Expect::*;
    let workload = crate::support::workload_api::WorkloadApi::start(
        AGENT,
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    )
    .await;
    let sts = Sts::start().await;
    let dir = policies();
    let yaml = config(
        &sts,
        dir.path(),
        &format!("spiffe:\n  endpoint: {}\n", workload.endpoint()),
    );
    let cfg = Config::from_yaml(&yaml, &HashMap::new()).unwrap();
    let identity = WorkloadIdentity::new(cfg.spiffe.as_ref().unwrap());
    let p = pipeline(&yaml, Arc::new(DenyList::load(None).unwrap()))
        .await
        .with_identity(identity.clone());
    let alice = format!(
        "Bearer {}",
        sts.delegated("alice", "summarizer-tech", AGENT).await
    );
    let own = format!("Bearer {}", sts.alice().await);
    let docs = docs_row();
    let inbound = Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", "/data", ForwardWithIdentity)
    };
    let mut failures = Vec::new();

    let got = decide(&p, &docs, Some(alice.clone())).await;
    let expect = Deny(503, "svid_unavailable");
    note(&mut failures, "outbound, no SVID yet", &got, expect, &alice);
    let got = decide(&p, &inbound, Some(own.clone())).await;
    note(
        &mut failures,
        "inbound, no SVID yet",
        &got,
        ForwardWithIdentity,
        &own,
    );

    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(identity.clone().run(stop.clone()));
    for _ in 0..500 {
        if identity.is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(identity.is_ready(), "no SVID from the Workload API");
    let got = decide(&p, &docs, Some(alice.clone())).await;
    note(
        &mut failures,
        "outbound, an SVID held",
        &got,
        ForwardWithNewAuthorization,
        &alice,
    );
    stop.cancel();
    all_passed(&failures, "steps");
}
