//! Password hashing with argon2id, kept off the async runtime: hashes run on one dedicated
//! thread per core, fed from a bounded queue. When the queue is full the caller is told to come
//! back (503) instead of piling up memory and starving every other endpoint.
//!
//! Each hashing thread allocates its argon2 memory (19 MiB at the default cost) once and
//! reuses it. Allocating it per hash, as `Argon2::hash_password` does, lets the C allocator
//! keep every freed block: a login flood grew the process to ~590 MB that way, against
//! ~50 MB with reused memory.

use super::error::{Error, Result};
use crate::config::Argon2Params;
use crate::domain::{NewPassword, PasswordHash, PasswordInput};
use argon2::password_hash::phc;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::sync::oneshot;

/// Work for a hashing thread, given that thread's argon2 memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Debug)]
pub struct PasswordHasher {
    params: Params,
    /// Jobs wait here; a hashing thread takes the next one the moment it finishes the last,
    /// with no trip through the async runtime in between.
    jobs: mpsc::Sender<Job>,
    /// Jobs sent and not yet started, shared with the jobs themselves.
    queued: Arc<AtomicUsize>,
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
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(PasswordHasher {
            dummy: dummy_hash(&params)?,
            params,
            jobs: spawn_hashing_threads(threads)?,
            queued: Arc::default(),
            queue_bound,
            wait,
        })
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: &NewPassword) -> Result<PasswordHash> {
        let params = self.params.clone();
        let password = password.expose().to_owned();
        self.run(move |memory| hash_with(memory, &params, &password)).await?
    }

    /// Hashes a password that was just checked, under the configured cost (re-hashing after
    /// the cost was raised; the password passed the policy when it was set).
    pub async fn hash_input(&self, password: &PasswordInput) -> Result<PasswordHash> {
        let params = self.params.clone();
        let password = password.expose().to_owned();
        self.run(move |memory| hash_with(memory, &params, &password)).await?
    }

    /// Whether a stored hash was made under another algorithm or cost than the configured one.
    pub fn needs_rehash(&self, stored: &PasswordHash) -> bool {
        let Ok(parsed) = phc::PasswordHash::new(stored.as_str()) else { return true };
        let same_cost = Params::try_from(&parsed)
            .is_ok_and(|p| (p.m_cost(), p.t_cost(), p.p_cost()) == (self.params.m_cost(), self.params.t_cost(), self.params.p_cost()));
        !(same_cost && parsed.algorithm.as_str() == argon2::ARGON2ID_IDENT.as_str())
    }

    /// Checks a password against a stored hash, or against the dummy when there is none
    /// (then always false). Same cost either way.
    pub async fn verify(&self, password: &PasswordInput, hash: Option<&PasswordHash>) -> Result<bool> {
        let known = hash.is_some();
        let phc = hash.unwrap_or(&self.dummy).as_str().to_owned();
        let password = password.expose().to_owned();
        let matches = self.run(move |memory| verify_with(memory, &password, &phc)).await?;
        Ok(known && matches)
    }

    /// How many hashes are waiting for a core.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static) -> Result<T> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.queue_bound {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Busy { retry_after: Duration::from_secs(1) });
        }
        let (done, result) = oneshot::channel();
        let (queued, wait, queued_at) = (Arc::clone(&self.queued), self.wait.clone(), std::time::Instant::now());
        let job: Job = Box::new(move |memory| {
            queued.fetch_sub(1, Ordering::AcqRel);
            wait.observe(queued_at.elapsed().as_secs_f64());
            // Nobody waits for this answer any more (the client hung up): spare the core.
            if !done.is_closed() {
                let _ = done.send(work(memory));
            }
        });
        if self.jobs.send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::internal("the hashing threads are gone"));
        }
        result.await.map_err(|_| Error::internal("a hashing thread stopped"))
    }
}

/// Starts the hashing threads; they end when the hasher (the job sender) is dropped.
fn spawn_hashing_threads(count: usize) -> Result<mpsc::Sender<Job>> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for n in 0..count {
        let queue = Arc::clone(&queue);
        std::thread::Builder::new()
            .name(format!("argon2-{n}"))
            .spawn(move || {
                let mut memory = Vec::new();
                loop {
                    // The lock is held only while taking a job, never while hashing.
                    let next = match queue.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    match next {
                        Ok(job) => job(&mut memory),
                        Err(_) => return,
                    }
                }
            })
            .map_err(Error::internal)?;
    }
    Ok(jobs)
}

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Runs argon2 in `memory`, growing it once to the cost's size and keeping it.
fn fill(memory: &mut Vec<Block>, argon: &Argon2<'_>, params: &Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<()> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    argon.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks]).map_err(Error::internal)
}

