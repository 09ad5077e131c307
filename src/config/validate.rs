//! Turns [`RawConfig`] into the typed [`Config`], filling defaults and refusing what
//! would be unsafe or meaningless. Every error names its key. Each section is validated
//! in its own module, beside its raw and validated types (`listen`, `issuers`, `tokens`,
//! `inbound`, `outbound`, `policy`, `credentials`, `audit`, …); here are the rules that
//! tie sections together, and the helpers they share (URLs, secrets, algorithms).

use jsonwebtoken::Algorithm;
use url::Url;

use super::raw::RawConfig;
use super::routes::RawAction;
use super::sources::Sources;
use super::types::Config;
use super::{ConfigError, Problems};

/// The whole file, section by section (each section's own function), then the rules
/// that tie sections together (delegation and custody need `outbound`, credential routes
/// the `policy`, the deadlines). Every section is checked even when another fails, so
/// that one run reports every problem; a rule that needs a section that failed is
/// skipped (its complaint would be about the other one's mistake).
pub(super) fn validate(raw: RawConfig, env: &Sources<'_>) -> Result<Config, ConfigError> {
    let mut p = Problems::default();
    let listen = p.take(super::listen::validate_listen(&raw));
    let issuers = p.take(super::issuers::validate_issuers(&raw));
    let tokens = p.take(super::tokens::validate_tokens(&raw));
    let credentials = p.take(super::credentials::validate_credentials(
        &raw.credentials,
        env,
    ));
    // `None`: no section; `Some(None)`: a section that failed (or could not be checked).
    let outbound = match (&raw.outbound, &credentials) {
        (None, _) => None,
        (Some(o), Some(c)) => Some(p.take(super::outbound::validate_outbound(o, env, c))),
        (Some(_), None) => Some(None),
    };
    if raw.policy.is_none()
        && let Some(i) = raw
            .outbound
            .iter()
            .flat_map(|o| &o.routes)
            .position(|r| matches!(r.action, RawAction::Credential | RawAction::Vend))
    {
        p.push(ConfigError::invalid(
            format!("outbound.routes[{i}].action"),
            "`credential` and `vend` need the `policy` section: its grant scopes the credential",
        ));
    }
    let inbound = p.take(super::inbound::validate_inbound(
        &raw,
        raw.outbound.is_some(),
    ));
    let admin_api = p.take(
        raw.admin_api
            .as_ref()
            .map(super::admin::validate_admin_api)
            .transpose(),
    );
    let spiffe = p.take(
        raw.spiffe
            .as_ref()
            .map(|s| super::spiffe::validate_spiffe(s, env))
            .transpose(),
    );
    let policy = p.take(
        raw.policy
            .as_ref()
            .map(super::policy::validate_policy)
            .transpose(),
    );
    let audit = p.take(
        raw.audit
            .as_ref()
            .map(|a| super::audit::validate_audit(a, env))
            .transpose(),
    );
    let approvals = admin_api.as_ref().and_then(|admin_api| {
        p.take(
            raw.approvals
                .as_ref()
                .map(|a| super::admin::validate_approvals(a, admin_api.as_ref()))
                .transpose(),
        )
    });
    let revocation = p.take(
        raw.revocation
            .as_ref()
            .map(super::admin::validate_revocation)
            .transpose(),
    );
    let telemetry = p.take(super::telemetry::validate_telemetry(
        raw.telemetry.as_ref(),
        env,
    ));
    let redis = p.take(super::state::validate_state(raw.state.as_ref(), env));
    // The rules across sections, where their sections validated.
    let mut outbound = match outbound {
        None => Some(None),
        Some(checked) => checked.map(Some),
    };
    if let (Some(outbound), Some(spiffe)) = (outbound.as_mut(), spiffe.as_ref()) {
        p.take(super::spiffe::bind_jwt_svid(outbound, spiffe.as_ref()));
    }
    let mut issuers = issuers;
    if let (Some(issuers), Some(outbound)) = (issuers.as_mut(), outbound.as_ref()) {
        p.take(super::introspection::validate_introspection(
            &raw,
            issuers,
            outbound.as_ref(),
            env,
        ));
    }
    let rate_limits = outbound.as_ref().and_then(|outbound| {
        let route_names: Vec<&str> = outbound
            .iter()
            .flat_map(|o| &o.routes)
            .map(|r| r.name.as_str())
            .collect();
        p.take(super::rate_limits::validate_rate_limits(
            raw.rate_limits.as_ref(),
            &route_names,
        ))
    });
    p.finish()?;
    let (
        Some(listen),
        Some(issuers),
        Some(tokens),
        Some(credentials),
        Some(outbound),
        Some(inbound),
        Some(admin_api),
        Some(spiffe),
        Some(policy),
        Some(audit),
        Some(approvals),
        Some(revocation),
        Some(telemetry),
        Some(redis),
        Some(rate_limits),
    ) = (
        listen,
        issuers,
        tokens,
        credentials,
        outbound,
        inbound,
        admin_api,
        spiffe,
        policy,
        audit,
        approvals,
        revocation,
        telemetry,
        redis,
        rate_limits,
    )
    else {
        // Every `None` above kept a problem, and `finish` returned it.
        return Err(ConfigError::invalid(
            ".",
            "a section failed without saying why (a bug in actbridge)",
        ));
    };
    let config = Config {
        ext_proc_listen: listen.ext_proc,
        sds_listen: listen.sds,
        admin_listen: listen.admin,
        envoy_message_timeout: listen.envoy_message_timeout,
        issuers,
        max_token_bytes: tokens.max_bytes,
        verified_cache_entries: raw.tokens.verified_cache_entries.unwrap_or(10_000),
        max_actor_chain: tokens.max_actor_chain,
        replay_cache_entries: tokens.replay_cache_entries,
        inbound,
        outbound,
        policy,
        credentials,
        audit,
        spiffe,
        admin_api,
        approvals,
        revocation,
        telemetry,
        redis,
        rate_limits,
    };
    super::deadlines::check(&config)?;
    Ok(relative_paths_resolved(config, env))
}

