//! Argon2id password hashing on a bounded pool.
//!
//! Each hash takes about 19 MiB and tens of milliseconds. A login flood must not exhaust memory
//! or starve the async workers, so hashing runs on the blocking pool behind a semaphore of
//! `password_hash_concurrency` permits, and at most `password_hash_queue` requests may wait for
//! one; beyond that the answer is 429.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::AppError;

/// OWASP's minimum for Argon2id: m = 19 MiB, t = 2, p = 1. The parameters are recorded in each
/// hash string, so raising them later still verifies old hashes.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 128;

fn argon2() -> Result<Argon2<'static>, AppError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(AppError::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Computes a PHC hash string (blocking; call through [`PasswordPool`]).
pub fn hash_blocking(password: &str) -> Result<String, AppError> {
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).map_err(|_| AppError::internal("random source failed"))?;
    let salt = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    Ok(argon2()?.hash_password(password.as_bytes(), &salt).map_err(AppError::internal)?.to_string())
}

/// Checks a password against a stored hash (blocking). A malformed stored hash never matches.
pub fn verify_blocking(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else { return false };
    // Verification uses the algorithm and parameters recorded in the hash string.
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

/// Length rule of API.md, in characters.
pub fn password_length_ok(password: &str) -> bool {
    (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&password.chars().count())
}

/// Work for the hashing threads.
type Job = Box<dyn FnOnce() + Send>;

/// Argon2id runs on `concurrency` threads of its own, not on the general blocking pool: glibc
/// keeps each thread's freed 19 MiB blocks in that thread's arena, so hashing on dozens of
/// blocking threads grew the server to hundreds of MiB (docs/performance.md). A few dedicated
/// threads bound that memory to `concurrency` blocks. They end when the pool is dropped.
fn spawn_hashers(concurrency: usize) -> Result<std::sync::mpsc::Sender<Job>, AppError> {
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    let queue = Arc::new(std::sync::Mutex::new(queue));
    for i in 0..concurrency {
        let queue = queue.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                loop {
                    // The lock is released before the job runs, so the others can take theirs.
                    let next = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    match next {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })
            .map_err(|e| AppError::internal(format!("starting a hashing thread: {e}")))?;
    }
    Ok(jobs)
}

#[derive(Clone)]
pub struct PasswordPool {
    jobs: std::sync::mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    queue_limit: usize,
    /// A hash of a random password, verified against when the username is unknown so that an
    /// unknown user costs the same time as a known one.
    dummy_hash: Arc<String>,
}

impl PasswordPool {
    pub fn new(concurrency: usize, queue_limit: usize) -> Result<Self, AppError> {
        let mut random = Zeroizing::new([0u8; 32]);
        SystemRandom::new().fill(random.as_mut()).map_err(|_| AppError::internal("random source failed"))?;
        let dummy_hash = hash_blocking(&hex::encode(random.as_ref()))?;
        Ok(Self {
            jobs: spawn_hashers(concurrency)?,
            permits: Arc::new(Semaphore::new(concurrency)),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue_limit,
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue_limit {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(AppError::TooManyRequests { retry_after_secs: 1 });
        }
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = permit.map_err(|_| AppError::internal("password pool closed"))?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                // The requester may have gone away (client disconnected): nothing to tell.
                let _ = done.send(work());
            }))
            .map_err(|_| AppError::internal("hashing threads stopped"))?;
        result.await.map_err(|_| AppError::internal("a hashing thread failed"))
    }

    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, AppError> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// Verifies against `stored`, or against the dummy hash when there is no user, so both
    /// paths do the same work; the result for a missing user is always false.
    pub async fn verify(&self, password: Zeroizing<String>, stored: Option<String>) -> Result<bool, AppError> {
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        let ok = self.run(move || verify_blocking(&password, &stored)).await?;
        Ok(ok && exists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_in_the_string() {
        let h = hash_blocking("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking("correct horse battery", &h));
        assert!(!verify_blocking("correct horse batterx", &h));
        assert!(!verify_blocking("anything", "not a hash"));
    }

    #[test]
    fn length_rule_counts_characters() {
        assert!(!password_length_ok("elevenchars"));
        assert!(password_length_ok("twelve chars"));
        assert!(password_length_ok(&"é".repeat(128)));
        assert!(!password_length_ok(&"é".repeat(129)));
    }
}
