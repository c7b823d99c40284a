//! Ctrl-C and SIGTERM become one cancellation; a second signal exits at once.

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Returns a token cancelled on the first SIGINT/SIGTERM. A second signal exits the process
/// immediately (pending batches stay in Redis and are ingested on the next start).
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_signal().await;
        info!("shutdown requested; press Ctrl-C again to exit immediately");
        t.cancel();
        wait_signal().await;
        warn!("second signal: exiting now; unacknowledged work stays queued for the next start");
        std::process::exit(130);
    });
    token
}

async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
