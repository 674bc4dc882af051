//! The audit trail: one `tracing` event for each session the store ends on purpose, under the
//! target [`AUDIT_TARGET`], at `INFO`, so that a security team can route the events to a store of
//! their own with a filter (`pavex_session_sea_orm::audit=info`).
//!
//! An event names the session by its [`SessionHandle`](crate::SessionHandle) (the hash under
//! which it is stored), never by its id, and never holds its state.

use std::fmt;

/// The `tracing` target of the store's audit events: `INFO` events with the fields `reason`,
/// `subject` and `handle` (docs/asvs.md, "The audit trail"). Route them with a filter
/// (`RUST_LOG=info,pavex_session_sea_orm::audit=info`) or in a layer of your own:
///
/// ```
/// use pavex_session_sea_orm::AUDIT_TARGET;
///
/// /// Whether an event belongs to the audit trail (in a `tracing_subscriber::Layer`, say).
/// fn is_audit(metadata: &tracing::Metadata<'_>) -> bool {
///     metadata.target() == AUDIT_TARGET
/// }
/// ```
pub const AUDIT_TARGET: &str = "pavex_session_sea_orm::audit";

/// Why the store ended a session (the `reason` field of an audit event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// `end_session_of`: one device signed out.
    SignedOut,
    /// `end_sessions_of`: every session of the subject, or all but the current one.
    SignedOutEverywhere,
    /// `end_sessions_of_created_before`: after a change of authentication factor.
    CreatedBefore,
    /// A new session of the subject went past the cap: the oldest beyond it end.
    CapEvicted,
    /// Ending every session, or every session created before an instant.
    InBulk,
    /// Deleted as expired, its deadline having reached `created_at` + the absolute lifetime.
    AbsoluteLifetime,
}

impl Ended {
    fn as_str(self) -> &'static str {
        match self {
            Self::SignedOut => "signed_out",
            Self::SignedOutEverywhere => "signed_out_everywhere",
            Self::CreatedBefore => "ended_created_before",
            Self::CapEvicted => "cap_evicted",
            Self::InBulk => "ended_in_bulk",
            Self::AbsoluteLifetime => "absolute_lifetime",
        }
    }
}

/// The stored id's bytes as the handle's text (lowercase hex), whatever their length.
struct Handle<'a>(&'a [u8]);

impl fmt::Display for Handle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Records that the session stored under `stored_id` was ended, and why.
pub(crate) fn session_ended(reason: Ended, subject: Option<&[u8]>, stored_id: &[u8]) {
    let subject = subject.map(String::from_utf8_lossy);
    tracing::info!(
        target: AUDIT_TARGET,
        reason = reason.as_str(),
        subject = subject.as_deref(),
        handle = %Handle(stored_id),
        "Session ended"
    );
}

/// Records that a write of the session stored under `stored_id` was refused: its subject had as
/// many sessions as the cap allows (`AtCap::Refuse`).
pub(crate) fn refused_at_cap(subject: &[u8], stored_id: &[u8]) {
    tracing::info!(
        target: AUDIT_TARGET,
        reason = "refused_at_cap",
        subject = %String::from_utf8_lossy(subject),
        handle = %Handle(stored_id),
        "Session refused: its subject has as many sessions as the cap allows"
    );
}
