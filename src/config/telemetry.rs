//! The `telemetry` section: where traces are exported, as written ([`RawTelemetry`]) and
//! validated together with the standard `OTEL_*` environment variables
//! ([`TelemetryConfig`]). A variable that is set wins over the key; an error names the
//! variable or the key it came from.
//!
//! ```text
//! telemetry:
//!   otlp_endpoint: http://127.0.0.1:4317
//!   service_name: actbridge-summarizer-tech
//!   sample_ratio: 0.25
//! ```

use serde::Deserialize;
use url::Url;

use super::{ConfigError, Env};

/// `telemetry`: OpenTelemetry traces (docs/observability.md). Without this section and
/// without `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, no
/// exporter runs and spans cost next to nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// The OTLP/gRPC collector spans are exported to, e.g. `http://127.0.0.1:4317`
    /// (`https://` for TLS, verified against the system's roots). Overridden by
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, then `OTEL_EXPORTER_OTLP_ENDPOINT`. Unset =
    /// no exporter.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute. Overridden by `OTEL_SERVICE_NAME`.
    /// Default: `service.name` from `OTEL_RESOURCE_ATTRIBUTES`, else `actbridge`.
    #[serde(default)]
    pub service_name: Option<String>,
    /// The share of new traces recorded, from `0.0` to `1.0`; a request that arrives
    /// with a `traceparent` follows its caller's sampling decision
    /// (`parentbased_traceidratio`). Overridden by `OTEL_TRACES_SAMPLER` (and
    /// `OTEL_TRACES_SAMPLER_ARG`). Default `1.0`. Decided before a request's spans
    /// are made: an unsampled request costs next to nothing (docs/observability.md,
    /// "Sampling"); a traced one about 10 µs of CPU, so sample a share in production.
    #[serde(default)]
    pub sample_ratio: Option<f64>,
}

/// Which traces are recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// This share of trace ids (0.0 to 1.0).
    Ratio(f64),
    /// The caller's decision when the request names a sampled or unsampled parent; the
    /// inner rule for traces that start here.
    ParentBased(Root),
}

/// The rule for traces that start at actbridge, under [`Sampling::ParentBased`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Root {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// This share of trace ids.
    Ratio(f64),
}

/// The validated trace settings (the `telemetry` section and `OTEL_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// The OTLP/gRPC endpoint; `None` = no exporter.
    pub otlp_endpoint: Option<Url>,
    /// `service.name`.
    pub service_name: String,
    /// Which traces are recorded.
    pub sampling: Sampling,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: "actbridge".into(),
            sampling: Sampling::ParentBased(Root::AlwaysOn),
        }
    }
}

/// A variable's value, unless unset or empty (the OpenTelemetry spec treats an empty
/// value as unset).
fn var(env: &dyn Env, name: &str) -> Option<String> {
    env.get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

pub(super) fn validate_telemetry(
    raw: Option<&RawTelemetry>,
    env: &dyn Env,
) -> Result<TelemetryConfig, ConfigError> {
    let default = RawTelemetry::default();
    let raw = raw.unwrap_or(&default);
    Ok(TelemetryConfig {
        otlp_endpoint: endpoint(raw, env)?,
        service_name: service_name(raw, env)?,
        sampling: sampling(raw, env)?,
    })
}

fn endpoint(raw: &RawTelemetry, env: &dyn Env) -> Result<Option<Url>, ConfigError> {
    if var(env, "OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match var(env, "OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(ConfigError::invalid(
                "OTEL_TRACES_EXPORTER",
                format_args!("`{other}`: only `otlp` and `none` are supported"),
            ));
        }
    }
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(p) = var(env, name) {
            if p != "grpc" {
                return Err(ConfigError::invalid(
                    name,
                    format_args!("`{p}`: actbridge exports OTLP over gRPC only (`grpc`)"),
                ));
            }
            break;
        }
    }
    let chosen = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .find_map(|name| var(env, name).map(|v| (name, v)))
    .or_else(|| {
        raw.otlp_endpoint
            .clone()
            .map(|v| ("telemetry.otlp_endpoint", v))
    });
    let Some((key, value)) = chosen else {
        return Ok(None);
    };
    let url = Url::parse(&value).map_err(|e| {
        ConfigError::invalid(
            key,
            format_args!("`{value}` is not a URL ({e}); write it as http://HOST:PORT"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::invalid(
            key,
            format_args!("`{value}` must be an http:// or https:// URL with a host"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(
            key,
            "must not carry credentials (use OTEL_EXPORTER_OTLP_HEADERS)",
        ));
    }
    Ok(Some(url))
}

fn service_name(raw: &RawTelemetry, env: &dyn Env) -> Result<String, ConfigError> {
    let from_resource = || {
        var(env, "OTEL_RESOURCE_ATTRIBUTES").and_then(|attrs| {
            attrs.split(',').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k.trim() == "service.name").then(|| v.trim().to_string())
            })
        })
    };
    let (key, name) = match var(env, "OTEL_SERVICE_NAME") {
        Some(n) => ("OTEL_SERVICE_NAME", n),
        None => match &raw.service_name {
            Some(n) => ("telemetry.service_name", n.clone()),
            None => return Ok(from_resource().unwrap_or_else(|| "actbridge".into())),
        },
    };
    if name.trim().is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(ConfigError::invalid(
            key,
            "must be 1 to 256 printable characters",
        ));
    }
    Ok(name)
}

