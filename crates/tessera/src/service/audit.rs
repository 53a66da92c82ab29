//! The audit trail: registrations, logins and their failures, lockouts, logouts, refresh
//! reuse, password changes, account and client changes, key rotations, each with time,
//! actor, subject and client address.
//!
//! The address comes from the request being served, as the [`ClientMeta`] every auditing use
//! case takes (the default, without an address, from the command line and background jobs).
//! Writing the trail never fails a request; a failed write is logged.

use super::accounts::require_admin;
use super::error::{Error, Result};
use super::{ClientMeta, Tessera};
use crate::store::AuditEvent;
use tessera_verify::Claims;

/// A page of the trail, newest first.
#[derive(Debug)]
pub struct AuditPage {
    /// The events.
    pub events: Vec<AuditEvent>,
    /// Cursor for older events, when there may be some.
    pub next_cursor: Option<String>,
}

impl Tessera {
    /// Records an event of a request from `meta`.
    pub(crate) async fn audit(&self, meta: &ClientMeta, kind: &str, actor: Option<&str>, subject: Option<&str>, detail: Option<String>) {
        let event = AuditEvent {
            at: self.now(),
            kind: kind.to_owned(),
            actor: actor.map(str::to_owned),
            subject: subject.map(str::to_owned),
            ip: meta.ip.map(|ip| ip.to_string()),
            detail,
        };
        if let Err(e) = self.store.append_audit(&event).await {
            tracing::warn!(error = %e, kind, "cannot write the audit trail");
        }
    }

    /// The trail, newest first (admin).
    pub async fn audit_trail(&self, caller: &Claims, limit: Option<u32>, cursor: Option<&str>) -> Result<AuditPage> {
        require_admin(caller)?;
        self.audit_page(limit, cursor).await
    }

    /// The trail, newest first (the command line).
    pub async fn audit_page(&self, limit: Option<u32>, cursor: Option<&str>) -> Result<AuditPage> {
        let limit = limit.unwrap_or(100).clamp(1, 1000);
        let before = cursor.map(|c| c.parse::<i64>().ok().filter(|n| *n > 0).ok_or(Error::InvalidCursor)).transpose()?;
        let rows = self.store.audit_events(before, limit).await?;
        let next_cursor = (rows.len() == limit as usize).then(|| rows.last().map(|(seq, _)| seq.to_string())).flatten();
        Ok(AuditPage { events: rows.into_iter().map(|(_, e)| e).collect(), next_cursor })
    }

    /// Drops events older than the retention (a background job).
    pub async fn prune_audit(&self, retention: std::time::Duration) -> Result<u64> {
        Ok(self.store.prune_audit(self.now() - retention).await?)
    }
}
