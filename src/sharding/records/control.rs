//! The `rebalance:<t>` state value: an operator's statement about a table's
//! rebalance (`REBALANCE TABLE`, `PAUSE`, `RESUME`, `STOP`), written by the
//! node that received it and carried out by the master, which alone writes
//! group records. The receiving node waits for the answer, then removes the
//! request. One request per table at a time.
//!
//! ```text
//! requested ──master carries it out──▶ done (answer: result sets)
//!     └──────master refuses it──────▶ failed (error)
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Scope, StopKind, TransitionError};
use crate::ids::NodeId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    /// Plan and start a rebalance now.
    Rebalance,
    Pause,
    Resume,
    Stop(StopKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    Requested,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// Unique per statement: the requester recognises its answer by it.
    pub id: String,
    pub by: NodeId,
    pub action: ControlAction,
    /// Where the statement said the table lives.
    #[serde(rename = "cluster")]
    pub scope: Scope,
    pub status: ControlStatus,
    /// Requester's wall clock, for people to read.
    pub at_ms: i64,
    /// The statement's result sets once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ControlRequest {
    pub fn requested(
        id: String,
        by: NodeId,
        action: ControlAction,
        scope: Scope,
        at_ms: i64,
    ) -> Self {
        Self {
            id,
            by,
            action,
            scope,
            status: ControlStatus::Requested,
            at_ms,
            result: None,
            error: None,
        }
    }

    fn go(&mut self, to: ControlStatus, name: &'static str) -> Result<(), TransitionError> {
        if self.status != ControlStatus::Requested {
            return Err(TransitionError {
                record: "rebalance request",
                from: format!("{:?}", self.status).to_lowercase(),
                to: name,
            });
        }
        self.status = to;
        Ok(())
    }

    /// Carried out; `result` is what the statement answers.
    pub fn answer(&mut self, result: Value) -> Result<(), TransitionError> {
        self.go(ControlStatus::Done, "done")?;
        self.result = Some(result);
        Ok(())
    }

    /// Refused with `error`, nothing changed.
    pub fn refuse(&mut self, error: String) -> Result<(), TransitionError> {
        self.go(ControlStatus::Failed, "failed")?;
        self.error = Some(error);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_once() {
        let mut r = ControlRequest::requested(
            "id".into(),
            NodeId::new("n"),
            ControlAction::Stop(StopKind::Immediate),
            Scope::Local,
            1,
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["action"], serde_json::json!({"stop": "immediate"}));
        assert_eq!(serde_json::from_value::<ControlRequest>(json).unwrap(), r);
        r.refuse("no".into()).unwrap();
        assert_eq!(r.status, ControlStatus::Failed);
        assert!(r.answer(Value::Null).is_err());
    }
}
