//! A real Redis (Debian's `redis-server`), one per test that asks: on a free loopback
//! port, nothing written to disk, `maxmemory-policy noeviction` (what actbridge
//! requires), optionally a password, optionally TLS only (a CA of the test's own, the
//! server's certificate for 127.0.0.1, client certificates required or not). Stopped and
//! started again on the same port, as a Redis that goes away and comes back; killed on
//! drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::net::free_port;

pub struct Redis {
    pub port: u16,
    password: Option<String>,
    maxmemory_policy: &'static str,
    tls: Option<RedisTls>,
    /// The port of the master this one replicates.
    replica_of: Option<u16>,
    child: Option<Child>,
}

/// A TLS-only Redis's files: the CA that signed the server's certificate and a client
/// certificate (PEM), and whether the server requires one.
pub struct RedisTls {
    pub dir: tempfile::TempDir,
    pub client_auth: bool,
}

impl RedisTls {
    /// The CA certificate file (for `state.redis.ca_file`).
    pub fn ca_file(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    /// The client certificate and key files (for `cert_file`, `key_file`).
    pub fn client_files(&self) -> (String, String) {
        let at = |f: &str| self.dir.path().join(f).display().to_string();
        (at("client.pem"), at("client-key.pem"))
    }

    fn new(client_auth: bool) -> RedisTls {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose, SanType,
        };
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "actbridge test Redis CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", &ca.pem());
        for (name, sans) in [
            ("server", vec!["localhost".to_string()]),
            ("client", vec!["actbridge".to_string()]),
        ] {
            let mut params = CertificateParams::new(sans).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            if name == "server" {
                params
                    .subject_alt_names
                    .push(SanType::IpAddress([127, 0, 0, 1].into()));
            }
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &ca).unwrap();
            write(&format!("{name}.pem"), &cert.pem());
            write(&format!("{name}-key.pem"), &key.serialize_pem());
        }
        RedisTls { dir, client_auth }
    }
}

impl Redis {
    /// A Redis without a password.
    pub fn start() -> Redis {
        Redis::start_with(None, "noeviction")
    }

    /// A Redis with `password` (`requirepass`) and `policy` as its `maxmemory-policy`.
    pub fn start_with(password: Option<&str>, policy: &'static str) -> Redis {
        let mut r = Redis {
            port: free_port(),
            password: password.map(str::to_string),
            maxmemory_policy: policy,
            tls: None,
            replica_of: None,
            child: None,
        };
        r.run();
        r
    }

    /// A Redis that speaks only TLS, requiring a client certificate when `client_auth`.
    pub fn start_tls(client_auth: bool) -> Redis {
        let mut r = Redis {
            port: free_port(),
            password: None,
            maxmemory_policy: "noeviction",
            tls: Some(RedisTls::new(client_auth)),
            replica_of: None,
            child: None,
        };
        r.run();
        r
    }

    /// A replica of the Redis on `master`'s port.
    pub fn start_replica_of(master: u16) -> Redis {
        let mut r = Redis {
            port: free_port(),
            password: None,
            maxmemory_policy: "noeviction",
            tls: None,
            replica_of: Some(master),
            child: None,
        };
        r.run();
        r
    }

    /// A connection of the test's own, to read or write behind actbridge's back.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Its TLS files, when it speaks TLS.
    pub fn tls(&self) -> Option<&RedisTls> {
        self.tls.as_ref()
    }

    /// `redis://127.0.0.1:PORT/0`, or `rediss://…` when it speaks TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    fn run(&mut self) {
        let server = "/usr/bin/redis-server";
        assert!(
            std::path::Path::new(server).exists(),
            "redis-server not found: install Debian's redis-server (.ci/run does)"
        );
        let mut cmd = Command::new(server);
        cmd.args(["--bind", "127.0.0.1"]);
        match &self.tls {
            None => cmd.arg("--port").arg(self.port.to_string()),
            Some(tls) => {
                let at = |f: &str| tls.dir.path().join(f);
                cmd.args(["--port", "0", "--tls-port"])
                    .arg(self.port.to_string())
                    .arg("--tls-cert-file")
                    .arg(at("server.pem"))
                    .arg("--tls-key-file")
                    .arg(at("server-key.pem"))
                    .arg("--tls-ca-cert-file")
                    .arg(at("ca.pem"))
                    .args([
                        "--tls-auth-clients",
                        if tls.client_auth { "yes" } else { "no" },
                    ])
            }
        };
        cmd.args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--maxmemory-policy", self.maxmemory_policy])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        if let Some(master) = self.replica_of {
            cmd.args(["--replicaof", "127.0.0.1"])
                .arg(master.to_string());
        }
        self.child = Some(cmd.spawn().expect("redis-server"));
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (its memory is gone with it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A master, a replica and one Redis Sentinel watching them as `mymaster` (quorum 1,
/// the master down after 500 ms): killing the master promotes the replica within a few
/// seconds.
pub struct SentinelSet {
    pub master: Redis,
    pub replica: Redis,
    pub sentinel_port: u16,
    sentinel: Child,
    _dir: tempfile::TempDir,
}

impl SentinelSet {
    pub fn start() -> SentinelSet {
        let master = Redis::start();
        let replica = Redis::start_replica_of(master.port);
        let dir = tempfile::tempdir().unwrap();
        let sentinel_port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sentinel_port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {} 1\n\
                 sentinel down-after-milliseconds mymaster 500\n\
                 sentinel failover-timeout mymaster 3000\n",
                master.port
            ),
        )
        .unwrap();
        let sentinel = Command::new("/usr/bin/redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", sentinel_port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the sentinel did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        SentinelSet {
            master,
            replica,
            sentinel_port,
            sentinel,
            _dir: dir,
        }
    }

    /// Waits until the replica has everything the master wrote (`WAIT 1`) and the
    /// sentinel knows it: the sentinel learns of replicas from the master's `INFO`,
    /// which it reads every 10 s, and cannot promote a replica it has not seen.
    pub fn replicated(&self) {
        let mut conn = self.master.connection();
        let acked: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(5000)
            .query(&mut conn)
            .unwrap();
        assert_eq!(acked, 1, "the replica did not acknowledge");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !self.sentinel_sees_the_replica() {
            assert!(
                std::time::Instant::now() < deadline,
                "the sentinel did not discover the replica"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// Whether the sentinel lists the replica, connected.
    fn sentinel_sees_the_replica(&self) -> bool {
        let Ok(mut conn) = redis::Client::open(format!("redis://127.0.0.1:{}", self.sentinel_port))
            .and_then(|c| c.get_connection())
        else {
            return false;
        };
        let replicas: Vec<std::collections::HashMap<String, String>> = redis::cmd("SENTINEL")
            .arg("replicas")
            .arg("mymaster")
            .query(&mut conn)
            .unwrap_or_default();
        let port = self.replica.port.to_string();
        replicas.iter().any(|r| {
            r.get("port") == Some(&port)
                && r.get("flags").is_some_and(|f| !f.contains("disconnected"))
        })
    }

    /// The port of the master the sentinel names now.
    pub fn master_port(&self) -> Option<u16> {
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{}", self.sentinel_port))
            .ok()?
            .get_connection()
            .ok()?;
        let addr: Vec<String> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg("mymaster")
            .query(&mut conn)
            .ok()?;
        addr.get(1)?.parse().ok()
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        let _ = self.sentinel.kill();
        let _ = self.sentinel.wait();
    }
}
