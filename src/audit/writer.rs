//! The writer: a dedicated thread that owns the active file. It numbers each record,
//! links and seals it ([`super::chain`]), writes it, flushes and fsyncs on an interval,
//! signs checkpoints, and rotates the file by size without breaking the chain. The
//! request path only puts records on a bounded queue ([`super::AuditLog::submit`]).
//!
//! At start it continues the chain of what is on disk: the last complete record of the
//! active file (or, when that is empty, of the newest rotated file) gives the next
//! sequence number and `prev`. A partial last line — a crash in the middle of a write —
//! is cut off, and the `start` record says how many bytes were cut.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::chain::{GENESIS, claimed_hash, seal};
use super::checkpoint::{self, Checkpoint};
use super::record::Event;
use super::{AuditError, Counters};
use crate::config::AuditConfig;

/// What the queue carries.
pub(super) enum Msg {
    /// A record, with the time of what it records.
    Record(Box<Event>, SystemTime),
    /// Write what is queued before this, checkpoint, fsync and stop.
    Stop,
}

/// How long the writer waits after writing a batch before it takes the next one:
/// records queued meanwhile are taken together, and their senders do not wake it one by
/// one (a wake-up per record cost more CPU than writing the record). Idle, it blocks.
const BATCH_PAUSE: Duration = Duration::from_millis(1);

/// `{"seq":…,"time":"…","kind":"…",<the body's members>,"prev":"…"}`: the chain members
/// every record carries, around its body's. Written by hand rather than with
/// `#[serde(flatten)]`, which buffers the body into an intermediate map first and was
/// most of the audit log's CPU (`make bench-observability`).
fn unsealed<T: Serialize>(
    seq: u64,
    time: &str,
    kind: &str,
    body: &T,
    prev: &str,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(640);
    out.extend_from_slice(b"{\"seq\":");
    serde_json::to_writer(&mut out, &seq)?;
    out.extend_from_slice(b",\"time\":");
    serde_json::to_writer(&mut out, time)?;
    out.extend_from_slice(b",\"kind\":");
    serde_json::to_writer(&mut out, kind)?;
    let start = out.len();
    serde_json::to_writer(&mut out, body)?;
    match (out.get(start), out.last(), out.len() - start) {
        (Some(b'{'), Some(b'}'), 2) => out.truncate(start),
        (Some(b'{'), Some(b'}'), _) => {
            out[start] = b',';
            out.pop();
        }
        _ => {
            return Err(serde::ser::Error::custom(
                "an audit record body must be an object",
            ));
        }
    }
    out.extend_from_slice(b",\"prev\":");
    serde_json::to_writer(&mut out, prev)?;
    out.push(b'}');
    Ok(out)
}

/// The body of the record that opens each run.
#[derive(Serialize)]
struct StartBody {
    version: &'static str,
    /// Bytes of a partial last line cut off at start (a crash mid-write).
    #[serde(skip_serializing_if = "is_zero")]
    recovered_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where the chain stands, and the open file.
pub(super) struct Writer {
    cfg: AuditConfig,
    file: BufWriter<File>,
    file_bytes: u64,
    /// Sequence number of the next record.
    next_seq: u64,
    /// Hash of the last record written.
    prev: String,
    dirty: bool,
    since_checkpoint: u64,
    last_checkpoint: Instant,
}

impl Writer {
    /// Opens the active file, continues the chain on disk and writes the `start` record.
    pub(super) fn open(cfg: &AuditConfig) -> Result<Writer, AuditError> {
        let io = |e: std::io::Error| AuditError::Io {
            path: cfg.path.display().to_string(),
            source: e,
        };
        if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&cfg.path)
            .map_err(io)?;
        let recovered_bytes = cut_partial_line(&mut file).map_err(io)?;
        let file_bytes = file.metadata().map_err(io)?.len();
        let (next_seq, prev) = match last_line(&mut file).map_err(io)? {
            Some(line) => position_after(&cfg.path, &line)?,
            None => match newest_rotated(&cfg.path).map_err(io)? {
                Some(rotated) => {
                    let mut f = File::open(&rotated).map_err(io)?;
                    match last_line(&mut f).map_err(io)? {
                        Some(line) => position_after(&rotated, &line)?,
                        None => (1, GENESIS.to_string()),
                    }
                }
                None => (1, GENESIS.to_string()),
            },
        };
        let mut w = Writer {
            cfg: cfg.clone(),
            file: BufWriter::with_capacity(64 * 1024, file),
            file_bytes,
            next_seq,
            prev,
            dirty: false,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
        };
        w.append(
            "start",
            &StartBody {
                version: env!("CARGO_PKG_VERSION"),
                recovered_bytes,
            },
            SystemTime::now(),
        )
        .map_err(io)?;
        w.sync().map_err(io)?;
        Ok(w)
    }

