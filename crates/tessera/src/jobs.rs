//! Background jobs, owned by the running application and stopped with it: following the
//! revocation feed and the key ring (other instances write both), scheduled key rotation,
//! and pruning what has expired.

use crate::service::Tessera;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often an instance pulls revocations made elsewhere: well inside the two seconds
/// within which every instance must refuse a revoked token.
pub const REVOCATION_POLL: Duration = Duration::from_millis(500);
/// How often per-address request counts are shared with the other instances.
pub const RATE_SYNC: Duration = Duration::from_millis(500);
const KEY_POLL: Duration = Duration::from_secs(5);
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Handle to the running jobs.
#[derive(Debug)]
pub struct Jobs {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Jobs {
    /// Signals every job to stop and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the jobs.
pub fn spawn(tessera: Arc<Tessera>) -> Jobs {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = vec![
        every(REVOCATION_POLL, stopped.clone(), tessera.clone(), |t| async move {
            if let Err(e) = t.sync_revocations().await {
                tracing::warn!(error = %e, "cannot follow the revocation feed");
            }
        }),
        every(RATE_SYNC, stopped.clone(), tessera.clone(), |t| async move {
            if let Err(e) = t.reconcile_rate_limits().await {
                tracing::warn!(error = %e, "cannot share rate-limit counters");
            }
        }),
        every(KEY_POLL, stopped.clone(), tessera.clone(), |t| async move {
            if let Err(e) = t.reload_keys().await {
                tracing::warn!(error = %e, "cannot reload signing keys");
            }
        }),
        every(PRUNE_EVERY, stopped.clone(), tessera.clone(), |t| async move {
            match t.store().prune(t.clock_now()).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "pruned expired records"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot prune expired records"),
            }
            match t.prune_audit(t.settings().audit_retention).await {
                Ok(n) if n > 0 => tracing::info!(events = n, "pruned audit events past retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot prune the audit trail"),
            }
        }),
    ];
    if let Some(interval) = tessera.settings().key_rotation_interval {
        // Checked often, acted on when the interval has passed since the last rotation.
        let check = interval.min(Duration::from_secs(60)).max(Duration::from_secs(1));
        tasks.push(every(check, stopped, tessera, move |t| async move {
            if let Err(e) = t.rotate_keys_if_due(interval).await {
                tracing::warn!(error = %e, "scheduled key rotation failed");
            }
        }));
    }
    Jobs { stop, tasks }
}

fn every<F, Fut>(period: Duration, mut stopped: watch::Receiver<bool>, tessera: Arc<Tessera>, job: F) -> JoinHandle<()>
where
    F: Fn(Arc<Tessera>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => job(tessera.clone()).await,
                _ = stopped.changed() => return,
            }
        }
    })
}
