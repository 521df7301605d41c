//! One address served by several threads, each with a current-thread
//! runtime and a listener of its own on the address (`SO_REUSEPORT`: the
//! kernel spreads new connections over the listeners). A connection's whole
//! life (accept, request, upstream exchange) then stays on one thread: no
//! task hand-off between worker threads, no work stealing, none of the
//! futex wake-ups they cost on every request.

use std::{
    any::Any,
    io,
    net::SocketAddr,
    num::NonZeroUsize,
    panic::{AssertUnwindSafe, catch_unwind},
    thread,
    time::Duration,
};

use anyhow::Context;
use tokio::{
    net::TcpSocket,
    sync::{mpsc, watch},
};

use super::{ConnectionLimits, ConnectionServe, Slots, raise_open_file_limit, serve_capped};

/// Most serving threads `KEYSMITH_GATEWAY_THREADS` may ask for.
pub const MAX_THREADS: usize = 256;

/// The gauge of how many threads serve: fewer than asked when the
/// connection cap is smaller than the count (see [`serve_threads`]).
const SERVING_THREADS: &str = "keysmith_gateway_serving_threads";

/// `KEYSMITH_GATEWAY_THREADS` (`--threads`): a whole number of threads
/// from 0 (one per core) to [`MAX_THREADS`].
pub fn parse_threads(raw: &str) -> Result<usize, String> {
    match raw.trim().parse::<usize>() {
        Ok(threads) if threads <= MAX_THREADS => Ok(threads),
        _ => Err(format!(
            "KEYSMITH_GATEWAY_THREADS (--threads) must be a whole number from 0 (one per core) to {MAX_THREADS}"
        )),
    }
}

