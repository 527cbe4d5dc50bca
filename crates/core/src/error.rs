//! The crate's one error enum.

/// Why a session's server could not be started or served.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime is shutting down; no new sessions start.
    #[error("the gateway is shutting down")]
    ShuttingDown,
}
