//! JWT-SVIDs from the SPIFFE Workload API, for client authentication at the token
//! endpoint (`outbound.client.auth.method: jwt_svid`). One is fetched for every token
//! request (the Workload API caches and renews them; SPIRE's live minutes), over a
//! connection kept open and made again after a failure.

use std::time::Duration;

use spiffe::WorkloadApiClient;
use tokio::sync::Mutex;

/// Fetches JWT-SVIDs for one audience at a time.
pub struct JwtSvidFetcher {
    endpoint: String,
    timeout: Duration,
    client: Mutex<Option<WorkloadApiClient>>,
}

impl std::fmt::Debug for JwtSvidFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSvidFetcher")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl JwtSvidFetcher {
    /// A fetcher for the Workload API at `endpoint`; each fetch gives up after `timeout`.
    pub fn new(endpoint: &str, timeout: Duration) -> JwtSvidFetcher {
        JwtSvidFetcher {
            endpoint: endpoint.to_string(),
            timeout,
            client: Mutex::new(None),
        }
    }

    /// A JWT-SVID (the compact JWT) of the pod's default identity for `audience`. The
    /// error says what failed, for the operator's log.
    pub async fn fetch(&self, audience: &str) -> Result<String, String> {
        let attempt = async {
            let mut guard = self.client.lock().await;
            let client = match guard.as_ref() {
                Some(c) => c.clone(),
                None => {
                    let c = WorkloadApiClient::connect_to(&self.endpoint)
                        .await
                        .map_err(|e| e.to_string())?;
                    *guard = Some(c.clone());
                    c
                }
            };
            drop(guard);
            let token = client.fetch_jwt_token([audience], None).await;
            if token.is_err() {
                // Connect again next time: the agent may have restarted.
                *self.client.lock().await = None;
            }
            token.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(r) => r.map_err(|e| {
                format!(
                    "no JWT-SVID from the SPIFFE Workload API at {}: {e}",
                    self.endpoint
                )
            }),
            Err(_) => Err(format!(
                "no JWT-SVID from the SPIFFE Workload API at {} within {:?}",
                self.endpoint, self.timeout
            )),
        }
    }
}