/// The serving threads `setting` asks for: 0 is one per core.
pub fn thread_count(setting: usize) -> usize {
    if setting > 0 {
        return setting;
    }
    thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// `count` listeners on `addr`, sharing it through `SO_REUSEPORT` (port 0:
/// the port the first is given). Must run inside a runtime (listening
/// registers a socket with it); each listener leaves it again, to be
/// registered with the runtime of the thread that serves it.
pub fn bind_shared(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    // Every listener sets SO_REUSEPORT, so another process of this user
    // could join the address unnoticed; a socket without it cannot bind an
    // address something listens on: a second gateway started on the same
    // address fails here, as with one listener.
    let probe = socket(addr)?;
    probe.bind(addr)?;
    let addr = probe.local_addr()?;
    drop(probe);
    (0..count.max(1))
        .map(|_| {
            let socket = socket(addr)?;
            socket.set_reuseport(true)?;
            socket.bind(addr)?;
            // tokio's own backlog for `TcpListener::bind`.
            socket.listen(1024)?.into_std()
        })
        .collect()
}

fn socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind`: a restart is not refused for the connections
    // of the previous run still in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    Ok(socket)
}

/// Serves `apps[i]` (each connection's service, made from the client's
/// address and the body timeout) on `listeners[i]`, each on a thread of its
/// own with its own current-thread runtime, under `limits` (one connection
/// cap for all the threads: the kernel spreads connections by their
/// addresses, not by load, so a thread may get more than its part) until
/// `shutdown` resolves; then each thread finishes its requests in progress, as [`super::serve`] does, and
/// `then` runs. The threads' runtimes live until `then` is done: a
/// connection a request opened on a thread (to the database, to Redis) is
/// driven by that thread's runtime, and `then` (the audit flush) may use it.
///
/// A thread that fails or panics stops the others (gracefully) and makes
/// this an error, after `then`. Needs one app per listener; listeners past
/// the cap (more threads than connections) are closed unused.
pub async fn serve_threads<M, S, T>(
    listeners: Vec<std::net::TcpListener>,
    apps: Vec<M>,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    then: impl Future<Output = T>,
) -> anyhow::Result<T>
where
    M: Fn(SocketAddr, Duration) -> S + Send + 'static,
    S: ConnectionServe,
{
    anyhow::ensure!(listeners.len() == apps.len(), "one app per listener");
    let cap = limits.cap(raise_open_file_limit());
    let mut listeners = listeners;
    if listeners.len() > cap {
        // More accept loops than slots would only hold more connections
        // accepted and unserved (one per loop) at the cap.
        tracing::warn!(
            threads = listeners.len(),
            max_connections = cap,
            "fewer serving threads than asked: no more threads than the connection cap"
        );
        listeners.truncate(cap);
    }
    tracing::info!(
        threads = listeners.len(),
        max_connections = cap,
        "serving threads"
    );
    metrics::describe_gauge!(
        SERVING_THREADS,
        "Threads serving the gateway's address, each with its own listener and runtime."
    );
    metrics::gauge!(SERVING_THREADS).set(listeners.len() as f64);
    let (stop, stopping) = watch::channel(false);
    let (release, released) = watch::channel(false);
    let (done, mut finished) = mpsc::unbounded_channel();
    let slots = Slots::new(cap);
    let mut threads = Vec::with_capacity(listeners.len());
    for (index, (listener, app)) in listeners.into_iter().zip(apps).enumerate() {
        let serving = Serving {
            listener,
            app,
            limits: *limits,
            slots: slots.clone(),
            stopping: stopping.clone(),
            released: released.clone(),
        };
        let done = done.clone();
        let thread = thread::Builder::new()
            .name(format!("keysmith-serve-{index}"))
            .spawn(move || serving.run(|served| drop(done.send((index, served)))))
            .context("failed to start a serving thread")?;
        threads.push(thread);
    }
    drop(done);
    let failed = wait(threads.len(), &stop, &mut finished, shutdown).await;
    let then = then.await;
    let _ = release.send(true);
    // Each thread ends once its runtime is dropped (prompt: its connections
    // are all closed by now).
    for thread in threads {
        let _ = thread.join();
    }
    match failed {
        Some(failure) => Err(failure),
        None => Ok(then),
    }
}

/// Waits until each of `threads` has finished serving, telling them all to
/// stop on `shutdown` or as soon as one fails; returns the first failure.
async fn wait(
    threads: usize,
    stop: &watch::Sender<bool>,
    finished: &mut mpsc::UnboundedReceiver<(usize, Served)>,
    shutdown: impl Future<Output = ()>,
) -> Option<anyhow::Error> {
    tokio::pin!(shutdown);
    let mut failed = None;
    let mut left = threads;
    while left > 0 {
        let (index, served) = tokio::select! {
            () = &mut shutdown, if !*stop.borrow() => {
                let _ = stop.send(true);
                continue;
            }
            next = finished.recv() => match next {
                Some(next) => next,
                // Every thread sends once before it ends: not reached.
                None => break,
            },
        };
        left -= 1;
        let failure = match served {
            Ok(Ok(())) if *stop.borrow() => continue,
            Ok(Ok(())) => anyhow::anyhow!("stopped serving before shutdown"),
            Ok(Err(err)) => anyhow::Error::from(err),
            Err(panic) => anyhow::anyhow!("panicked: {}", panic_message(panic.as_ref())),
        };
        tracing::error!(thread = index, error = %failure, "a serving thread failed: stopping the others");
        let _ = stop.send(true);
        failed.get_or_insert(failure.context(format!("serving thread {index} failed")));
    }
    failed
}

/// How a serving thread ended: its result, or its panic.
type Served = Result<io::Result<()>, Box<dyn Any + Send>>;

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a message)")
}

/// What one serving thread serves, and the signals it follows.
struct Serving<M> {
    listener: std::net::TcpListener,
    app: M,
    limits: ConnectionLimits,
    slots: Slots,
    stopping: watch::Receiver<bool>,
    released: watch::Receiver<bool>,
}

impl<M, S> Serving<M>
where
    M: Fn(SocketAddr, Duration) -> S,
    S: ConnectionServe,
{
    /// Serves until told to stop, reports how that went to `report`, then
    /// keeps its runtime (and the connections opened on it) alive until
    /// released.
    fn run(self, report: impl FnOnce(Served)) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => return report(Ok(Err(err))),
        };
        let Self {
            listener,
            app,
            limits,
            slots,
            mut stopping,
            mut released,
        } = self;
        let served = catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let stop = async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                };
                serve_capped(listener, &limits, &slots, app, stop).await
            })
        }));
        report(served);
        runtime.block_on(async {
            let _ = released.wait_for(|released| *released).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicked_thread_stops_the_others_and_is_an_error() {
        let (stop, mut stopping) = watch::channel(false);
        let (done, mut finished) = mpsc::unbounded_channel::<(usize, Served)>();
        done.send((1, Err(Box::new("boom")))).expect("send");
        done.send((0, Ok(Ok(())))).expect("send");
        let failed = wait(2, &stop, &mut finished, std::future::pending()).await;
        let failed = format!("{:#}", failed.expect("a failure"));
        assert_eq!(failed, "serving thread 1 failed: panicked: boom");
        assert!(*stopping.borrow_and_update(), "the others told to stop");
    }

    #[test]
    fn zero_threads_is_one_per_core() {
        assert!(thread_count(0) >= 1);
        assert_eq!(thread_count(3), 3);
        assert_eq!(parse_threads(" 0"), Ok(0));
        assert_eq!(parse_threads("256"), Ok(256));
        for bad in ["257", "-1", "two", "", "1.5"] {
            let err = parse_threads(bad).expect_err(bad);
            assert!(err.contains("KEYSMITH_GATEWAY_THREADS"), "{err}");
        }
    }
}