/// The paths kept for later (the policy directory, the audit file, the deny list) read
/// from the config file's directory when relative, as every file read now is.
fn relative_paths_resolved(mut config: Config, env: &Sources<'_>) -> Config {
    let resolve = |p: &std::path::Path| env.path(p);
    if let Some(policy) = config.policy.as_mut()
        && let super::PolicySource::Directory(dir) = &mut policy.source
    {
        *dir = resolve(dir);
    }
    if let Some(audit) = config.audit.as_mut() {
        audit.path = resolve(&audit.path);
    }
    if let Some(r) = config.revocation.as_mut() {
        r.file = resolve(&r.file);
    }
    config
}

/// Parses an asymmetric JWS algorithm name. HMAC and `none` are refused: a verifier that
/// accepts HS256 with an RSA public key as the secret is the classic key-confusion hole.
pub(crate) fn asymmetric_algorithm(key: &str, name: &str) -> Result<Algorithm, ConfigError> {
    let alg: Algorithm = name
        .parse()
        .map_err(|_| ConfigError::invalid(key, format_args!("unknown algorithm `{name}`")))?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(ConfigError::invalid(
            key,
            format_args!(
                "`{name}` is a shared-secret algorithm; only asymmetric algorithms are accepted"
            ),
        ));
    }
    Ok(alg)
}

pub(super) fn http_url(key: &str, s: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(s)
        .map_err(|e| ConfigError::invalid(key, format_args!("`{s}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(
            key,
            format_args!("`{s}` must be an http or https URL"),
        ));
    }
    Ok(url)
}

/// A secret read from a file (trailing newline dropped; re-read when it changes,
/// `super::secret_files`) when `file` is set, else from the environment variable `var`;
/// each pair is (its config key, its value). Offline, neither is read: a placeholder
/// stands in.
pub(super) fn external_secret(
    (file_key, file): (&str, Option<&str>),
    (var_key, var): (&str, Option<&str>),
    env: &Sources<'_>,
) -> Result<super::Secret, ConfigError> {
    let placeholder = || super::Secret::new(super::sources::OFFLINE_SECRET);
    match file {
        Some(f) => match env.secret_file(file_key, f)? {
            Some(bytes) => {
                let text = super::secret_files::content(bytes).ok_or_else(|| {
                    ConfigError::invalid(file_key, format_args!("`{f}` is not UTF-8"))
                })?;
                let secret = super::Secret::new(text);
                super::secret_files::follow(file_key, env.path(f), &secret);
                Ok(secret)
            }
            None => Ok(placeholder()),
        },
        None => Ok(env
            .secret_var(var_key, var.unwrap_or_default())?
            .map_or_else(placeholder, super::Secret::new)),
    }
}
