//! What can go wrong when shardbuddy calls a daemon (or the fallback Buddy).

use std::time::Duration;

/// A failed call. The variants separate what a caller must treat
/// differently: a statement that certainly did not run (`Connect`), one that
/// may have run (`Timeout`, `Disconnected`), and answers (`Daemon`, `Decode`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The request never reached the daemon (connection refused, bad address,
    /// connect timeout): the statement certainly did not run.
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    /// No complete reply within the time limit: the statement may have run.
    #[error("no reply from {url} within {after:?}")]
    Timeout { url: String, after: Duration },
    /// The connection broke after the request was sent: the statement may
    /// have run.
    #[error("connection to {url} lost before the reply: {reason}")]
    Disconnected { url: String, reason: String },
    /// The daemon answered with an error; `Display` is its text verbatim,
    /// because users see it.
    #[error("{message}")]
    Daemon { status: u16, message: String },
    /// The reply does not have the shape of a `/sql?mode=raw` reply.
    #[error("unexpected reply from {url}: {reason}")]
    Decode { url: String, reason: String },
}

impl ClientError {
    /// Whether trying again later may succeed without changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Timeout { .. } | Self::Disconnected { .. }
        )
    }

    /// The daemon's own error text, when the daemon answered with one.
    pub fn daemon_message(&self) -> Option<&str> {
        match self {
            Self::Daemon { message, .. } => Some(message),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_and_texts() {
        let url = || "http://127.0.0.1:9308/sql?mode=raw".to_string();
        let cases = [
            (
                ClientError::Connect {
                    url: url(),
                    reason: "refused".into(),
                },
                true,
                None,
                "cannot connect to http://127.0.0.1:9308/sql?mode=raw: refused",
            ),
            (
                ClientError::Timeout {
                    url: url(),
                    after: Duration::from_millis(1500),
                },
                true,
                None,
                "no reply from http://127.0.0.1:9308/sql?mode=raw within 1.5s",
            ),
            (
                ClientError::Disconnected {
                    url: url(),
                    reason: "reset".into(),
                },
                true,
                None,
                "connection to http://127.0.0.1:9308/sql?mode=raw lost before the reply: reset",
            ),
            (
                ClientError::Daemon {
                    status: 500,
                    message: "no such table 'x'".into(),
                },
                false,
                Some("no such table 'x'"),
                "no such table 'x'",
            ),
            (
                ClientError::Decode {
                    url: url(),
                    reason: "not JSON".into(),
                },
                false,
                None,
                "unexpected reply from http://127.0.0.1:9308/sql?mode=raw: not JSON",
            ),
        ];
        for (err, transient, daemon, text) in cases {
            assert_eq!(err.is_transient(), transient, "{err:?}");
            assert_eq!(err.daemon_message(), daemon);
            assert_eq!(err.to_string(), text);
        }
    }
}