fn sampling(raw: &RawTelemetry, env: &dyn Env) -> Result<Sampling, ConfigError> {
    let Some(sampler) = var(env, "OTEL_TRACES_SAMPLER") else {
        return Ok(match raw.sample_ratio {
            None => Sampling::ParentBased(Root::AlwaysOn),
            Some(r) => Sampling::ParentBased(Root::Ratio(ratio("telemetry.sample_ratio", r)?)),
        });
    };
    // The spec's default argument for the ratio samplers is 1.0.
    let arg = || -> Result<f64, ConfigError> {
        const KEY: &str = "OTEL_TRACES_SAMPLER_ARG";
        match var(env, KEY) {
            None => Ok(1.0),
            Some(a) => ratio(
                KEY,
                a.parse().map_err(|_| {
                    ConfigError::invalid(KEY, format_args!("`{a}` is not a number"))
                })?,
            ),
        }
    };
    Ok(match sampler.as_str() {
        "always_on" => Sampling::AlwaysOn,
        "always_off" => Sampling::AlwaysOff,
        "traceidratio" => Sampling::Ratio(arg()?),
        "parentbased_always_on" => Sampling::ParentBased(Root::AlwaysOn),
        "parentbased_always_off" => Sampling::ParentBased(Root::AlwaysOff),
        "parentbased_traceidratio" => Sampling::ParentBased(Root::Ratio(arg()?)),
        other => {
            return Err(ConfigError::invalid(
                "OTEL_TRACES_SAMPLER",
                format_args!(
                    "`{other}`: expected always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
                ),
            ));
        }
    })
}

