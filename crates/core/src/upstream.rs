//! What a session's server serves. Each kind of upstream has its own module.
//!
//! - [`builtin`]: in-process tools, a resource and a prompt: the embedded default.

pub mod builtin;
