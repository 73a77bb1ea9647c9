//! The OS asking the process to end: SIGTERM, SIGHUP and SIGINT on Unix;
//! Ctrl-C, Ctrl-Break and the console window closing on Windows.
//!
//! Front ends race their work against [`termination`] and then take the
//! same path as `exit`: credential transactions already begun are drained
//! (a rotated refresh token reaches the store) before the process ends.
//! A signal that arrives while the drain runs changes nothing; the drain is
//! bounded.
//!
//! Waiting costs nothing while idle: tokio turns a Unix signal into a byte
//! on a pipe its I/O driver already polls (no thread, no timer), and on
//! Windows the console control handler is a callback the system runs on a
//! thread of its own only when the event comes. Windows gives a process
//! about five seconds after the console closes before it ends it, so a
//! longer drain is cut short there (as by SIGKILL on Unix).

/// Resolves with the signal's name when the OS asks the process to end;
/// never resolves when no handler could be installed.
pub async fn termination() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::SignalKind;
        tokio::select! {
            name = unix(SignalKind::terminate(), "SIGTERM") => name,
            name = unix(SignalKind::hangup(), "SIGHUP") => name,
            name = unix(SignalKind::interrupt(), "SIGINT") => name,
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows;
        tokio::select! {
            name = windows_event(windows::ctrl_c().map(|mut s| async move { s.recv().await }), "Ctrl-C") => name,
            name = windows_event(windows::ctrl_break().map(|mut s| async move { s.recv().await }), "Ctrl-Break") => name,
            name = windows_event(windows::ctrl_close().map(|mut s| async move { s.recv().await }), "console close") => name,
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        std::future::pending().await
    }
}

#[cfg(unix)]
async fn unix(kind: tokio::signal::unix::SignalKind, name: &'static str) -> &'static str {
    match tokio::signal::unix::signal(kind) {
        Ok(mut stream) => delivered(stream.recv().await, name).await,
        Err(e) => not_installed(name, &e).await,
    }
}

#[cfg(windows)]
async fn windows_event<F>(installed: std::io::Result<F>, name: &'static str) -> &'static str
where
    F: std::future::Future<Output = Option<()>>,
{
    match installed {
        Ok(received) => delivered(received.await, name).await,
        Err(e) => not_installed(name, &e).await,
    }
}

/// `None` means the runtime is going away, not that the OS asked anything.
#[cfg_attr(
    not(any(unix, windows)),
    expect(dead_code, reason = "no signals on this platform")
)]
async fn delivered(received: Option<()>, name: &'static str) -> &'static str {
    match received {
        Some(()) => {
            tracing::info!(
                signal = name,
                "asked to end; finishing credential transactions first"
            );
            name
        }
        None => std::future::pending().await,
    }
}

#[cfg_attr(
    not(any(unix, windows)),
    expect(dead_code, reason = "no signals on this platform")
)]
async fn not_installed(name: &'static str, e: &std::io::Error) -> &'static str {
    tracing::warn!(signal = name, error = %e, "cannot handle this signal; it ends the process at once");
    std::future::pending().await
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A SIGHUP sent to ourselves is seen, and does not end the test
    /// process (the handler replaced the default action).
    #[tokio::test]
    async fn a_signal_ends_the_wait_with_its_name() {
        let waiting = tokio::spawn(termination());
        // Give the task a turn to install its handlers.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // SAFETY: raise(3) only asks the kernel to deliver a signal to this
        // process; the handler is installed, so it does not end it.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        let name = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the signal was seen")
            .expect("the task did not panic");
        assert_eq!(name, "SIGHUP");
    }
}