fn hash_with(memory: &mut Vec<Block>, params: &Params, password: &str) -> Result<PasswordHash> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(Error::internal)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    fill(memory, &argon2(params.clone()), params, password.as_bytes(), &salt, &mut out)?;
    phc_string(params, &salt, &out)
}

/// Checks `password` against a stored PHC string, which carries its own cost, so hashes
/// made under an older cost still verify.
fn verify_with(memory: &mut Vec<Block>, password: &str, stored: &str) -> bool {
    let mut check = || -> Option<bool> {
        let parsed = phc::PasswordHash::new(stored).ok()?;
        let (salt, expected) = (parsed.salt.as_ref()?, parsed.hash.as_ref()?);
        let params = Params::try_from(&parsed).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
        let version = parsed.version.map_or(Ok(Version::V0x13), Version::try_from).ok()?;
        let argon = Argon2::new(algorithm, version, params.clone());
        let mut out = vec![0u8; expected.len()];
        fill(memory, &argon, &params, password.as_bytes(), salt.as_ref(), &mut out).ok()?;
        // `Output` compares in constant time.
        Some(phc::Output::new(&out).ok()? == *expected)
    };
    check().unwrap_or(false)
}

fn phc_string(params: &Params, salt: &[u8], out: &[u8]) -> Result<PasswordHash> {
    let phc = phc::PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: phc::ParamsString::try_from(params).map_err(Error::internal)?,
        salt: Some(phc::Salt::new(salt).map_err(Error::internal)?),
        hash: Some(phc::Output::new(out).map_err(Error::internal)?),
    };
    Ok(PasswordHash::new(phc.to_string()))
}

/// A hash of nothing: random salt and output under the configured cost. Checking a password
/// against it costs exactly what checking a real one costs, and it never matches; making it
/// needs no hashing, so start-up does not pay for one.
fn dummy_hash(params: &Params) -> Result<PasswordHash> {
    let mut salt_and_output = [0u8; 16 + Params::DEFAULT_OUTPUT_LEN];
    aws_lc_rs::rand::fill(&mut salt_and_output).map_err(Error::internal)?;
    let (salt, out) = salt_and_output.split_at(16);
    phc_string(params, salt, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Params {
        Params::new(1024, 1, 1, None).unwrap()
    }

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let mut memory = Vec::new();
        let hash = hash_with(&mut memory, &cheap(), "correct horse").unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(verify_with(&mut memory, "correct horse", hash.as_str()));
        assert!(!verify_with(&mut memory, "correct horsf", hash.as_str()));
    }

    #[test]
    fn hashes_from_the_argon2_crate_verify_and_ours_verify_there() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let theirs = argon2(cheap()).hash_password_with_salt(b"pw", b"saltsaltsaltsalt").unwrap().to_string();
        let mut memory = Vec::new();
        assert!(verify_with(&mut memory, "pw", &theirs));
        let ours = hash_with(&mut memory, &cheap(), "pw").unwrap();
        assert!(argon2(cheap()).verify_password(b"pw", ours.as_str()).is_ok());
    }

    #[test]
    fn memory_grows_to_a_larger_stored_cost_and_still_verifies() {
        let mut memory = Vec::new();
        let small = hash_with(&mut memory, &cheap(), "pw").unwrap();
        let large = hash_with(&mut memory, &Params::new(2048, 1, 1, None).unwrap(), "pw").unwrap();
        assert!(verify_with(&mut memory, "pw", large.as_str()));
        assert!(verify_with(&mut memory, "pw", small.as_str()));
        assert_eq!(memory.len(), 2048);
    }

    #[test]
    fn a_hash_under_another_cost_needs_rehashing_and_one_under_this_cost_does_not() {
        let hasher = PasswordHasher::new(
            &crate::config::Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 },
            4,
            prometheus_client::metrics::histogram::Histogram::new([1.0]),
        )
        .unwrap();
        let mut memory = Vec::new();
        assert!(!hasher.needs_rehash(&hash_with(&mut memory, &cheap(), "pw").unwrap()));
        assert!(hasher.needs_rehash(&hash_with(&mut memory, &Params::new(2048, 1, 1, None).unwrap(), "pw").unwrap()));
        assert!(hasher.needs_rehash(&hash_with(&mut memory, &Params::new(1024, 2, 1, None).unwrap(), "pw").unwrap()));
        assert!(hasher.needs_rehash(&PasswordHash::new("not a hash".into())));
    }

    #[test]
    fn nothing_matches_the_dummy_and_garbage_never_verifies() {
        let dummy = dummy_hash(&cheap()).unwrap();
        let mut memory = Vec::new();
        assert!(!verify_with(&mut memory, "", dummy.as_str()));
        assert!(!verify_with(&mut memory, "pw", "$argon2id$v=19$m=1024,t=1,p=1$garbage"));
        assert!(!verify_with(&mut memory, "pw", "not a hash"));
    }
}
