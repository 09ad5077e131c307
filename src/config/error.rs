use std::fmt;

/// Why the configuration was refused. Every variant names the key (a dotted path such
/// as `outbound.routes[1].host`) and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The path that was tried.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML did not parse into the config's shape (unknown key, wrong type, …).
    #[error("config key `{key}`: {message}")]
    Parse {
        /// Dotted path of the offending key (`.` for the document root).
        key: String,
        /// The parser's message.
        message: String,
    },
    /// A key parsed but its value is not acceptable.
    #[error("config key `{key}`: {problem}")]
    Invalid {
        /// Dotted path of the offending key.
        key: String,
        /// What is wrong and what would be right.
        problem: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl fmt::Display, problem: impl fmt::Display) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            problem: problem.to_string(),
        }
    }

    /// The key this error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Parse { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
        }
    }
}
