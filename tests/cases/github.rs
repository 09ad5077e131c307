//! The `github_app` credential backend through the real Envoy, against the GitHub API
//! stand-in: installation tokens restricted to the grant's repositories, injected into
//! the agent's plain requests; refusals before any token request; fail closed.

use crate::support::github::{APP_ID, GithubApi, INSTALLATION_ID, OWNER, REPOSITORIES};
use crate::support::world::{Sts, VEND_HOST, World, agent_id, credential_sidecar_config};

pub(super) const HOST: &str = "api.github.com";

pub(super) fn github_sidecar_config(sts: &Sts, agent: &str, github: &GithubApi) -> String {
    let repositories: String = REPOSITORIES
        .iter()
        .map(|(dept, repo)| format!("        {dept}: [{repo}]\n"))
        .collect();
    let routes = format!(
        r#"    - name: github
      host: "{HOST}"
      cluster: github_api
      action: credential
      credential: github
      mode: inject
    - name: credentials
      host: "{VEND_HOST}"
      action: vend
      services: {{github: github}}
"#
    );
    let credentials = format!(
        r#"  - name: github
    github_app:
      app_id: {APP_ID}
      installation_id: {INSTALLATION_ID}
      private_key_file: {key}
      api_url: {api}
      owner: {OWNER}
      permissions: {{contents: read}}
      repositories:
{repositories}"#,
        key = github.key_file.display(),
        api = github.url(),
    );
    credential_sidecar_config(sts, agent, &routes, &credentials)
}

struct GithubWorld {
    github: GithubApi,
    world: World,
}

impl GithubWorld {
    async fn start(agent: &str) -> GithubWorld {
        let github = GithubApi::start().await;
        let sts = Sts::start().await;
        let config = github_sidecar_config(&sts, agent, &github);
        let world = World::builder(sts, &config)
            .github_api(github.port)
            .start()
            .await;
        GithubWorld { github, world }
    }

    /// david's token delegated to reviewer-ops (engineering only).
    async fn david(&self) -> String {
        self.world
            .sts
            .delegated("david", "reviewer-ops", &agent_id("reviewer-ops"))
            .await
    }

