//! Argon2id password hashing at OWASP parameters, run on the blocking pool behind a
//! semaphore so that a flood of logins queues instead of stalling the async workers.
//!
//! Each computation needs 19 MiB of working memory. Allocating it per hash costs page
//! faults and zeroing on every login (about 40% of login throughput in our benchmarks), and
//! glibc tends to keep such freed buffers resident. So each permit reuses one buffer,
//! created on first use: memory stays at `permits x 19 MiB` at most, and idle processes
//! that never hashed hold none.

use std::sync::Arc;

use parking_lot::Mutex;

use anyhow::{Context, anyhow, bail};
use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use rand::RngCore;
use secrecy::ExposeSecret;
use tokio::sync::Semaphore;

use crate::domain::Password;

/// OWASP Password Storage Cheat Sheet: Argon2id, m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;

type Memory = Vec<Block>;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Working memory of finished computations, reused by the next ones.
    spare: Arc<Mutex<Vec<Memory>>>,
    /// A well-formed hash of nothing, verified against when an email is unknown so that
    /// the response costs one full argon2 computation and reveals nothing.
    dummy_hash: Arc<str>,
}

fn params(
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    output_len: usize,
) -> anyhow::Result<Params> {
    Params::new(memory_kib, iterations, parallelism, Some(output_len))
        .map_err(|err| anyhow!("argon2 params: {err}"))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn phc_string(params: &Params, salt: &[u8], output: &[u8]) -> String {
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        B64.encode(salt),
        B64.encode(output)
    )
}

/// Runs argon2id into `out`, growing `memory` if these parameters need more blocks.
fn compute(
    params: Params,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Memory,
) -> anyhow::Result<()> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..blocks])
        .map_err(|err| anyhow!("argon2: {err}"))
}

/// A PHC string `$argon2id$v=19$m=…,t=…,p=…$salt$hash` for `password`.
fn hash_with(password: &str, memory: &mut Memory) -> anyhow::Result<String> {
    let params = params(MEMORY_KIB, ITERATIONS, PARALLELISM, OUTPUT_LEN)?;
    let salt = random_bytes::<SALT_LEN>();
    let mut output = [0u8; OUTPUT_LEN];
    compute(params.clone(), password, &salt, &mut output, memory)?;
    Ok(phc_string(&params, &salt, &output))
}

/// `Ok(false)` for a wrong password; `Err` only for a stored hash we cannot read.
pub fn verify_with(stored: &str, password: &str, memory: &mut Memory) -> anyhow::Result<bool> {
    let stored = PasswordHash::new(stored).map_err(|err| anyhow!("stored hash: {err}"))?;
    if stored.algorithm != ARGON2ID_IDENT || stored.version != Some(Version::V0x13.into()) {
        bail!("stored hash is not an argon2id v19 PHC string");
    }
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        bail!("stored hash has no salt or no output");
    };
    let params = Params::try_from(&stored).map_err(|err| anyhow!("argon2 params: {err}"))?;
    let mut actual = vec![0u8; expected.len()];
    compute(params, password, salt, &mut actual, memory)?;
    // `Output`'s equality is constant time: it does not stop at the first differing byte.
    let actual = Output::new(&actual).map_err(|err| anyhow!("argon2 output: {err}"))?;
    Ok(actual == *expected)
}

pub fn hash_blocking(password: &Password) -> anyhow::Result<String> {
    hash_with(password.expose_secret(), &mut Vec::new())
}

pub fn verify_blocking(stored: &str, password: &str) -> anyhow::Result<bool> {
    verify_with(stored, password, &mut Vec::new())
}

