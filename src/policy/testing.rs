//! `actbridge policy test`: runs the Rego unit tests of a policy directory, as `opa test`
//! does — every rule whose name starts with `test_` in a `*_test.rego` module must
//! evaluate to `true`.

use std::path::Path;

use super::PolicyError;
use super::bundle::Bundle;

/// One test's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    /// `data.<package>.<rule>`.
    pub name: String,
    /// `None` = passed; else why it failed.
    pub failure: Option<String>,
}

/// All results, in file order.
#[derive(Debug, Clone, Default)]
pub struct TestReport {
    /// One per test rule.
    pub outcomes: Vec<TestOutcome>,
}

impl TestReport {
    /// How many failed.
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.failure.is_some()).count()
    }
}

/// Loads every module (tests included) and data under `dir` and evaluates each test rule.
pub fn run_tests(dir: &Path) -> Result<TestReport, PolicyError> {
    let bundle = Bundle::read(dir)?;
    let mut engine = bundle.engine(true)?;
    let mut report = TestReport::default();
    // A module without `package` did not compile above, so every test module has one.
    let tests: Vec<(String, String)> = bundle
        .test_modules()
        .filter_map(|(_, text)| Some((package_of(text)?, test_rules(text))))
        .flat_map(|(package, rules)| rules.into_iter().map(move |r| (package.clone(), r)))
        .collect();
    for (package, rule) in tests {
        let name = format!("data.{package}.{rule}");
        let failure = match engine.eval_rule(name.clone()) {
            Ok(regorus::Value::Bool(true)) => None,
            Ok(regorus::Value::Undefined) => Some("undefined (a condition did not hold)".into()),
            Ok(v) => Some(format!("evaluated to {v}")),
            Err(e) => Some(format!("error: {e}")),
        };
        report.outcomes.push(TestOutcome { name, failure });
    }
    Ok(report)
}

/// The module's package (`package a.b` → `a.b`).
fn package_of(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("package "))
        .map(|p| p.trim().to_string())
}

/// Names of the test rules: a line that starts (at column 0, as `opa fmt` writes rule
/// heads) with `test_<name>`. Found by scanning because regorus exposes no stable API
/// for a module's rule names. A rule with several bodies is listed once.
fn test_rules(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if !line.starts_with("test_") {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}
