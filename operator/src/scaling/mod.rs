//! Broker scale-down: the persisted operation and the executor of the state machine.

pub mod machine;

use serde::{Deserialize, Serialize};

pub use machine::ScaleDown;

/// The operation in progress, as shown in status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScaleDown>,
    /// Pod being restarted by the rolling update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarting_pod: Option<String>,
}
