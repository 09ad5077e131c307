//! The `telemetry` section: where traces are exported and how many allowed decisions are
//! logged, as written ([`RawTelemetry`]) and validated together with the standard
//! `OTEL_*` environment variables ([`TelemetryConfig`]). A variable that is set wins
//! over the key.
//!
//! A key that is wrong is a config error naming it. An `OTEL_*` variable actbridge
//! cannot honour (a platform injects them into every pod, for every language) does not
//! stop the sidecar: traces are switched off and a warning names the variable.
//!
//! ```text
//! telemetry:
//!   otlp_endpoint: http://127.0.0.1:4317
//!   otlp_protocol: grpc
//!   service_name: actbridge-summarizer-tech
//!   sample_ratio: 0.25
//!   log_allowed: 0.01
//! ```

use serde::Deserialize;
use url::Url;

use super::ConfigError;
use super::sources::Sources;

/// `telemetry`: OpenTelemetry traces (docs/observability.md). Without this section and
/// without `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, no
/// exporter runs and spans cost next to nothing.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// The OTLP collector spans are exported to, e.g. `http://127.0.0.1:4317` (gRPC)
    /// or `http://127.0.0.1:4318` (http/protobuf; `/v1/traces` is added to a URL without
    /// a path). `https://` for TLS, verified against the system's roots. Overridden by
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as written), then
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended for http/protobuf). Unset =
    /// no exporter.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// `grpc` (default) or `http/protobuf`. Overridden by
    /// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, then `OTEL_EXPORTER_OTLP_PROTOCOL`.
    #[serde(default)]
    pub otlp_protocol: Option<OtlpProtocol>,
    /// The share of allowed decisions logged at `info` (one line each, with request id,
    /// route, user and agent), from `0.0` to `1.0`. Default `0.01`. Every refusal is
    /// logged (at most 20 lines a second), and every decision is in the audit log and
    /// the metrics whatever this says; `1.0` logs every allowed request, at most 100
    /// lines a second (the next line says how many were left out).
    #[serde(default)]
    pub log_allowed: Option<f64>,
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

/// How spans are sent to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (port 4317 by convention).
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318; the OpenTelemetry SDKs' default).
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl OtlpProtocol {
    /// The name the OpenTelemetry spec gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// The default [`TelemetryConfig::log_allowed`].
pub const DEFAULT_LOG_ALLOWED: f64 = 0.01;

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

/// The validated trace and log settings (the `telemetry` section and `OTEL_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// Where spans are sent (for http/protobuf, the full URL with its path); `None` =
    /// no exporter.
    pub otlp_endpoint: Option<Url>,
    /// How spans are sent.
    pub otlp_protocol: OtlpProtocol,
    /// `service.name`.
    pub service_name: String,
    /// Which traces are recorded.
    pub sampling: Sampling,
    /// The share of allowed decisions logged at `info`.
    pub log_allowed: f64,
    /// What was set aside and why (an `OTEL_*` value actbridge cannot honour), logged
    /// as warnings once logging runs.
    pub warnings: Vec<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            otlp_protocol: OtlpProtocol::Grpc,
            service_name: "actbridge".into(),
            sampling: Sampling::ParentBased(Root::AlwaysOn),
            log_allowed: DEFAULT_LOG_ALLOWED,
            warnings: Vec::new(),
        }
    }
}

