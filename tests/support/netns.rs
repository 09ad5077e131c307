//! Network namespaces for the traffic-capture test: a "pod" and a "remote host" joined
//! by a veth pair, each with a thread whose tokio runtime opens its sockets inside the
//! namespace, and processes started in it with `ip netns exec` (under their own UID
//! with `setpriv`). Everything is removed on drop, also when the test fails; namespaces
//! left by a run that was killed are removed by the next one.

use std::fs::File;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use nix::sched::{CloneFlags, setns};
use tokio_util::sync::CancellationToken;

/// Every name this harness makes starts with this, followed by the owning test
/// process's PID.
const PREFIX: &str = "abcap";

/// One network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    fn create(name: String) -> Netns {
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        run(ns.command("ip").args(["link", "set", "lo", "up"]));
        ns
    }

    /// A lone namespace (loopback only), named after this test process.
    pub fn create_standalone() -> Netns {
        remove_stale();
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Netns::create(format!("{PREFIX}{}s{n}", std::process::id()))
    }

    /// `program` to be run inside this namespace (as root).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// `program` to be run inside this namespace as `uid` (gid = uid, no groups).
    pub fn command_as(&self, uid: u32, program: &str) -> Command {
        self.command_as_group(uid, uid, program)
    }

    /// As [`Netns::command_as`], with group `gid` (actbridge runs with Envoy's group, so
    /// that Envoy may connect to its sockets).
    pub fn command_as_group(&self, uid: u32, gid: u32, program: &str) -> Command {
        let mut c = self.command("setpriv");
        c.args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            "--",
            program,
        ]);
        c
    }

    /// `/etc/netns/NAME`: files here are bind-mounted over `/etc` for processes
    /// started with `ip netns exec` (their `hosts` and `resolv.conf`).
    pub fn etc_dir(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.name)
    }

    /// A runtime whose sockets live in this namespace.
    pub fn runtime(&self) -> NsRuntime {
        NsRuntime::start(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(self.etc_dir());
    }
}

/// A current-thread tokio runtime on a thread that has entered a network namespace:
/// listeners bound and connections opened by tasks on it belong to that namespace.
pub struct NsRuntime {
    handle: tokio::runtime::Handle,
    stop: CancellationToken,
}

impl NsRuntime {
    fn start(ns: &str) -> NsRuntime {
        let path = format!("/var/run/netns/{ns}");
        let stop = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let s = stop.clone();
        std::thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            setns(file, CloneFlags::CLONE_NEWNET).expect("setns into the namespace");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            tx.send(rt.handle().clone()).unwrap();
            rt.block_on(s.cancelled());
        });
        NsRuntime {
            handle: rx.recv().expect("the namespace thread started"),
            stop,
        }
    }

    /// Runs `fut` inside the namespace and returns its output.
    pub async fn run<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut).await.expect("task in the namespace")
    }
}

impl Drop for NsRuntime {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A process started in a namespace; killed on drop.
pub struct NsProcess {
    pub child: Child,
    log: PathBuf,
}

impl NsProcess {
    /// Starts `cmd` with its stdout and stderr in `log`.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> NsProcess {
        let file = File::create(&log).unwrap();
        let child = cmd
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start a process in the namespace");
        NsProcess { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pod and the remote host: `pod` (POD_IP) and `remote` (REMOTE_IP) on one /24.
pub struct Lab {
    // Field order is drop order: the runtimes and the namespaces go last.
    pub pod_rt: NsRuntime,
    pub remote_rt: NsRuntime,
    pub pod: Netns,
    pub remote: Netns,
    pub pod_ip: Ipv4Addr,
    pub remote_ip: Ipv4Addr,
}

impl Lab {
    /// Makes both namespaces, the veth pair between them and their addresses; `names`
    /// resolve to the remote host in the pod's `/etc/hosts` (for processes started with
    /// `ip netns exec`), as a cluster's DNS would answer.
    pub fn new(names: &[&str]) -> Lab {
        remove_stale();
        let pid = std::process::id();
        let net = (pid % 250) as u8 + 1;
        let pod_ip = Ipv4Addr::new(10, 251, net, 2);
        let remote_ip = Ipv4Addr::new(10, 251, net, 1);
        let pod = Netns::create(format!("{PREFIX}{pid}p"));
        let remote = Netns::create(format!("{PREFIX}{pid}r"));
        let (veth_pod, veth_remote) = (format!("{PREFIX}{pid}a"), format!("{PREFIX}{pid}b"));
        run(Command::new("ip").args([
            "link",
            "add",
            &veth_pod,
            "netns",
            &pod.name,
            "type",
            "veth",
            "peer",
            "name",
            &veth_remote,
            "netns",
            &remote.name,
        ]));
        for (ns, dev, ip) in [
            (&pod, &veth_pod, pod_ip),
            (&remote, &veth_remote, remote_ip),
        ] {
            run(ns
                .command("ip")
                .args(["addr", "add", &format!("{ip}/24"), "dev", dev]));
            run(ns.command("ip").args(["link", "set", dev, "up"]));
        }
        let etc = pod.etc_dir();
        std::fs::create_dir_all(&etc).unwrap();
        let mut hosts_file = String::from("127.0.0.1 localhost\n");
        for name in names {
            hosts_file.push_str(&format!("{remote_ip} {name}\n"));
        }
        std::fs::write(etc.join("hosts"), hosts_file).unwrap();
        // No DNS server in the lab: queries fail at once instead of timing out.
        std::fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        Lab {
            pod_rt: pod.runtime(),
            remote_rt: remote.runtime(),
            pod,
            remote,
            pod_ip,
            remote_ip,
        }
    }
}

/// Runs a command to completion; panics with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Deletes the namespaces of earlier runs whose process is gone.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !pid.is_empty() && !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
            let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(name));
        }
    }
}
