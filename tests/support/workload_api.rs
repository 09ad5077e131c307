//! A SPIFFE Workload API server for the tests (SPIRE cannot run here): the official
//! proto's `FetchX509SVID` over a Unix socket, with a test CA that issues short-lived
//! X.509-SVIDs and rotates them, and `FetchJWTSVID` / `FetchJWTBundles` with a test JWT
//! signing key (ES256); it can be stopped and started again on the same socket.
//! Like SPIRE, it refuses a call without the `workload.spiffe.io: true` metadata.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// The generated Workload API code (`proto/workload.proto`; see the proto_bootstrap test).
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    unused_qualifications,
    dead_code
)]
pub mod proto {
    include!("gen/workload_api.rs");
}

use proto::spiffe_workload_api_server::{SpiffeWorkloadApi, SpiffeWorkloadApiServer};
use proto::{
    JwtBundlesRequest, JwtBundlesResponse, JwtsvidRequest, JwtsvidResponse, ValidateJwtsvidRequest,
    ValidateJwtsvidResponse, X509BundlesRequest, X509BundlesResponse, X509svid, X509svidRequest,
    X509svidResponse,
};

/// The test CA of one trust domain.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub trust_domain: String,
}

/// A certificate and its key, DER and PEM.
pub struct Issued {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(trust_domain: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("test CA {trust_domain}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![SanType::URI(
            format!("spiffe://{trust_domain}").try_into().unwrap(),
        )];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa {
            issuer,
            trust_domain: trust_domain.to_string(),
        }
    }

    /// The CA certificate (the trust bundle), DER.
    pub fn bundle_der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// The CA certificate, PEM.
    pub fn bundle_pem(&self) -> String {
        self.issuer.pem()
    }

    /// An X.509-SVID for `spiffe_id`, valid for `ttl` (client and server use).
    pub fn issue(&self, spiffe_id: &str, ttl: Duration) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::URI(spiffe_id.try_into().unwrap())];
        // X.509-SVID: basicConstraints CA:false must be present.
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyAgreement,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::seconds(5);
        params.not_after = now + time::Duration::try_from(ttl).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// The trust domain's JWT-SVID signing key (ES256, P-256).
pub struct TestJwtKey {
    pub kid: String,
    key: jsonwebtoken::EncodingKey,
    x: String,
    y: String,
}

impl TestJwtKey {
    pub fn new(kid: &str) -> TestJwtKey {
        use base64::Engine;
        let pair = KeyPair::generate().unwrap();
        let raw = pair.public_key_raw();
        assert_eq!(raw.len(), 65, "an uncompressed P-256 point");
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        TestJwtKey {
            kid: kid.to_string(),
            key: jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
            x: b64(&raw[1..33]),
            y: b64(&raw[33..]),
        }
    }

    /// Signs `claims` (ES256, this key's `kid`, `typ: JWT`).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// A JWT-SVID for `spiffe_id` and `audience`, valid `ttl` seconds from now (negative:
    /// already expired).
    pub fn svid(&self, spiffe_id: &str, audience: &[&str], ttl: i64) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.sign(&serde_json::json!({
            "sub": spiffe_id,
            "aud": audience,
            "iat": now.min(now + ttl - 1),
            "exp": now + ttl,
        }))
    }

    /// The JWT bundle: a JWKS with this key (`use: jwt-svid`, as SPIFFE bundles mark it).
    pub fn jwks(&self) -> String {
        serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "x": self.x, "y": self.y,
            "kid": self.kid, "use": "jwt-svid",
        }]})
        .to_string()
    }
}

/// Life of the JWT-SVIDs the server issues (SPIRE's default).
const JWT_SVID_TTL: i64 = 300;

struct Service {
    ca: Arc<TestCa>,
    jwt_key: Arc<TestJwtKey>,
    spiffe_id: String,
    ttl: Duration,
    rotate_every: Duration,
    issued: Arc<AtomicU64>,
    jwt_issued: Arc<AtomicU64>,
    stop: CancellationToken,
}

type X509Stream = Pin<Box<dyn Stream<Item = Result<X509svidResponse, Status>> + Send>>;
type BundleStream = Pin<Box<dyn Stream<Item = Result<X509BundlesResponse, Status>> + Send>>;
type JwtBundleStream = Pin<Box<dyn Stream<Item = Result<JwtBundlesResponse, Status>> + Send>>;