/// A variable's value, unless unset or empty (the OpenTelemetry spec treats an empty
/// value as unset).
fn var(env: &Sources<'_>, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

pub(super) fn validate_telemetry(
    raw: Option<&RawTelemetry>,
    env: &Sources<'_>,
) -> Result<TelemetryConfig, ConfigError> {
    let default = RawTelemetry::default();
    let raw = raw.unwrap_or(&default);
    let log_allowed = match raw.log_allowed {
        Some(r) => ratio("telemetry.log_allowed", r)?,
        None => DEFAULT_LOG_ALLOWED,
    };
    let traces: Result<_, ConfigError> = (|| {
        let (otlp_protocol, otlp_endpoint) = exporter(raw, env)?;
        Ok(TelemetryConfig {
            otlp_endpoint,
            otlp_protocol,
            service_name: service_name(raw, env)?,
            sampling: sampling(raw, env)?,
            log_allowed,
            warnings: Vec::new(),
        })
    })();
    match traces {
        Ok(cfg) => Ok(cfg),
        // A variable the platform set: traces off, the sidecar up, the operator told.
        Err(e) if e.key().is_some_and(|k| k.starts_with("OTEL_")) => Ok(TelemetryConfig {
            log_allowed,
            warnings: vec![format!("{e}: traces are not exported")],
            ..TelemetryConfig::default()
        }),
        Err(e) => Err(e),
    }
}

/// The protocol and the endpoint (for http/protobuf, with its path), if any.
fn exporter(
    raw: &RawTelemetry,
    env: &Sources<'_>,
) -> Result<(OtlpProtocol, Option<Url>), ConfigError> {
    let protocol = protocol(raw, env)?;
    let Some((key, mut url)) = endpoint(raw, env)? else {
        return Ok((protocol, None));
    };
    if protocol == OtlpProtocol::HttpProtobuf {
        // The spec: the signal's own variable is the full URL; the generic one is a base
        // the signal's path is appended to. The key is a base when it has no path.
        let append = match key {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => false,
            "OTEL_EXPORTER_OTLP_ENDPOINT" => true,
            _ => url.path() == "/",
        };
        if append {
            let path = format!("{}/v1/traces", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
    }
    Ok((protocol, Some(url)))
}

fn protocol(raw: &RawTelemetry, env: &Sources<'_>) -> Result<OtlpProtocol, ConfigError> {
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(p) = var(env, name) {
            return match p.as_str() {
                "grpc" => Ok(OtlpProtocol::Grpc),
                "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
                _ => Err(ConfigError::invalid(
                    name,
                    format_args!("`{p}` is not supported (only `grpc` and `http/protobuf`)"),
                )),
            };
        }
    }
    Ok(raw.otlp_protocol.unwrap_or_default())
}

/// The endpoint and the variable or key it came from.
fn endpoint(
    raw: &RawTelemetry,
    env: &Sources<'_>,
) -> Result<Option<(&'static str, Url)>, ConfigError> {
    if var(env, "OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match var(env, "OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(ConfigError::invalid(
                "OTEL_TRACES_EXPORTER",
                format_args!("`{other}` is not supported (only `otlp` and `none`)"),
            ));
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
    Ok(Some((key, url)))
}

fn service_name(raw: &RawTelemetry, env: &Sources<'_>) -> Result<String, ConfigError> {
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

fn sampling(raw: &RawTelemetry, env: &Sources<'_>) -> Result<Sampling, ConfigError> {
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

    /// The section validated with `env` as the environment.
    fn validate_telemetry(
        raw: Option<&RawTelemetry>,
        env: &HashMap<String, String>,
    ) -> Result<TelemetryConfig, ConfigError> {
        super::validate_telemetry(raw, &Sources::new(env))
    }

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
            ..RawTelemetry::default()
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
    fn key_errors_name_the_key() {
        let cases = [
            (
                raw(Some("collector:4317"), None, None),
                "telemetry.otlp_endpoint",
            ),
            (
                raw(Some("ftp://c:4317"), None, None),
                "telemetry.otlp_endpoint",
            ),
            (
                raw(Some("http://u:p@c:4317"), None, None),
                "telemetry.otlp_endpoint",
            ),
            (raw(None, None, Some(-0.1)), "telemetry.sample_ratio"),
            (raw(None, Some(" "), None), "telemetry.service_name"),
            (
                RawTelemetry {
                    log_allowed: Some(1.5),
                    ..RawTelemetry::default()
                },
                "telemetry.log_allowed",
            ),
        ];
        for (r, key) in cases {
            let err = validate_telemetry(Some(&r), &env(&[])).unwrap_err();
            assert_eq!(err.key(), Some(key), "{err}");
        }
    }

    #[test]
    fn otel_values_not_understood_switch_traces_off_with_a_warning() {
        let cases: [&[(&str, &str)]; 6] = [
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "nope")],
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
            &[("OTEL_TRACES_EXPORTER", "zipkin")],
            &[("OTEL_TRACES_SAMPLER", "sometimes")],
            &[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ],
            &[("OTEL_SERVICE_NAME", "\u{7}")],
        ];
        let r = RawTelemetry {
            log_allowed: Some(0.5),
            ..raw(Some("http://c:4317"), None, None)
        };
        for vars in cases {
            let cfg = validate_telemetry(Some(&r), &env(vars)).unwrap();
            assert_eq!(cfg.otlp_endpoint, None, "{vars:?}");
            assert_eq!(cfg.warnings.len(), 1, "{vars:?}");
            let (name, value) = vars[vars.len() - 1];
            let warning = &cfg.warnings[0];
            assert!(
                warning.contains(name) && warning.ends_with("traces are not exported"),
                "{warning}"
            );
            if name != "OTEL_SERVICE_NAME" && name != "OTEL_TRACES_SAMPLER_ARG" {
                assert!(warning.contains(value), "{warning}");
            }
            // The rest of the section still holds.
            assert_eq!(cfg.log_allowed, 0.5);
        }
    }

    #[test]
    fn http_protobuf_gets_the_signal_path_where_the_spec_says() {
        let proto = |vars: &[(&str, &str)], key: Option<&str>| {
            let r = RawTelemetry {
                otlp_protocol: Some(OtlpProtocol::HttpProtobuf),
                ..raw(key, None, None)
            };
            let cfg = validate_telemetry(Some(&r), &env(vars)).unwrap();
            assert_eq!(cfg.otlp_protocol, OtlpProtocol::HttpProtobuf);
            cfg.otlp_endpoint.unwrap().to_string()
        };
        assert_eq!(proto(&[], Some("http://c:4318")), "http://c:4318/v1/traces");
        assert_eq!(
            proto(&[], Some("http://c:4318/custom")),
            "http://c:4318/custom"
        );
        let base = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/otlp/")];
        assert_eq!(proto(&base, None), "http://c:4318/otlp/v1/traces");
        let full = [("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/x")];
        assert_eq!(proto(&full, None), "http://c:4318/x");
        // The protocol variable wins over the key, the traces one over the generic one.
        let vars = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ];
        let cfg = validate_telemetry(Some(&raw(Some("http://c:4318"), None, None)), &env(&vars));
        let cfg = cfg.unwrap();
        assert_eq!(cfg.otlp_protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(cfg.otlp_endpoint.unwrap().path(), "/v1/traces");
        let vars = [("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")];
        let r = RawTelemetry {
            otlp_protocol: Some(OtlpProtocol::HttpProtobuf),
            ..raw(Some("http://c:4317"), None, None)
        };
        let cfg = validate_telemetry(Some(&r), &env(&vars)).unwrap();
        assert_eq!(cfg.otlp_protocol, OtlpProtocol::Grpc);
        assert_eq!(cfg.otlp_endpoint.unwrap().path(), "/");
    }
}
