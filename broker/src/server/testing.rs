//! In-process nodes for unit tests that need real sockets and files.

use std::collections::BTreeMap;
use std::path::Path;

use super::Node;
use crate::config::{parse_properties, BrokerConfig};

/// Formats `dir` and starts a combined node (id 1) whose client listener is
/// on `client_port` (0 for any), with `extra` property lines appended.
pub async fn start_node(dir: &Path, client_port: u16, extra: &str) -> Node {
    let props: BTreeMap<String, String> = parse_properties(&format!(
        "process.roles=broker,controller\nnode.id=1\n\
         listeners=PLAINTEXT://127.0.0.1:{client_port},CONTROLLER://127.0.0.1:0\n\
         controller.listener.names=CONTROLLER\nlog.dirs={}\n{extra}",
        dir.display()
    ))
    .unwrap();
    let config = BrokerConfig::from_properties(&props).unwrap();
    crate::meta_properties::format(&config, &crate::meta_properties::random_uuid(), false).unwrap();
    Node::start(config).await.unwrap()
}