fn require_header<T>(req: &Request<T>) -> Result<(), Status> {
    match req.metadata().get("workload.spiffe.io") {
        Some(v) if v == "true" => Ok(()),
        _ => Err(Status::invalid_argument(
            "security header missing from request",
        )),
    }
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for Service {
    type FetchX509SVIDStream = X509Stream;
    type FetchX509BundlesStream = BundleStream;
    type FetchJWTBundlesStream = JwtBundleStream;

    async fn fetch_x509svid(
        &self,
        req: Request<X509svidRequest>,
    ) -> Result<Response<X509Stream>, Status> {
        require_header(&req)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (ca, id, ttl, every, issued, stop) = (
            self.ca.clone(),
            self.spiffe_id.clone(),
            self.ttl,
            self.rotate_every,
            self.issued.clone(),
            self.stop.clone(),
        );
        tokio::spawn(async move {
            loop {
                let svid = ca.issue(&id, ttl);
                issued.fetch_add(1, Ordering::SeqCst);
                let resp = X509svidResponse {
                    svids: vec![X509svid {
                        spiffe_id: id.clone(),
                        x509_svid: svid.cert_der,
                        x509_svid_key: svid.key_der,
                        bundle: ca.bundle_der(),
                        hint: String::new(),
                    }],
                    crl: Vec::new(),
                    federated_bundles: Default::default(),
                };
                if tx.send(Ok(resp)).await.is_err() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.cancelled() => {
                        let _ = tx.send(Err(Status::unavailable("workload API stopping"))).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn fetch_x509_bundles(
        &self,
        _: Request<X509BundlesRequest>,
    ) -> Result<Response<BundleStream>, Status> {
        Err(Status::unimplemented("not served by the test Workload API"))
    }

    async fn fetch_jwtsvid(
        &self,
        req: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        require_header(&req)?;
        let req = req.into_inner();
        if req.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if !req.spiffe_id.is_empty() && req.spiffe_id != self.spiffe_id {
            return Err(Status::permission_denied("no identity issued"));
        }
        self.jwt_issued.fetch_add(1, Ordering::SeqCst);
        let audience: Vec<&str> = req.audience.iter().map(String::as_str).collect();
        Ok(Response::new(JwtsvidResponse {
            svids: vec![proto::Jwtsvid {
                spiffe_id: self.spiffe_id.clone(),
                svid: self.jwt_key.svid(&self.spiffe_id, &audience, JWT_SVID_TTL),
                hint: String::new(),
            }],
        }))
    }

    async fn fetch_jwt_bundles(
        &self,
        req: Request<JwtBundlesRequest>,
    ) -> Result<Response<JwtBundleStream>, Status> {
        require_header(&req)?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let resp = JwtBundlesResponse {
            bundles: [(
                self.ca.trust_domain.clone(),
                self.jwt_key.jwks().into_bytes(),
            )]
            .into(),
        };
        let stop = self.stop.clone();
        tokio::spawn(async move {
            if tx.send(Ok(resp)).await.is_ok() {
                stop.cancelled().await;
                let _ = tx
                    .send(Err(Status::unavailable("workload API stopping")))
                    .await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn validate_jwtsvid(
        &self,
        _: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        Err(Status::unimplemented("not served by the test Workload API"))
    }
}

/// A running (or stopped) Workload API server.
pub struct WorkloadApi {
    pub ca: Arc<TestCa>,
    /// The trust domain's JWT-SVID signing key.
    pub jwt_key: Arc<TestJwtKey>,
    jwt_issued: Arc<AtomicU64>,
    pub spiffe_id: String,
    socket: PathBuf,
    ttl: Duration,
    rotate_every: Duration,
    issued: Arc<AtomicU64>,
    stop: Option<CancellationToken>,
    _dir: Option<tempfile::TempDir>,
}

impl WorkloadApi {
    /// Serves SVIDs for `spiffe_id` valid `ttl`, a new one every `rotate_every`, on a
    /// socket in a new temporary directory.
    pub async fn start(spiffe_id: &str, ttl: Duration, rotate_every: Duration) -> WorkloadApi {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let trust_domain = spiffe_id
            .strip_prefix("spiffe://")
            .and_then(|r| r.split('/').next())
            .unwrap()
            .to_string();
        let mut api = WorkloadApi {
            ca: Arc::new(TestCa::new(&trust_domain)),
            jwt_key: Arc::new(TestJwtKey::new("test-jwt-key-1")),
            jwt_issued: Arc::new(AtomicU64::new(0)),
            spiffe_id: spiffe_id.to_string(),
            socket,
            ttl,
            rotate_every,
            issued: Arc::new(AtomicU64::new(0)),
            stop: None,
            _dir: Some(dir),
        };
        api.resume().await;
        api
    }

    /// `unix:///…`, for `SPIFFE_ENDPOINT_SOCKET` or the config.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// SVIDs issued so far (the first, and one per rotation, per stream).
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }

    /// JWT-SVIDs issued so far.
    pub fn jwt_issued(&self) -> u64 {
        self.jwt_issued.load(Ordering::SeqCst)
    }

    /// Stops serving: open streams end, the socket goes away.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            s.cancel();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Serves again on the same socket, with the same CA.
    pub async fn resume(&mut self) {
        self.stop();
        let listener = tokio::net::UnixListener::bind(&self.socket).unwrap();
        let stop = CancellationToken::new();
        let service = Service {
            ca: self.ca.clone(),
            jwt_key: self.jwt_key.clone(),
            jwt_issued: self.jwt_issued.clone(),
            spiffe_id: self.spiffe_id.clone(),
            ttl: self.ttl,
            rotate_every: self.rotate_every,
            issued: self.issued.clone(),
            stop: stop.clone(),
        };
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(SpiffeWorkloadApiServer::new(service))
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::UnixListenerStream::new(listener),
                    async move { s.cancelled().await },
                )
                .await;
        });
        self.stop = Some(stop);
    }
}

impl Drop for WorkloadApi {
    fn drop(&mut self) {
        self.stop();
    }
}
