//! Opening authorization URLs (docs/protocol.md#initialization-options,
//! `browser`): never through a shell, only https (http on loopback) URLs.

use futures::future::BoxFuture;

/// How this process opens a URL for the user (`browser` in
/// docs/protocol.md#initialization-options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Browser {
    /// Do not open anything; the URL is still announced.
    None,
    /// The platform opener (`xdg-open`, `open`, `start`), no shell.
    System,
    /// A command; the URL is appended as its last argument.
    Command(Vec<String>),
}

/// Something that can show a URL to the user: a browser here, or the
/// editor (`window/showDocument`, implemented in `rpc`).
pub trait Opener: Send + Sync {
    fn open<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

impl Opener for Browser {
    fn open<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            crate::urls::parse_secure(url).map_err(|e| e.to_string())?;
            match self {
                Browser::None => Ok(()),
                Browser::System => {
                    open::that_detached(url).map_err(|e| format!("cannot start a browser: {e}"))
                }
                Browser::Command(argv) => {
                    let Some((program, args)) = argv.split_first() else {
                        return Err("the browser command is empty".into());
                    };
                    let mut child = tokio::process::Command::new(program)
                        .args(args)
                        .arg(url)
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::null())
                        .spawn()
                        .map_err(|e| format!("cannot run the browser command {program:?}: {e}"))?;
                    // Reap it whenever it ends; its exit does not matter.
                    tokio::spawn(async move {
                        let _ = child.wait().await;
                    });
                    Ok(())
                }
            }
        })
    }
}