fn ratio(key: &str, r: f64) -> Result<f64, ConfigError> {
    if !(0.0..=1.0).contains(&r) {
        return Err(ConfigError::invalid(key, "must be between 0.0 and 1.0"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn raw(endpoint: Option<&str>, name: Option<&str>, ratio: Option<f64>) -> RawTelemetry {
        RawTelemetry {
            otlp_endpoint: endpoint.map(str::to_string),
            service_name: name.map(str::to_string),
            sample_ratio: ratio,
        }
    }

    #[test]
    fn without_section_or_variables_nothing_is_exported() {
        let cfg = validate_telemetry(None, &env(&[])).unwrap();
        assert_eq!(cfg, TelemetryConfig::default());
        assert_eq!(cfg.otlp_endpoint, None);
    }

    #[test]
    fn variables_win_over_the_section() {
        let r = raw(Some("http://from-config:4317"), Some("cfg"), Some(0.5));
        let cfg = validate_telemetry(Some(&r), &env(&[])).unwrap();
        assert_eq!(
            cfg.otlp_endpoint.unwrap().as_str(),
            "http://from-config:4317/"
        );
        assert_eq!(cfg.service_name, "cfg");
        assert_eq!(cfg.sampling, Sampling::ParentBased(Root::Ratio(0.5)));

        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces:4317"),
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
        ]);
        let cfg = validate_telemetry(Some(&r), &e).unwrap();
        assert_eq!(cfg.otlp_endpoint.unwrap().as_str(), "https://traces:4317/");
        assert_eq!(cfg.service_name, "from-env");
        assert_eq!(cfg.sampling, Sampling::Ratio(0.1));

        let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317")]);
        let cfg = validate_telemetry(None, &e).unwrap();
        assert_eq!(cfg.otlp_endpoint.unwrap().as_str(), "http://generic:4317/");
    }

    #[test]
    fn service_name_falls_back_to_resource_attributes_then_actbridge() {
        let e = env(&[("OTEL_RESOURCE_ATTRIBUTES", "a=b, service.name=pod-7 ")]);
        assert_eq!(validate_telemetry(None, &e).unwrap().service_name, "pod-7");
        let cfg = validate_telemetry(Some(&raw(None, Some("cfg"), None)), &e).unwrap();
        assert_eq!(cfg.service_name, "cfg");
    }

    #[test]
    fn exporters_can_be_switched_off() {
        let r = raw(Some("http://c:4317"), None, None);
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let cfg = validate_telemetry(Some(&r), &env(&[off])).unwrap();
            assert_eq!(cfg.otlp_endpoint, None, "{off:?}");
        }
        // An empty variable is unset.
        let cfg = validate_telemetry(Some(&r), &env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]));
        assert!(cfg.unwrap().otlp_endpoint.is_some());
    }

    #[test]
    fn every_sampler_name_is_understood() {
        let cases = [
            ("always_on", Sampling::AlwaysOn),
            ("always_off", Sampling::AlwaysOff),
            ("traceidratio", Sampling::Ratio(1.0)),
            (
                "parentbased_always_on",
                Sampling::ParentBased(Root::AlwaysOn),
            ),
            (
                "parentbased_always_off",
                Sampling::ParentBased(Root::AlwaysOff),
            ),
            (
                "parentbased_traceidratio",
                Sampling::ParentBased(Root::Ratio(1.0)),
            ),
        ];
        for (name, want) in cases {
            let cfg = validate_telemetry(None, &env(&[("OTEL_TRACES_SAMPLER", name)])).unwrap();
            assert_eq!(cfg.sampling, want, "{name}");
        }
    }

    #[test]
    fn errors_name_the_variable_or_the_key() {
        type Case = (
            Option<RawTelemetry>,
            &'static [(&'static str, &'static str)],
            &'static str,
        );
        let cases: [Case; 10] = [
            (
                Some(raw(Some("collector:4317"), None, None)),
                &[],
                "telemetry.otlp_endpoint",
            ),
            (
                Some(raw(Some("ftp://c:4317"), None, None)),
                &[],
                "telemetry.otlp_endpoint",
            ),
            (
                Some(raw(Some("http://u:p@c:4317"), None, None)),
                &[],
                "telemetry.otlp_endpoint",
            ),
            (
                None,
                &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "nope")],
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            ),
            (
                None,
                &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                None,
                &[("OTEL_TRACES_EXPORTER", "zipkin")],
                "OTEL_TRACES_EXPORTER",
            ),
            (
                None,
                &[("OTEL_TRACES_SAMPLER", "sometimes")],
                "OTEL_TRACES_SAMPLER",
            ),
            (
                None,
                &[
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "2"),
                ],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (
                Some(raw(None, None, Some(-0.1))),
                &[],
                "telemetry.sample_ratio",
            ),
            (
                Some(raw(None, Some(" "), None)),
                &[],
                "telemetry.service_name",
            ),
        ];
        for (r, vars, key) in cases {
            let err = validate_telemetry(r.as_ref(), &env(vars)).unwrap_err();
            assert_eq!(err.key(), Some(key), "{err}");
        }
    }
}
