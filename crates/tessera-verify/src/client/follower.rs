//! Following Tessera's revocation feed: a task long-polls `GET /v1/revocations?since=&wait=`
//! and applies each page to the shared [`RevocationSet`], backing off on errors. A long poll
//! answers as soon as something is revoked, so news arrives in milliseconds, not per interval.

use super::{ClientCredentials, Shared, fetch};
use crate::{Claims, FeedPage, RevocationSet, VerifyError};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The followed feed: where it is, what it has said, and when it last answered.
#[derive(Debug)]
pub(crate) struct Feed {
    url: String,
    credentials: ClientCredentials,
    wait: Duration,
    set: RwLock<RevocationSet>,
    cursor: Mutex<String>,
    last_contact: Mutex<Instant>,
    max_staleness: Option<Duration>,
}

impl Feed {
    /// Loads every live revocation (no `since`); failing here fails `build`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn sync(
        http: &reqwest::Client,
        url: String,
        credentials: ClientCredentials,
        wait: Duration,
        max_token_lifetime: Duration,
        leeway: Duration,
        max_staleness: Option<Duration>,
        now: i64,
    ) -> Result<Self, VerifyError> {
        let page = fetch::feed_page(http, &url, &credentials, None, Duration::ZERO).await?;
        let mut set = RevocationSet::new(max_token_lifetime, leeway);
        set.apply(&page);
        set.prune(now);
        Ok(Feed {
            url,
            credentials,
            wait,
            set: RwLock::new(set),
            cursor: Mutex::new(page.cursor),
            last_contact: Mutex::new(Instant::now()),
            max_staleness,
        })
    }

    fn apply(&self, page: &FeedPage, now: i64) {
        {
            let mut set = self.set.write().unwrap_or_else(PoisonError::into_inner);
            set.apply(page);
            set.prune(now);
        }
        *self.cursor.lock().unwrap_or_else(PoisonError::into_inner) = page.cursor.clone();
        *self.last_contact.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// Refuses revoked tokens, and every token once the feed has been silent too long.
    pub(crate) fn check(&self, claims: &Claims) -> Result<(), VerifyError> {
        if let Some(max) = self.max_staleness {
            let silent = self.last_contact.lock().unwrap_or_else(PoisonError::into_inner).elapsed();
            if silent > max {
                return Err(VerifyError::Unavailable(format!("the revocation feed has not answered for {}s", silent.as_secs())));
            }
        }
        if self.set.read().unwrap_or_else(PoisonError::into_inner).is_revoked(claims) {
            return Err(VerifyError::Revoked);
        }
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.set.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn cursor(&self) -> String {
        self.cursor.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The running follower; dropping it without `stop` still ends the task (the channel closes).
#[derive(Debug)]
pub(crate) struct Handle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Handle {
    /// Signals the task and waits for it to finish.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    /// Signals the task without waiting (from `Drop`, which cannot await).
    pub(crate) fn stop_now(self) {
        let _ = self.stop.send(());
        // An in-flight long poll would otherwise live until it answers.
        self.task.abort();
    }
}

pub(crate) fn spawn(shared: Arc<Shared>) -> Handle {
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(run(shared, stopped));
    Handle { stop, task }
}

async fn run(shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    let Some(feed) = shared.feed.as_ref() else { return };
    let mut backoff = FIRST_BACKOFF;
    loop {
        let cursor = feed.cursor();
        let poll = fetch::feed_page(&shared.http, &feed.url, &feed.credentials, Some(&cursor), feed.wait);
        let outcome = tokio::select! {
            _ = &mut stopped => return,
            outcome = poll => outcome,
        };
        match outcome {
            Ok(page) => {
                feed.apply(&page, shared.clock.now());
                backoff = FIRST_BACKOFF;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "revocation feed unavailable");
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
