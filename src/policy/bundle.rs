//! A policy directory read into memory and compiled: the Rego modules, the data merged
//! into `data`, and a version derived from the content.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::PolicyError;

/// Largest policy file read (a policy directory is configuration, not a database).
const MAX_FILE_BYTES: u64 = 4 << 20;

/// What kind of file a path in the policy directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// A Rego module that serves requests.
    Rego,
    /// A Rego unit-test module (`*_test.rego`): loaded by `policy test` only.
    RegoTest,
    /// JSON data.
    Json,
    /// YAML data.
    Yaml,
}

fn kind_of(path: &Path) -> Option<FileKind> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') {
        return None;
    }
    if name.ends_with("_test.rego") {
        Some(FileKind::RegoTest)
    } else if name.ends_with(".rego") {
        Some(FileKind::Rego)
    } else if name.ends_with(".json") {
        Some(FileKind::Json)
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        Some(FileKind::Yaml)
    } else {
        None
    }
}

/// The files of a policy directory, in a stable order.
#[derive(Debug, Clone)]
pub(super) struct Bundle {
    files: Vec<(PathBuf, FileKind, String)>,
    /// Hex of the first 8 bytes of a SHA-256 over every file's path and content.
    pub version: String,
}

impl Bundle {
    /// Reads every policy file under `dir` (recursively; hidden entries skipped).
    pub(super) fn read(dir: &Path) -> Result<Bundle, PolicyError> {
        let mut paths = Vec::new();
        collect(dir, &mut paths)?;
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        let mut files = Vec::with_capacity(paths.len());
        let mut hash = Sha256::new();
        for (path, kind) in paths {
            let text = read_limited(&path)?;
            let shown = path.display().to_string();
            hash.update((shown.len() as u64).to_be_bytes());
            hash.update(shown.as_bytes());
            hash.update((text.len() as u64).to_be_bytes());
            hash.update(text.as_bytes());
            files.push((path, kind, text));
        }
        if !files.iter().any(|(_, k, _)| *k == FileKind::Rego) {
            return Err(PolicyError::Empty(dir.display().to_string()));
        }
        Ok(Bundle {
            files,
            version: hex::encode(&hash.finalize()[..8]),
        })
    }

    /// A regorus engine with the modules (test modules too when `with_tests`) and data.
    pub(super) fn engine(&self, with_tests: bool) -> Result<regorus::Engine, PolicyError> {
        let mut engine = regorus::Engine::new();
        for (path, kind, text) in &self.files {
            let shown = path.display().to_string();
            match kind {
                FileKind::Rego => add_module(&mut engine, shown, text)?,
                FileKind::RegoTest if with_tests => add_module(&mut engine, shown, text)?,
                FileKind::RegoTest => {}
                FileKind::Json | FileKind::Yaml => {
                    let json: serde_json::Value = if *kind == FileKind::Json {
                        serde_json::from_str(text).map_err(|e| data_error(&shown, e))?
                    } else {
                        serde_yaml_ng::from_str(text).map_err(|e| data_error(&shown, e))?
                    };
                    if !json.is_object() {
                        return Err(data_error(&shown, "the top level must be a mapping"));
                    }
                    let value: regorus::Value =
                        serde_json::from_value(json).map_err(|e| data_error(&shown, e))?;
                    engine.add_data(value).map_err(|e| data_error(&shown, e))?;
                }
            }
        }
        Ok(engine)
    }

    /// The test modules: (path, text).
    pub(super) fn test_modules(&self) -> impl Iterator<Item = (&Path, &str)> {
        self.files
            .iter()
            .filter(|(_, k, _)| *k == FileKind::RegoTest)
            .map(|(p, _, t)| (p.as_path(), t.as_str()))
    }

    /// Compiles the serving modules for `entrypoint`.
    pub(super) fn compile(&self, entrypoint: &str) -> Result<regorus::CompiledPolicy, PolicyError> {
        let mut engine = self.engine(false)?;
        engine
            .compile_with_entrypoint(&entrypoint.into())
            .map_err(|e| PolicyError::Compile(format!("entrypoint `{entrypoint}`: {e}")))
    }
}

fn add_module(engine: &mut regorus::Engine, path: String, text: &str) -> Result<(), PolicyError> {
    engine
        .add_policy(path, text.to_string())
        .map(drop)
        .map_err(|e| PolicyError::Compile(e.to_string()))
}

fn data_error(path: &str, e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Data {
        path: path.to_string(),
        message: e.to_string(),
    }
}

fn read_error(path: &Path, e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn collect(dir: &Path, out: &mut Vec<(PathBuf, FileKind)>) -> Result<(), PolicyError> {
    let entries = std::fs::read_dir(dir).map_err(|e| read_error(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| read_error(dir, e))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue; // hidden, including Kubernetes' `..data` ConfigMap links
        }
        // `metadata` follows symlinks, as a mounted ConfigMap needs.
        let meta = std::fs::metadata(&path).map_err(|e| read_error(&path, e))?;
        if meta.is_dir() {
            collect(&path, out)?;
        } else if let Some(kind) = kind_of(&path) {
            out.push((path, kind));
        }
    }
    Ok(())
}

fn read_limited(path: &Path) -> Result<String, PolicyError> {
    let meta = std::fs::metadata(path).map_err(|e| read_error(path, e))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(read_error(
            path,
            format_args!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    std::fs::read_to_string(path).map_err(|e| read_error(path, e))
}
