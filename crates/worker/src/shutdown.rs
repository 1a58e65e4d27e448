//! Asking a running worker to stop, and why.

use std::sync::Arc;

use tokio::sync::watch;

/// Why a worker was asked to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// SIGTERM or SIGINT (or a test asking).
    Signal,
    /// The metadata service announced a spot interruption; the notice body.
    SpotInterruption(String),
    /// SIGUSR1 (a rolling update): finish the job in hand, take no new one, then stop.
    Drain,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Signal => f.write_str("stop signal"),
            Self::SpotInterruption(notice) => write!(f, "spot interruption notice {notice}"),
            Self::Drain => f.write_str("drain request"),
        }
    }
}

/// A handle that asks a running worker to stop; clones share the request.
#[derive(Debug, Clone)]
pub struct Shutdown(Arc<watch::Sender<Option<StopReason>>>);

impl Default for Shutdown {
    fn default() -> Self {
        Self(Arc::new(watch::channel(None).0))
    }
}

impl Shutdown {
    /// A handle nobody has pulled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the worker to stop; the first reason given wins, except that a real stop replaces
    /// a drain request.
    pub fn request(&self, reason: StopReason) {
        self.0.send_if_modified(|current| {
            let replace = match current {
                None => true,
                Some(StopReason::Drain) => reason != StopReason::Drain,
                Some(_) => false,
            };
            if replace {
                *current = Some(reason);
            }
            replace
        });
    }

    /// The reason, once a stop was asked for.
    pub fn reason(&self) -> Option<StopReason> {
        self.0.borrow().clone()
    }

    pub(crate) async fn requested(&self) -> StopReason {
        self.requested_where(|_| true).await
    }

    /// A stop that should interrupt the job in hand: anything but a drain.
    pub(crate) async fn stop_requested(&self) -> StopReason {
        self.requested_where(|r| *r != StopReason::Drain).await
    }

    async fn requested_where(&self, wanted: impl Fn(&StopReason) -> bool) -> StopReason {
        let mut receiver = self.0.subscribe();
        loop {
            if let Some(reason) = receiver.borrow_and_update().clone().filter(|r| wanted(r)) {
                return reason;
            }
            if receiver.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_drain_does_not_interrupt_the_job_in_hand_but_a_later_stop_does() {
        let shutdown = Shutdown::new();
        shutdown.request(StopReason::Drain);
        assert_eq!(shutdown.requested().await, StopReason::Drain);
        let in_hand = tokio::time::timeout(Duration::from_millis(50), shutdown.stop_requested());
        assert!(in_hand.await.is_err(), "a drain must let the job in hand finish");
        shutdown.request(StopReason::Signal);
        assert_eq!(shutdown.stop_requested().await, StopReason::Signal);
        shutdown.request(StopReason::Drain);
        assert_eq!(shutdown.reason(), Some(StopReason::Signal));
    }
}
