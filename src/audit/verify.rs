//! `actbridge audit verify FILE…`: checks the chain across the files given (rotated files
//! first, in name order, the active file last) and, with the public key, every
//! checkpoint's signature; reports the first record that was changed, removed, inserted
//! or reordered.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use super::chain::{GENESIS, claimed_hash, hash_matches};
use super::checkpoint::{self, Checkpoint};

/// What a verification found.
#[derive(Debug, Default)]
pub struct Report {
    /// Records read (all kinds).
    pub records: u64,
    /// Sequence numbers of the first and last record.
    pub first_seq: Option<u64>,
    /// Last sequence number.
    pub last_seq: Option<u64>,
    /// Checkpoints seen.
    pub checkpoints: u64,
    /// Checkpoints whose signature was checked (a public key was given).
    pub checkpoints_verified: u64,
    /// Records after the last checkpoint (not yet covered by a signature).
    pub unsigned_tail: u64,
    /// The first problem; `None` = the log verifies.
    pub problem: Option<Problem>,
}

/// The first thing wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// Kinds of tampering (and damage) the chain reveals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The record's content does not match its own hash (or it does not parse).
    Changed {
        /// Its sequence number, when readable.
        seq: Option<u64>,
    },
    /// Records are missing before this one.
    Removed {
        /// First missing sequence number.
        from: u64,
        /// Last missing sequence number.
        to: u64,
    },
    /// This record comes earlier than its sequence number says.
    Reordered {
        /// The record found here.
        found: u64,
        /// The record that should be here.
        expected: u64,
    },
    /// A record with a sequence number already seen.
    Inserted {
        /// The duplicated sequence number.
        seq: u64,
    },
    /// The record does not link to the one before it (the one before was replaced
    /// with consistent hashes, or this one was put in its place).
    Unlinked {
        /// Its sequence number.
        seq: u64,
    },
    /// The first record of a log that claims to start the chain does not.
    BadStart {
        /// Its sequence number.
        seq: u64,
    },
    /// A checkpoint's signature does not verify with the given key.
    BadSignature {
        /// The checkpoint's sequence number.
        seq: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("{}:{}", self.file.display(), self.line);
        match &self.kind {
            ProblemKind::Changed { seq: Some(s) } => {
                write!(
                    f,
                    "{at}: record {s} was changed (its content does not match its hash)"
                )
            }
            ProblemKind::Changed { seq: None } => {
                write!(
                    f,
                    "{at}: a record was changed (it is not a sealed audit record)"
                )
            }
            ProblemKind::Removed { from, to } if from == to => {
                write!(f, "{at}: record {from} was removed before this line")
            }
            ProblemKind::Removed { from, to } => {
                write!(
                    f,
                    "{at}: records {from} to {to} were removed before this line"
                )
            }
            ProblemKind::Reordered { found, expected } => write!(
                f,
                "{at}: records were reordered (record {found} stands where record {expected} belongs)"
            ),
            ProblemKind::Inserted { seq } => write!(
                f,
                "{at}: a record was inserted (sequence number {seq} appears a second time)"
            ),
            ProblemKind::Unlinked { seq } => write!(
                f,
                "{at}: record {seq} does not follow the record before it (that one was replaced, or this one inserted)"
            ),
            ProblemKind::BadStart { seq } => write!(
                f,
                "{at}: record {seq} claims to start the chain but does not link to its start"
            ),
            ProblemKind::BadSignature { seq } => {
                write!(f, "{at}: checkpoint {seq} has a bad signature")
            }
        }
    }
}

/// The members verification reads.
#[derive(Deserialize)]
struct Members {
    seq: u64,
    kind: String,
    prev: String,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

/// One line of the log, with where it is.
struct Line {
    file: usize,
    line: usize,
    text: String,
}

/// Verifies `files` in the order given. `key`: check checkpoint signatures with it.
pub fn verify(files: &[PathBuf], key: Option<&VerifyingKey>) -> std::io::Result<Report> {
    let lines = read_lines(files)?;
    // Where each sequence number appears, to tell removal from reordering.
    let mut positions: HashMap<u64, usize> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        if let Ok(m) = serde_json::from_str::<Members>(&l.text) {
            positions.entry(m.seq).or_insert(i);
        }
    }
    let mut report = Report::default();
    let mut prev: Option<(u64, String)> = None;
    for (i, l) in lines.iter().enumerate() {
        let problem = |kind| Problem {
            file: files[l.file].clone(),
            line: l.line,
            kind,
        };
        let parsed = serde_json::from_str::<Members>(&l.text).ok();
        let Some(m) = parsed.filter(|_| hash_matches(&l.text)) else {
            let seq = serde_json::from_str::<serde_json::Value>(&l.text)
                .ok()
                .and_then(|v| v["seq"].as_u64());
            report.problem = Some(problem(ProblemKind::Changed { seq }));
            return Ok(report);
        };
        match &prev {
            None if m.seq == 1 && m.prev != GENESIS => {
                report.problem = Some(problem(ProblemKind::BadStart { seq: m.seq }));
                return Ok(report);
            }
            None => report.first_seq = Some(m.seq),
            Some((prev_seq, prev_hash)) => {
                let expected = prev_seq + 1;
                if m.seq > expected {
                    let kind = match positions.get(&expected) {
                        Some(at) if *at > i => ProblemKind::Reordered {
                            found: m.seq,
                            expected,
                        },
                        _ => ProblemKind::Removed {
                            from: expected,
                            to: m.seq - 1,
                        },
                    };
                    report.problem = Some(problem(kind));
                    return Ok(report);
                }
                if m.seq < expected {
                    let kind = if positions.get(&m.seq).is_some_and(|at| *at < i) {
                        ProblemKind::Inserted { seq: m.seq }
                    } else {
                        ProblemKind::Reordered {
                            found: m.seq,
                            expected,
                        }
                    };
                    report.problem = Some(problem(kind));
                    return Ok(report);
                }
                if m.prev != *prev_hash {
                    report.problem = Some(problem(ProblemKind::Unlinked { seq: m.seq }));
                    return Ok(report);
                }
            }
        }
        report.records += 1;
        report.last_seq = Some(m.seq);
        if m.kind == "checkpoint" {
            report.checkpoints += 1;
            report.unsigned_tail = 0;
            if let Some(key) = key {
                let c = Checkpoint {
                    key_id: m.key_id.clone().unwrap_or_default(),
                    signature: m.signature.clone().unwrap_or_default(),
                };
                if !checkpoint::verify(key, &c, m.seq, &m.prev) {
                    report.problem = Some(problem(ProblemKind::BadSignature { seq: m.seq }));
                    return Ok(report);
                }
                report.checkpoints_verified += 1;
            }
        } else {
            report.unsigned_tail += 1;
        }
        let hash = claimed_hash(&l.text).unwrap_or_default().to_string();
        prev = Some((m.seq, hash));
    }
    Ok(report)
}

fn read_lines(files: &[PathBuf]) -> std::io::Result<Vec<Line>> {
    let mut lines = Vec::new();
    for (f, path) in files.iter().enumerate() {
        let reader = BufReader::new(open(path)?);
        for (n, bytes) in reader.split(b'\n').enumerate() {
            let bytes = bytes?;
            lines.push(Line {
                file: f,
                line: n + 1,
                // Invalid UTF-8 is a changed record: the lossy text will not verify.
                text: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
    }
    Ok(lines)
}

fn open(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}
