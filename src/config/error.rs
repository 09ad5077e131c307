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
    /// A `${VAR}` in the file cannot be replaced.
    #[error("`${{{reference}}}`: {problem}")]
    Variable {
        /// What is between the braces.
        reference: String,
        /// Why not (the variable unset, its value unsafe where it stands).
        problem: String,
    },
    /// Every problem found, in the order of the file's sections, each with the line of
    /// the key it names when the file is known: `FILE:LINE: config key …`, one per line.
    #[error("{}", list(file.as_deref(), problems))]
    Several {
        /// The config file, when read from one.
        file: Option<String>,
        /// Each problem (never itself `Several`) and the line of its key, if found.
        problems: Vec<(Option<usize>, ConfigError)>,
    },
}

fn list(file: Option<&str>, problems: &[(Option<usize>, ConfigError)]) -> String {
    let mut out = String::new();
    for (i, (line, e)) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match (file, line) {
            (Some(f), Some(l)) => out.push_str(&format!("{f}:{l}: ")),
            (Some(f), None) => out.push_str(&format!("{f}: ")),
            (None, Some(l)) => out.push_str(&format!("line {l}: ")),
            (None, None) => {}
        }
        out.push_str(&e.to_string());
    }
    if problems.len() > 1 {
        out.push_str(&format!("\n{} problems", problems.len()));
    }
    out
}

/// Problems gathered while validating, so that one run reports them all: each part's
/// result is taken, its errors kept, and the parts that depend on a failed one skipped.
#[derive(Default)]
pub(crate) struct Problems(Vec<(Option<usize>, ConfigError)>);

impl Problems {
    /// `result`'s value, or `None` with its error(s) kept.
    pub(crate) fn take<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    /// Keeps `e` (flattened, when it holds several).
    pub(crate) fn push(&mut self, e: ConfigError) {
        match e {
            ConfigError::Several { problems, .. } => self.0.extend(problems),
            e => self.0.push((None, e)),
        }
    }

    /// Whether nothing was found.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was found; else the one problem, or all of them.
    pub(crate) fn finish(mut self) -> Result<(), ConfigError> {
        match self.0.len() {
            0 => Ok(()),
            1 if self.0[0].0.is_none() => Err(self.0.remove(0).1),
            _ => Err(ConfigError::Several {
                file: None,
                problems: self.0,
            }),
        }
    }

    /// Each problem kept, alone.
    pub(crate) fn into_errors(self) -> Vec<ConfigError> {
        self.0.into_iter().map(|(_, e)| e).collect()
    }

    /// `a` and `b`, as one error.
    pub(crate) fn both(a: ConfigError, b: ConfigError) -> ConfigError {
        let mut p = Problems::default();
        p.push(a);
        p.push(b);
        ConfigError::Several {
            file: None,
            problems: p.0,
        }
    }

    /// Runs `f` on every item, keeping every error; the results in order when all
    /// succeeded.
    pub(crate) fn each<I, T>(
        items: impl IntoIterator<Item = I>,
        mut f: impl FnMut(I) -> Result<T, ConfigError>,
    ) -> Result<Vec<T>, ConfigError> {
        let mut problems = Problems::default();
        let out: Vec<T> = items
            .into_iter()
            .filter_map(|item| problems.take(f(item)))
            .collect();
        problems.finish().map(|()| out)
    }
}

impl ConfigError {
    pub(crate) fn invalid(key: impl fmt::Display, problem: impl fmt::Display) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            problem: problem.to_string(),
        }
    }

    /// The key this error is about (the first one's, when there are several), if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } | ConfigError::Variable { .. } => None,
            ConfigError::Parse { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Several { problems, .. } => problems.first().and_then(|(_, e)| e.key()),
        }
    }

    /// Each problem (one, unless there are several).
    pub fn problems(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Several { problems, .. } => problems.iter().map(|(_, e)| e).collect(),
            e => vec![e],
        }
    }

    /// This error as found in `file`.
    pub(crate) fn in_file(self, file: &std::path::Path) -> ConfigError {
        match self {
            ConfigError::Several { problems, .. } => ConfigError::Several {
                file: Some(file.display().to_string()),
                problems,
            },
            e => e,
        }
    }

    /// This error with `file` and the line of each key named, found in `text` (the
    /// file as parsed), its problems in the file's order.
    pub(crate) fn located(self, file: Option<&str>, text: &str) -> ConfigError {
        let lines = super::lines::KeyLines::of(text);
        let problems = match self {
            ConfigError::Several { problems, .. } => problems,
            ConfigError::Read { .. } => return self,
            e => vec![(None, e)],
        };
        let mut problems: Vec<(Option<usize>, ConfigError)> = problems
            .into_iter()
            .map(|(line, e)| (line.or_else(|| e.key().and_then(|k| lines.line_of(k))), e))
            .collect();
        // In the file's order; those without a line (a variable's) last. Stable: the
        // problems of one key stay in the order found.
        problems.sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
        ConfigError::Several {
            file: file.map(str::to_string),
            problems,
        }
    }
}
