//! The live check of a verified token at its issuer (RFC 7662), for the inbound paths
//! and outbound routes that ask for it: after every local check, before the policy and
//! before any token service or backend is called. Timed as its own stage.

use super::span;
use super::trail::Trail;
use super::{Refusal, Shared};
use crate::introspect::IntrospectError;
use crate::jwt::VerifiedToken;
use crate::telemetry::metrics::Stage;

impl Shared {
    /// Refuses `token` (verified as `verified`) unless its issuer says it is active.
    pub(super) async fn check_live(
        &self,
        token: &str,
        verified: &VerifiedToken,
        trail: &mut Trail,
    ) -> Result<(), Refusal> {
        let Some(introspector) = &self.introspector else {
            return Err(Refusal::Introspection(IntrospectError::NotConfigured));
        };
        let check = span::stage(
            span::introspect(&verified.issuer),
            introspector.check(token, verified),
        );
        trail.timed(Stage::Introspect, check).await?;
        Ok(())
    }
}