    /// A GitHub token vended to `token`'s holder (200 asserted), as answered.
    async fn vend(&self, token: &str) -> serde_json::Value {
        let r = self
            .world
            .vend(
                Some(token),
                r#"{"target_service":"github","action":"read"}"#,
            )
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn read(&self, token: &str, repo: &str) -> (u16, String) {
        let path = format!("/repos/{OWNER}/{repo}/contents/README.md");
        let r = self.world.agent_call(HOST, &path, token).await;
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// alice via summarizer-tech reads the engineering and finance repositories with one
/// installation token restricted to exactly those two, and is refused the hr one by
/// actbridge before any token request; the token itself, misused on the hr repository,
/// is refused by GitHub too.
#[tokio::test]
async fn installation_tokens_cover_exactly_the_grants_repositories() {
    let w = GithubWorld::start("summarizer-tech").await;
    let alice = w.world.token_for("alice").await;
    for repo in ["engineering-docs", "finance-reports"] {
        let (status, body) = w.read(&alice, repo).await;
        assert_eq!(status, 200, "{repo}: {body}");
        assert!(body.contains("\"encoding\":\"base64\""), "{body}");
    }
    let requests = w.github.token_requests();
    assert_eq!(
        requests.len(),
        1,
        "one cached token served both: {requests:?}"
    );
    assert_eq!(
        requests[0],
        serde_json::json!({
            "repositories": ["engineering-docs", "finance-reports"],
            "permissions": {"contents": "read"},
        })
    );
    for auth in w.github.content_authorizations() {
        assert!(auth.starts_with("Bearer ghs_"), "{auth}");
        assert!(!auth.contains(&alice));
    }
    let (status, body) = w.read(&alice, "hr-handbook").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error_description"],
        "the request is outside the permission intersection"
    );
    assert_eq!(w.github.token_requests().len(), 1);
    // The token, misused directly on the hr repository: GitHub does not show it.
    let minted = w.github.minted_tokens();
    let r = reqwest::Client::new()
        .get(format!(
            "{}/repos/{OWNER}/hr-handbook/contents/README.md",
            w.github.url()
        ))
        .bearer_auth(&minted[0])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Other API paths cannot be scoped to repositories: refused.
    let r = w.world.agent_call(HOST, "/user/repos", &alice).await;
    assert_eq!(r.status(), 403);
    let r = w
        .world
        .agent_call(
            HOST,
            "/repos/someone-else/engineering-docs/contents/README.md",
            &alice,
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(w.github.token_requests().len(), 1);
}

/// An empty grant never reaches GitHub; GitHub refusing is 502 without its message;
/// GitHub down is 503.
#[tokio::test]
async fn github_failures_and_empty_grants_fail_closed() {
    let w = GithubWorld::start("summarizer-tech").await;
    let carol = w.world.token_for("carol").await;
    let (status, _) = w.read(&carol, "hr-handbook").await;
    assert_eq!(status, 403);
    assert!(w.github.token_requests().is_empty());

    let bob = w.world.token_for("bob").await;
    w.github.force_status(Some(422));
    let (status, body) = w.read(&bob, "finance-reports").await;
    assert_eq!(status, 502, "{body}");
    assert!(!body.contains("Forced by the test"), "{body}");
    w.github.force_status(None);
    w.github.stop();
    let (status, body) = w.read(&bob, "finance-reports").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        w.github.content_authorizations().is_empty(),
        "nothing reached the API"
    );
}

/// The same token can be vended: restricted to the grant's repositories.
#[tokio::test]
async fn a_vended_github_token_is_restricted_to_the_grant() {
    let w = GithubWorld::start("reviewer-ops").await;
    let v = w.vend(&w.david().await).await;
    assert_eq!(v["repositories"], serde_json::json!(["engineering-docs"]));
    assert_eq!(v["owner"], OWNER);
    let token = v["token"].as_str().unwrap();
    let get = |repo: &str| {
        reqwest::Client::new()
            .get(format!(
                "{}/repos/{OWNER}/{repo}/contents/README.md",
                w.github.url()
            ))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(get("engineering-docs").await.unwrap().status(), 200);
    assert_eq!(get("finance-reports").await.unwrap().status(), 404);
}

/// A vended token is that caller's alone: two vends are two tokens, neither is the one
/// actbridge injects, and a holder revoking theirs (GitHub's `DELETE
/// /installation/token`) breaks no one else. An injected token revoked upstream is
/// forgotten at GitHub's first 401: the next request carries a new one.
#[tokio::test]
async fn no_holder_can_revoke_or_share_a_token_anyone_else_relies_on() {
    let w = GithubWorld::start("reviewer-ops").await;
    let david = w.david().await;
    assert_eq!(w.read(&david, "engineering-docs").await.0, 200);
    let injected = w.github.content_authorizations()[0].clone();
    let vend = async || w.vend(&david).await["token"].as_str().unwrap().to_string();
    let (first, second) = (vend().await, vend().await);
    assert_ne!(first, second, "two vends, one token");
    for vended in [&first, &second] {
        assert_ne!(
            format!("Bearer {vended}"),
            injected,
            "the injected token was vended"
        );
    }
    let revoke = |token: String| {
        reqwest::Client::new()
            .delete(format!("{}/installation/token", w.github.url()))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(revoke(first).await.unwrap().status(), 204);
    assert_eq!(
        w.read(&david, "engineering-docs").await.0,
        200,
        "a vended token's revocation broke the injected one"
    );

    // The injected token is revoked upstream (an administrator, a key rotation).
    let minted_before = w.github.token_requests().len();
    let injected_token = injected.strip_prefix("Bearer ").unwrap().to_string();
    assert_eq!(revoke(injected_token).await.unwrap().status(), 204);
    let (status, _) = w.read(&david, "engineering-docs").await;
    assert_eq!(status, 401, "GitHub's answer to the revoked token passes");
    let (status, body) = w.read(&david, "engineering-docs").await;
    assert_eq!(status, 200, "the next request carries a new token: {body}");
    assert_eq!(w.github.token_requests().len(), minted_before + 1);
    let last = w.github.content_authorizations().last().unwrap().clone();
    assert_ne!(last, injected);
}
