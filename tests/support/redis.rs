//! A real Redis (Debian's `redis-server`), one per test that asks: on a free loopback
//! port, nothing written to disk, `maxmemory-policy noeviction` (what actbridge
//! requires), optionally a password. Stopped and started again on the same port, as a
//! Redis that goes away and comes back; killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::net::free_port;

pub struct Redis {
    pub port: u16,
    password: Option<String>,
    maxmemory_policy: &'static str,
    child: Option<Child>,
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
            child: None,
        };
        r.run();
        r
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn run(&mut self) {
        let server = "/usr/bin/redis-server";
        assert!(
            std::path::Path::new(server).exists(),
            "redis-server not found: install Debian's redis-server (.ci/run does)"
        );
        let mut cmd = Command::new(server);
        cmd.args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--maxmemory-policy", self.maxmemory_policy])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
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
