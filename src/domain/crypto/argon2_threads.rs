//! Argon2 runs on a fixed set of threads, one per core, not on tokio's
//! blocking pool, and each thread keeps its ~19 MiB of argon2 working memory
//! for the next run (`users::verify_password`). Allocating that memory per
//! run let the allocator keep freed copies in every arena a hashing thread
//! moved through: a 200-connection sign-in flood held 331 MiB on the
//! blocking pool (444 MiB on these threads), never returned; with the memory
//! kept per thread it peaks at about 64 MiB (BENCHMARKS.md).

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, OnceLock, mpsc},
};

use anyhow::Context;

type Job = Box<dyn FnOnce() + Send + 'static>;

static WORKERS: OnceLock<mpsc::Sender<Job>> = OnceLock::new();

/// How many argon2 runs can be under way at once: one per core.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

fn workers() -> anyhow::Result<&'static mpsc::Sender<Job>> {
    if let Some(sender) = WORKERS.get() {
        return Ok(sender);
    }
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for i in 0..threads() {
        let receiver = receiver.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                loop {
                    let job = match receiver.lock() {
                        Ok(queue) => match queue.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    // A panicking job must not take its thread with it.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            })
            .context("failed to start a password hashing thread")?;
    }
    // Two first callers racing: the loser's threads exit once its sender drops.
    Ok(WORKERS.get_or_init(|| sender))
}

/// Runs `work` on a hashing thread and waits for it without blocking the runtime.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    workers()?
        .send(Box::new(move || {
            let _ = done.send(work());
        }))
        .map_err(|_| anyhow::anyhow!("the password hashing threads stopped"))?;
    result.await.context("a password hashing job failed")
}
