//! Where the config's outside values come from while it is validated: environment
//! variables, and files named by relative or absolute paths. A relative path is read
//! from the config file's directory — every one of them, secrets, keys and CA files as
//! well as the policy directory and the audit file — so the same file works whatever
//! the working directory.
//!
//! Offline (`check-config --offline`), secrets are not read: a `*_file` that holds a
//! secret or a private key need not exist and a `*_env` variable need not be set. The
//! key is then validated with a stand-in (a placeholder string, a key generated for
//! the occasion) and listed as not checked. Everything else is checked as at start.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use super::{ConfigError, Env};

pub(crate) struct Sources<'a> {
    env: &'a dyn Env,
    base: Option<PathBuf>,
    offline: bool,
    /// The keys whose secret was not read (offline).
    unread: RefCell<Vec<String>>,
}

impl<'a> Sources<'a> {
    /// Variables from `env`; relative paths from the working directory.
    pub(crate) fn new(env: &'a dyn Env) -> Self {
        Sources {
            env,
            base: None,
            offline: false,
            unread: RefCell::new(Vec::new()),
        }
    }

    /// Relative paths read from `dir` (the config file's directory).
    pub(crate) fn relative_to(mut self, dir: Option<&Path>) -> Self {
        self.base = dir
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_path_buf);
        self
    }

    /// Secrets are not read.
    pub(crate) fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// The keys whose secret was not read.
    pub(crate) fn unread(&self) -> Vec<String> {
        self.unread.borrow().clone()
    }

    /// The environment.
    pub(crate) fn env(&self) -> &dyn Env {
        self.env
    }

    /// An environment variable (not a secret).
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        self.env.get(name)
    }

    /// `path` as read: relative to the config file's directory.
    pub(crate) fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        let p = path.as_ref();
        match &self.base {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// The file at `path` (config key `key`), which is not a secret: read in every mode.
    pub(crate) fn file(&self, key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
        std::fs::read(self.path(path))
            .map_err(|e| ConfigError::invalid(key, format_args!("cannot read `{path}`: {e}")))
    }

    /// The secret file at `path` (config key `key`); `None` offline.
    pub(crate) fn secret_file(
        &self,
        key: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, ConfigError> {
        if self.offline {
            self.unread.borrow_mut().push(key.to_string());
            return Ok(None);
        }
        self.file(key, path).map(Some)
    }

    /// The secret in variable `name` (config key `key`); `None` offline.
    pub(crate) fn secret_var(&self, key: &str, name: &str) -> Result<Option<String>, ConfigError> {
        if self.offline {
            self.unread.borrow_mut().push(key.to_string());
            return Ok(None);
        }
        self.env.get(name).map(Some).ok_or_else(|| {
            ConfigError::invalid(
                key,
                format_args!("environment variable `{name}` is not set"),
            )
        })
    }
}

/// The stand-in for a secret string not read offline.
pub(crate) const OFFLINE_SECRET: &str = "not-read-offline";
