//! [`Handshake`]: a session's `initialize` as it ended, from which a parked session's next
//! server starts (and, in a cluster, the server of the instance that takes it over).

use rmcp::model::{InitializeRequestParams, ServerConfig};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The handshake as it ended: the client's `initialize` (with the version agreed on) and
/// what the server answered. A store keeps it as JSON ([`Handshake::to_json`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Handshake {
    pub(crate) client: InitializeRequestParams,
    pub(crate) server: ServerConfig,
}

impl Handshake {
    /// The handshake as JSON text.
    pub fn to_json(&self) -> String {
        // Plain data of rmcp's model types, whose serialization does not fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The protocol version agreed on.
    pub fn protocol_version(&self) -> &str {
        self.client.protocol_version.as_str()
    }

    /// A handshake from its JSON text.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        serde_json::from_str(text).map_err(|e| Error::BadHandshake(e.to_string()))
    }
}