    /// Runs until [`Msg::Stop`] or every sender is gone. An I/O error stops the writer
    /// and marks the log failed (requests are then refused or their records dropped, as
    /// configured).
    pub(super) fn run(mut self, rx: Receiver<Msg>, counters: Arc<Counters>) {
        let result = self.serve(&rx, &counters);
        if let Err(e) = result.and_then(|()| self.finish()) {
            counters.failed.store(true, Ordering::SeqCst);
            tracing::error!(path = %self.cfg.path.display(), error = %e, "audit log failed; records can no longer be written");
        }
    }

    fn serve(&mut self, rx: &Receiver<Msg>, counters: &Counters) -> std::io::Result<()> {
        let mut next_flush = Instant::now() + self.cfg.flush_interval;
        let mut wrote = false;
        loop {
            // After a batch, pause so that what arrives meanwhile is taken together.
            if wrote {
                std::thread::sleep(BATCH_PAUSE);
            }
            wrote = false;
            let wait = next_flush.saturating_duration_since(Instant::now());
            let mut msg = match rx.try_recv() {
                Ok(m) => Ok(m),
                Err(TryRecvError::Empty) => rx.recv_timeout(wait),
                Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            };
            // Everything queued now, in order.
            while let Ok(Msg::Record(event, time)) = msg {
                counters.queued.fetch_sub(1, Ordering::SeqCst);
                self.write_event(*event, time, counters)?;
                wrote = true;
                msg = rx.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                });
            }
            match msg {
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Ok(Msg::Record(..)) | Err(RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= next_flush {
                let interval = self.cfg.checkpoint.as_ref().map(|c| c.interval);
                if self.since_checkpoint > 0
                    && interval.is_some_and(|i| self.last_checkpoint.elapsed() >= i)
                {
                    self.checkpoint()?;
                }
                if self.dirty {
                    self.sync()?;
                }
                next_flush = Instant::now() + self.cfg.flush_interval;
            }
        }
    }

