//! What the hardware allows, measured in the same run: the bare argon2id rate at the default
//! cost and the bare ES256 sign and verify rates, each on every core.

use std::time::{Duration, Instant};
use tessera::domain::keys::{Signer, SigningAlg, generate};

/// Operations per second on all cores.
#[derive(Debug, Clone, Copy)]
pub struct Ceilings {
    pub argon2_per_sec: f64,
    pub sign_per_sec: f64,
    pub verify_per_sec: f64,
}

fn on_every_core(for_: Duration, work: impl Fn() -> anyhow::Result<()> + Sync) -> anyhow::Result<f64> {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let started = Instant::now();
    let counts: Vec<anyhow::Result<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while started.elapsed() < for_ {
                        work()?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a worker panicked")))).collect()
    });
    let total: u64 = counts.into_iter().sum::<anyhow::Result<u64>>()?;
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// The bare argon2id rate at the default cost on every core, each thread reusing its memory
/// as Tessera's hashing threads do, so the figure is the best the cores allow.
pub fn argon2_per_sec(each: Duration) -> anyhow::Result<f64> {
    use std::cell::RefCell;
    thread_local! {
        static MEMORY: RefCell<Vec<argon2::Block>> = const { RefCell::new(Vec::new()) };
    }
    let params = argon2::Params::new(19_456, 2, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let blocks = params.block_count();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    on_every_core(each, || {
        MEMORY.with_borrow_mut(|memory| {
            memory.resize(blocks, argon2::Block::new());
            let mut out = [0u8; 32];
            argon
                .hash_password_into_with_memory(b"correct horse battery staple", b"0123456789abcdef", &mut out, &mut memory[..])
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
    })
}

/// Measures each ceiling for `each`.
pub fn measure(each: Duration) -> anyhow::Result<Ceilings> {
    let argon2_per_sec = argon2_per_sec(each)?;

    let key = generate(SigningAlg::ES256)?;
    let signer = Signer::from_pkcs8(SigningAlg::ES256, key.kid.clone(), &key.private_key)?;
    let claims = serde_json::json!({ "iss": "http://bench", "sub": "x", "aud": "http://bench", "exp": 4_000_000_000u64, "scope": "a b" });
    let sign_per_sec = on_every_core(each, || {
        signer.sign_jwt(&claims)?;
        Ok(())
    })?;
    let token = signer.sign_jwt(&claims)?;
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk.clone())?;
    let verifier = jsonwebtoken::DecodingKey::from_jwk(&jwk)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.validate_aud = false;
    let verify_per_sec = on_every_core(each, || {
        jsonwebtoken::decode::<serde_json::Value>(&token, &verifier, &validation)?;
        Ok(())
    })?;
    Ok(Ceilings { argon2_per_sec, sign_per_sec, verify_per_sec })
}
