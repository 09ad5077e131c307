//! A real OpenSSH sshd (Debian's `openssh-server`), started in the foreground on a free
//! loopback port with its own host key and an SSH user CA it trusts
//! (`TrustedUserCAKeys`); the principals accepted for the login account are a file the
//! test rewrites (`AuthorizedPrincipalsFile`, read at every connection). The login
//! account is the one running the tests. Killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::net::free_port;

pub struct Sshd {
    pub port: u16,
    /// The CA's private key (OpenSSH), for actbridge's `ssh_cert.ca_key_file`.
    pub ca_key_file: PathBuf,
    /// The account logged in to.
    pub user: String,
    child: Child,
    dir: tempfile::TempDir,
}

/// `ssh-keygen -t ed25519` into `path` (and `path.pub`), no passphrase.
pub fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "actbridge-test",
            "-f",
        ])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) is required")
        .success();
    assert!(ok, "ssh-keygen failed");
}

impl Sshd {
    pub async fn start() -> Sshd {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "sshd not found: install openssh-server (.ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        keygen(&d.join("host_key"));
        keygen(&d.join("ca"));
        std::fs::create_dir_all(d.join("principals")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap(); // privilege separation directory
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let port = free_port();
        // Absolute paths only: sshd re-executes itself from `/`.
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             TrustedUserCAKeys {d}/ca.pub\nAuthorizedPrincipalsFile {d}/principals/%u\n\
             AuthorizedKeysFile none\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n\
             LogLevel VERBOSE\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let s = Sshd {
            port,
            ca_key_file: d.join("ca"),
            user,
            child,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start:\n{}",
                s.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        s
    }

    /// The principals the login account accepts, from now on.
    pub fn set_principals(&self, principals: &[&str]) {
        let file = self.dir.path().join("principals").join(&self.user);
        std::fs::write(file, principals.join("\n") + "\n").unwrap();
    }

    /// Logs in with `key` and its certificate `cert` and runs `echo actbridge-ok`.
    /// Returns whether it printed that, and ssh's stderr.
    pub fn login(&self, key: &Path, cert: &Path) -> (bool, String) {
        let out = Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"])
            .arg("-i")
            .arg(key)
            .arg("-o")
            .arg(format!("CertificateFile={}", cert.display()))
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{}@127.0.0.1", self.user))
            .arg("echo actbridge-ok")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        (
            out.status.success() && stdout.trim() == "actbridge-ok",
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