    /// Writes one queued event, and a checkpoint when one is due by count.
    fn write_event(
        &mut self,
        event: Event,
        time: SystemTime,
        counters: &Counters,
    ) -> std::io::Result<()> {
        match event {
            Event::Decision(r) => self.append("decision", &*r, time)?,
            Event::Admin(r) => self.append("admin", &r, time)?,
            Event::Approval(r) => self.append("approval", &r, time)?,
        }
        counters.written.fetch_add(1, Ordering::Relaxed);
        let every = self.cfg.checkpoint.as_ref().map(|c| c.every_records);
        if every.is_some_and(|n| self.since_checkpoint >= n) {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// The last checkpoint and fsync, at shutdown.
    fn finish(&mut self) -> std::io::Result<()> {
        if self.since_checkpoint > 0 && self.cfg.checkpoint.is_some() {
            self.checkpoint()?;
        }
        self.sync()
    }

    fn checkpoint(&mut self) -> std::io::Result<()> {
        let Some(c) = &self.cfg.checkpoint else {
            return Ok(());
        };
        let key_id =
            (c.key_id.clone()).unwrap_or_else(|| checkpoint::key_id_of(&c.key.verifying_key()));
        let body: Checkpoint = checkpoint::sign(&c.key, &key_id, self.next_seq, &self.prev);
        self.append("checkpoint", &body, SystemTime::now())?;
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Numbers, links, seals and writes one record; rotates after it when the file is
    /// full.
    fn append<T: Serialize>(
        &mut self,
        kind: &'static str,
        body: &T,
        time: SystemTime,
    ) -> std::io::Result<()> {
        let time = humantime::format_rfc3339_micros(time).to_string();
        let unsealed = unsealed(self.next_seq, &time, kind, body, &self.prev)
            .map_err(std::io::Error::other)?;
        let (mut line, hash) = seal(&unsealed);
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file_bytes += line.len() as u64;
        self.next_seq += 1;
        self.prev = hash;
        self.dirty = true;
        if kind != "checkpoint" {
            self.since_checkpoint += 1;
        }
        if self.file_bytes >= self.cfg.max_file_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// Renames the full active file to `PATH.<first seq of the new file − …>` and
    /// starts a new one; the chain continues in it.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.sync()?;
        let rotated = rotated_name(&self.cfg.path, self.next_seq - 1);
        std::fs::rename(&self.cfg.path, &rotated)?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.cfg.path)?;
        self.file = BufWriter::with_capacity(64 * 1024, file);
        self.file_bytes = 0;
        if let Some(dir) = self.cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename and the new file survive a crash only once the directory is
            // synced.
            File::open(dir)?.sync_all()?;
        }
        tracing::info!(rotated = %rotated.display(), "audit file rotated");
        // Bounded disk use: the oldest rotated files beyond `retain_files` go.
        let rotated = rotated_files(&self.cfg.path)?;
        let surplus = rotated.len().saturating_sub(self.cfg.retain_files);
        for old in &rotated[..surplus] {
            std::fs::remove_file(old)?;
            tracing::info!(deleted = %old.display(), "old rotated audit file deleted (audit.retain_files)");
        }
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
        self.dirty = false;
        Ok(())
    }
}

/// `PATH.<last seq in it, 20 digits>`: names sort in chain order.
pub(super) fn rotated_name(path: &Path, last_seq: u64) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{last_seq:020}"));
    PathBuf::from(name)
}

/// The newest rotated file next to `path`, if any.
fn newest_rotated(path: &Path) -> std::io::Result<Option<PathBuf>> {
    Ok(rotated_files(path)?.pop())
}

/// The rotated files next to `path`, oldest first (their names sort in chain order).
fn rotated_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(base)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", base.to_string_lossy());
    let mut rotated = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(digits) = name.strip_prefix(&prefix) else {
            continue;
        };
        if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
            rotated.push(dir.join(&name));
        }
    }
    rotated.sort();
    Ok(rotated)
}

/// Where the chain continues after `line` (the last record of `path`).
fn position_after(path: &Path, line: &str) -> Result<(u64, String), AuditError> {
    let unreadable = || AuditError::Tail {
        path: path.display().to_string(),
    };
    let hash = claimed_hash(line).ok_or_else(unreadable)?;
    let v: serde_json::Value = serde_json::from_str(line).map_err(|_| unreadable())?;
    let seq = v["seq"].as_u64().ok_or_else(unreadable)?;
    Ok((seq + 1, hash.to_string()))
}

/// Cuts a partial last line (no trailing newline) off; returns the bytes cut.
fn cut_partial_line(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(0);
    }
    let keep = match find_last_newline(file, len)? {
        Some(pos) => pos + 1,
        None => 0,
    };
    file.set_len(keep)?;
    file.sync_data()?;
    Ok(len - keep)
}

/// The last complete line (without its newline), if the file has one.
fn last_line(file: &mut File) -> std::io::Result<Option<String>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let start = match find_last_newline(file, len - 1)? {
        Some(pos) => pos + 1,
        None => 0,
    };
    let mut buf = vec![0u8; (len - 1 - start) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut buf)?;
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// The offset of the last `\n` before `end`, reading backwards in blocks.
fn find_last_newline(file: &mut File, end: u64) -> std::io::Result<Option<u64>> {
    const BLOCK: u64 = 64 * 1024;
    let mut end = end;
    let mut buf = vec![0u8; BLOCK as usize];
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(Some(start + i as u64));
        }
        end = start;
    }
    Ok(None)
}
