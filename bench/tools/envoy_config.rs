//! The Envoy config of one bench case: the shipped `envoy/sidecar.yaml` rendered for
//! local ports by the same code the demo and the tests use, then, on the inbound
//! listener only, the ext_proc filter kept (`extproc`: actbridge or the no-op server,
//! exactly the shipped settings), removed (`plain`) or replaced by Envoy's own
//! `jwt_authn` verifying against a local JWKS file (`jwt`). `direct` removes the filter
//! and answers from Envoy itself (`direct_response`, no upstream): a reference point.

use std::path::PathBuf;

use actbridge_devkit::sidecar::{ExtProcEndpoint, SidecarPorts, render};
use anyhow::{Context, bail};
use serde_yaml_ng::Value;

/// `bench-tools envoy-config`.
#[derive(clap::Args)]
pub struct Args {
    /// The shipped bootstrap.
    #[arg(long, default_value = "envoy/sidecar.yaml")]
    template: PathBuf,
    /// `extproc`, `plain`, `jwt` or `direct`.
    #[arg(long)]
    variant: String,
    /// Envoy's admin port.
    #[arg(long)]
    admin: u16,
    /// The inbound listener's port.
    #[arg(long)]
    inbound: u16,
    /// The outbound listener's port.
    #[arg(long)]
    outbound: u16,
    /// The ext_proc server: `tcp://127.0.0.1:PORT` or `unix:///PATH`.
    #[arg(long)]
    ext_proc: String,
    /// The upstream (the `app`, `document_service`, `aws_s3` and `github_api` clusters).
    #[arg(long)]
    upstream: u16,
    /// For `jwt`: the JWKS file.
    #[arg(long)]
    jwks: Option<PathBuf>,
    /// For `jwt`: the issuer.
    #[arg(long)]
    issuer: Option<String>,
    /// For `jwt`: the accepted audience.
    #[arg(long)]
    audience: Option<String>,
    /// An actbridge config whose route table the outbound routes are generated from.
    #[arg(long)]
    routes_from: Option<PathBuf>,
    /// Where to write the config.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let template = std::fs::read_to_string(&args.template)
        .with_context(|| format!("{}", args.template.display()))?;
    let ext_proc = if let Some(p) = args.ext_proc.strip_prefix("tcp://127.0.0.1:") {
        ExtProcEndpoint::Tcp(p.parse().context("--ext-proc port")?)
    } else if let Some(p) = args.ext_proc.strip_prefix("unix://") {
        ExtProcEndpoint::Unix(PathBuf::from(p))
    } else {
        bail!("--ext-proc: tcp://127.0.0.1:PORT or unix:///PATH");
    };
    let rendered = render(
        &template,
        &SidecarPorts {
            sds: None,
            admin: args.admin,
            inbound: args.inbound,
            outbound: args.outbound,
            ext_proc,
            app: args.upstream,
            document_service: args.upstream,
            aws_s3: args.upstream,
            github_api: args.upstream,
        },
    )?;
    let rendered = match &args.routes_from {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
            let table = actbridge::config::route_table_from_yaml(&text)?
                .context("--routes-from: no outbound routes")?;
            actbridge_devkit::sidecar::with_routes(
                &rendered,
                &actbridge::envoy_routes::outbound_route_config_yaml(&table),
            )?
        }
        None => rendered,
    };
    let mut doc: Value = serde_yaml_ng::from_str(&rendered)?;
    let listeners = doc["static_resources"]["listeners"]
        .as_sequence_mut()
        .context("no listeners")?;
    let inbound = listeners
        .iter_mut()
        .find(|l| l["name"].as_str() == Some("inbound"))
        .context("no inbound listener")?;
    let filters = inbound["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        .as_sequence_mut()
        .context("no inbound http_filters")?;
    let at = filters
        .iter()
        .position(|f| f["name"].as_str() == Some("envoy.filters.http.ext_proc"))
        .context("no ext_proc filter on the inbound listener")?;
    match args.variant.as_str() {
        "extproc" => {}
        "plain" => {
            filters.remove(at);
        }
        "direct" => {
            filters.remove(at);
            let hcm = &mut inbound["filter_chains"][0]["filters"][0]["typed_config"];
            hcm["route_config"]["virtual_hosts"][0]["routes"][0] = serde_yaml_ng::from_str(
                r#"{match: {prefix: "/"}, direct_response: {status: 200, body: {inline_string: "ok\n"}}}"#,
            )?;
        }
        "jwt" => {
            let (Some(jwks), Some(issuer), Some(audience)) =
                (&args.jwks, &args.issuer, &args.audience)
            else {
                bail!("--variant jwt needs --jwks, --issuer and --audience");
            };
            let filter = format!(
                r#"
name: envoy.filters.http.jwt_authn
typed_config:
  "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
  providers:
    sts:
      issuer: "{issuer}"
      audiences: ["{audience}"]
      local_jwks: {{ filename: "{jwks}" }}
      forward: true
  rules:
  - match: {{ prefix: "/" }}
    requires: {{ provider_name: sts }}
"#,
                jwks = jwks.display()
            );
            filters[at] = serde_yaml_ng::from_str(&filter)?;
        }
        other => bail!("--variant {other}: extproc, plain, jwt or direct"),
    }
    std::fs::write(&args.out, serde_yaml_ng::to_string(&doc)?)?;
    Ok(())
}
