//! Logging with `tracing` on stderr.

use tracing_subscriber::EnvFilter;

/// Starts logging: `-q` errors only, default warnings, `-v` info, `-vv` debug including the
/// AWS SDK. `RUST_LOG`, when set, wins.
pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose > 1)
        .try_init();
}
