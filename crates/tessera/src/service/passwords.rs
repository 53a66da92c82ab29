//! Password hashing with argon2id, kept off the async runtime: each hash runs on the blocking
//! pool, at most one per core at a time, behind a bounded queue. When the queue is full the
//! caller is told to come back (503) instead of piling up memory (each hash holds its argon2
//! memory cost) and starving every other endpoint.

use super::error::{Error, Result};
use crate::config::Argon2Params;
use crate::domain::{NewPassword, PasswordHash, PasswordInput};
use argon2::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Hashes and verifies passwords on a bounded pool.
#[derive(Debug)]
pub struct PasswordHasher {
    params: Params,
    running: Arc<Semaphore>,
    queued: AtomicUsize,
    queue_bound: usize,
    wait: prometheus_client::metrics::histogram::Histogram,
    /// Verified against when the account does not exist, so an unknown email costs the
    /// same as a wrong password and response times do not reveal which accounts exist.
    dummy: PasswordHash,
}

impl PasswordHasher {
    /// A hasher at the configured cost, with `queue_bound` hashes allowed to wait.
    pub fn new(cost: &Argon2Params, queue_bound: usize, wait: prometheus_client::metrics::histogram::Histogram) -> Result<Self> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None).map_err(Error::internal)?;
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let dummy = hash_blocking(&params, "tessera dummy password for unknown accounts")?;
        Ok(PasswordHasher {
            params,
            running: Arc::new(Semaphore::new(cores)),
            queued: AtomicUsize::new(0),
            queue_bound,
            wait,
            dummy,
        })
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: &NewPassword) -> Result<PasswordHash> {
        let params = self.params.clone();
        let password = password.expose().to_owned();
        self.run(move || hash_blocking(&params, &password)).await?
    }

    /// Checks a password against a stored hash, or against the dummy when there is none
    /// (then always false). Same cost either way.
    pub async fn verify(&self, password: &PasswordInput, hash: Option<&PasswordHash>) -> Result<bool> {
        let known = hash.is_some();
        let phc = hash.unwrap_or(&self.dummy).as_str().to_owned();
        let params = self.params.clone();
        let password = password.expose().to_owned();
        let matches = self.run(move || verify_blocking(&params, &password, &phc)).await?;
        Ok(known && matches)
    }

    /// How many hashes are waiting for a core.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.queue_bound {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Busy { retry_after: Duration::from_secs(1) });
        }
        let queued_at = std::time::Instant::now();
        let permit = self.running.clone().acquire_owned().await;
        self.wait.observe(queued_at.elapsed().as_secs_f64());
        self.queued.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.map_err(Error::internal)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(Error::internal)
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> Result<PasswordHash> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(Error::internal)?;
    let phc = argon2(params).hash_password_with_salt(password.as_bytes(), &salt).map_err(Error::internal)?;
    Ok(PasswordHash::new(phc.to_string()))
}

fn verify_blocking(params: &Params, password: &str, phc: &str) -> bool {
    // The stored string carries its own cost, so hashes made under an older cost still verify.
    argon2(params).verify_password(password.as_bytes(), phc).is_ok()
}