impl PasswordHasher {
    /// `concurrency` 0 means one hash at a time per CPU core.
    pub fn new(concurrency: usize) -> Self {
        let permits = if concurrency == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            concurrency
        };
        let dummy = params(MEMORY_KIB, ITERATIONS, PARALLELISM, OUTPUT_LEN)
            .map(|p| {
                phc_string(
                    &p,
                    &random_bytes::<SALT_LEN>(),
                    &random_bytes::<OUTPUT_LEN>(),
                )
            })
            .unwrap_or_default();
        Self {
            permits: Arc::new(Semaphore::new(permits)),
            spare: Arc::new(Mutex::new(Vec::with_capacity(permits))),
            dummy_hash: dummy.into(),
        }
    }

    /// Runs `work` on the blocking pool once a permit is free. The permit and the working
    /// memory move into the blocking task and are released only when the hash is done, so
    /// a cancelled request (client gone, timeout) cannot start more hashes than permits.
    async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        F: FnOnce(&mut Memory) -> anyhow::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .context("hash semaphore closed")?;
        let spare = Arc::clone(&self.spare);
        tokio::task::spawn_blocking(move || {
            let mut memory = spare.lock().pop().unwrap_or_default();
            let result = work(&mut memory);
            spare.lock().push(memory);
            drop(permit);
            result
        })
        .await
        .context("hashing task panicked")?
    }

    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        // A clone stays secret (zeroed on drop) on its way through the blocking pool.
        let password = password.clone();
        self.run(move |memory| hash_with(password.expose_secret(), memory))
            .await
    }

    pub async fn verify(&self, stored: &str, password: &str) -> anyhow::Result<bool> {
        let (stored, password) = (stored.to_owned(), password.to_owned());
        self.run(move |memory| verify_with(&stored, &password, memory))
            .await
    }

    /// Spends the same effort as a real verification and always fails.
    pub async fn verify_dummy(&self, password: &str) -> anyhow::Result<bool> {
        let dummy = self.dummy_hash.clone();
        self.verify(&dummy, password).await.map(|_| false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use crate::validate::Errors;

    fn password(raw: &str) -> Password {
        Password::parse(&mut Errors::default(), "password", raw.to_string()).expect("valid")
    }

    #[test]
    fn hashes_with_argon2id_owasp_params_and_verifies() {
        let hash = hash_blocking(&password("correct horse")).expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_blocking(&hash, "correct horse").expect("verify"));
        assert!(!verify_blocking(&hash, "wrong horse").expect("verify"));
    }

    #[test]
    fn interoperates_with_the_argon2_crates_phc_implementation() {
        let ours = hash_blocking(&password("interop1")).expect("hash");
        let parsed = PasswordHash::new(&ours).expect("valid PHC string");
        assert!(
            Argon2::default()
                .verify_password(b"interop1", &parsed)
                .is_ok()
        );
        let argon = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            params(MEMORY_KIB, ITERATIONS, PARALLELISM, OUTPUT_LEN).expect("params"),
        );
        let theirs = argon.hash_password(b"interop").expect("hash").to_string();
        assert!(verify_blocking(&theirs, "interop").expect("verify"));
        assert!(!verify_blocking(&theirs, "nope").expect("verify"));
    }

    #[test]
    fn reused_memory_gives_the_same_answers() {
        let mut memory = Vec::new();
        let first = hash_with("one", &mut memory).expect("hash");
        let second = hash_with("two", &mut memory).expect("hash");
        assert!(verify_with(&first, "one", &mut memory).expect("verify"));
        assert!(verify_with(&second, "two", &mut memory).expect("verify"));
        assert!(!verify_with(&first, "two", &mut memory).expect("verify"));
    }

    #[test]
    fn unreadable_hashes_are_errors_not_matches() {
        for stored in [
            "not-a-phc-string",
            "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
            "$argon2id$v=19$m=x,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
        ] {
            assert!(verify_blocking(stored, "x").is_err(), "{stored}");
        }
    }

    #[tokio::test]
    async fn dummy_verification_always_fails() {
        let hasher = PasswordHasher::new(1);
        assert!(!hasher.verify_dummy("anything").await.expect("dummy"));
    }
}
