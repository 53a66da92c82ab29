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
/// The longest the rotation job sleeps before looking at the due time again.
const ROTATION_RECHECK: Duration = Duration::from_secs(1);
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// How often the mail worker looks for due mails when nothing wakes it (retries come due,
/// other instances queue mails, a claim's lease expires).
pub const MAIL_POLL: Duration = Duration::from_secs(1);

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
            match t.store().prune_factors(t.clock_now()).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "pruned expired second-factor sign-ins and ceremonies"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot prune expired second-factor sign-ins"),
            }
            match t.prune_mail().await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "pruned sent mails and expired links"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot prune the outbox"),
            }
            match t.prune_audit(t.settings().audit_retention).await {
                Ok(n) if n > 0 => tracing::info!(events = n, "pruned audit events past retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot prune the audit trail"),
            }
        }),
    ];
    tasks.push(tokio::spawn(send_mail(tessera.clone(), stopped.clone())));
    tasks.push(tokio::spawn(rotate_when_due(tessera, stopped)));
    Jobs { stop, tasks }
}

/// Scheduled rotations (`TESSERA_KEY_ROTATION_INTERVAL`) and the switch of an algorithm change
/// happen when due: the job computes the due time from the key ring and the service's clock,
/// and sleeps until then, but never longer than [`ROTATION_RECHECK`], so it notices rotations
/// made elsewhere (which move the due time) and clocks that jump (tests move theirs).
async fn rotate_when_due(tessera: Arc<Tessera>, mut stopped: watch::Receiver<bool>) {
    let interval = tessera.settings().key_rotation_interval;
    loop {
        let pause = match tessera.rotate_keys_if_due(interval).await {
            Ok(_) => match tessera.rotation_due(interval) {
                Some(due) => {
                    let left = (due - tessera.clock_now()).max(time::Duration::ZERO);
                    Duration::try_from(left).unwrap_or(ROTATION_RECHECK).clamp(Duration::from_millis(10), ROTATION_RECHECK)
                }
                None => ROTATION_RECHECK,
            },
            Err(e) => {
                tracing::warn!(error = %e, "scheduled key rotation failed");
                ROTATION_RECHECK
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// The mail worker: sends what is due, then waits until a mail is queued here, or
/// [`MAIL_POLL`] passes, and looks again. A full batch means more may be due: it goes on at once.
async fn send_mail(tessera: Arc<Tessera>, mut stopped: watch::Receiver<bool>) {
    loop {
        let more = match tessera.deliver_due_mail().await {
            Ok(n) => n >= crate::service::MAIL_BATCH as usize,
            Err(e) => {
                tracing::warn!(error = %e, "cannot send queued mail");
                false
            }
        };
        if more && !*stopped.borrow() {
            continue;
        }
        tokio::select! {
            () = tessera.mail_wakeup().notified() => {}
            () = tokio::time::sleep(MAIL_POLL) => {}
            _ = stopped.changed() => return,
        }
    }
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
