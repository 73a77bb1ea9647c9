//! The one HTTP client every outbound request uses: rustls, timeouts on
//! everything, and redirects only to URLs the policy allows (SPEC §3.5 1006).

use std::time::Duration;

pub fn client() -> reqwest::Client {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 3 {
            attempt.error("too many redirects")
        } else if crate::urls::parse_secure(attempt.url().as_str()).is_err() {
            attempt.error("redirect to a URL that is not https")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .user_agent(concat!("mcp-auth-sidecar/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(policy)
        .build()
        // Building only fails if the TLS backend cannot initialise, which
        // means the binary itself is broken; fall back to defaults.
        .unwrap_or_default()
}
