//! Logging with `tracing` on stderr.

use std::ffi::OsStr;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Starts logging: `-q` errors only, default warnings, `-v` info, `-vv` debug including the
/// AWS SDK. `RUST_LOG`, when set, wins. Colour only when stderr is a terminal and `NO_COLOR`
/// is unset, so logs piped to a file or read by CI carry no escape codes.
pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let no_color = std::env::var_os("NO_COLOR");
    let ansi = use_colour(std::io::stderr().is_terminal(), no_color.as_deref());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(verbose > 1)
        .try_init();
}

/// Whether log lines get colour: on a terminal, unless `NO_COLOR` is set to a non-empty value.
pub fn use_colour(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }
}
