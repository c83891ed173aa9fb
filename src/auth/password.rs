//! Argon2id password hashing at OWASP parameters, run on the blocking pool behind a
//! semaphore so that a flood of logins queues instead of stalling the async workers.

use std::sync::{Arc, OnceLock};

use anyhow::{Context, anyhow};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// OWASP Password Storage Cheat Sheet: Argon2id, m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Hash of a random password, verified against when an email is unknown so that
    /// the response takes as long as a real check and reveals nothing.
    dummy_hash: Arc<OnceLock<String>>,
}

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|err| anyhow!("argon2 params: {err}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let hash = argon2()?
        .hash_password(password.as_bytes())
        .map_err(|err| anyhow!("argon2 hash: {err}"))?;
    Ok(hash.to_string())
}

/// `Ok(false)` for a wrong password; `Err` only for a corrupt stored hash.
pub fn verify_blocking(stored: &str, password: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(stored).map_err(|err| anyhow!("stored hash: {err}"))?;
    Ok(argon2()?
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

impl PasswordHasher {
    /// `concurrency` 0 means one hash at a time per CPU core.
    pub fn new(concurrency: usize) -> Self {
        let permits = if concurrency == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            concurrency
        };
        Self {
            permits: Arc::new(Semaphore::new(permits)),
            dummy_hash: Arc::new(OnceLock::new()),
        }
    }

    async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        F: FnOnce() -> anyhow::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("hash semaphore closed")?;
        tokio::task::spawn_blocking(work)
            .await
            .context("hashing task panicked")?
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_owned();
        self.run(move || hash_blocking(&password)).await
    }

    pub async fn verify(&self, stored: &str, password: &str) -> anyhow::Result<bool> {
        let (stored, password) = (stored.to_owned(), password.to_owned());
        self.run(move || verify_blocking(&stored, &password)).await
    }

    /// Computes the dummy hash ahead of time so the first unknown-email login is not slower
    /// than the rest (which would be a timing signal).
    pub async fn warm_up(&self) {
        if let Err(err) = self.verify_dummy("warm-up").await {
            tracing::warn!(error = %err, "password hasher warm-up failed");
        }
    }

    /// Spends the same effort as a real verification and always fails.
    pub async fn verify_dummy(&self, password: &str) -> anyhow::Result<bool> {
        let dummy = match self.dummy_hash.get() {
            Some(hash) => hash.clone(),
            None => {
                let random = uuid::Uuid::new_v4().to_string();
                let hash = self.hash(&random).await?;
                self.dummy_hash.get_or_init(|| hash).clone()
            }
        };
        self.verify(&dummy, password).await.map(|_| false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_argon2id_owasp_params_and_verifies() {
        let hash = hash_blocking("correct horse").expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_blocking(&hash, "correct horse").expect("verify"));
        assert!(!verify_blocking(&hash, "wrong horse").expect("verify"));
    }

    #[test]
    fn corrupt_hash_is_an_error_not_a_match() {
        assert!(verify_blocking("not-a-phc-string", "x").is_err());
    }
}
