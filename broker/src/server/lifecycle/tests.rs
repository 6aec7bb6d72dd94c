//! End to end in one process: a real combined node (a quorum of one, its own
//! broker registered by its lifecycle manager, its controller fencing stale
//! sessions) and a second lifecycle manager posing as broker 2, talking to
//! the controller listener.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::client::ClientOptions;
use crate::controller::lifecycle_tests::{partitions, topic};
use crate::server::Node;

async fn start_node(dir: &std::path::Path) -> Node {
    crate::server::testing::start_node(
        dir,
        0,
        "broker.session.timeout.ms=1500\nbroker.heartbeat.interval.ms=100\n",
    )
    .await
}

/// A channel to the node's own controller, as a broker's lifecycle uses it.
fn controller_channel(node: &Node) -> Arc<ControllerChannel> {
    let voters = [(
        1,
        "127.0.0.1".to_string(),
        node.controller_addr.unwrap().port(),
    )];
    Arc::new(ControllerChannel::new(
        &voters,
        node.raft.watch_leader(),
        ClientOptions::default(),
    ))
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_register_unfence_get_fenced_return_and_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path()).await;
    let controller = node.controller.clone();
    let channel = controller_channel(&node);
    let offset: MetadataOffset = {
        let controller = controller.clone();
        Arc::new(move || controller.image().metadata_offset)
    };
    let cluster_id = node.broker().image().cluster_id.clone();
    let broker2_config = BrokerConfig {
        node_id: 2,
        rack: Some("r2".into()),
        broker_heartbeat_interval_ms: 100,
        ..BrokerConfig::default()
    };
    let broker2 = || {
        BrokerLifecycle::start(
            LifecycleConfig::from_broker(&broker2_config, cluster_id.clone()),
            channel.clone(),
            offset.clone(),
        )
    };

    let first = broker2();
    let mut state = first.state();
    tokio::time::timeout(Duration::from_secs(20), state.wait_for(|s| s.is_ready()))
        .await
        .expect("registered, caught up and unfenced")
        .unwrap();
    let registered = node.broker().image().brokers[&2].clone();
    assert_eq!(
        (
            registered.fenced,
            registered.rack.as_deref(),
            registered.port
        ),
        (false, Some("r2"), 9092)
    );

    topic(&controller, "t", vec![vec![1, 2], vec![2, 1]]);
    topic(&controller, "solo", vec![vec![2]]);

    // Broker 2 stops heartbeating: fenced, its leaderships move.
    drop(first);
    wait_until("broker 2 fenced", || {
        node.broker().image().brokers[&2].fenced
    })
    .await;
    assert_eq!(
        partitions(&controller, "t"),
        vec![(1, vec![1]), (1, vec![1])]
    );
    assert_eq!(partitions(&controller, "solo"), vec![(-1, vec![2])]);

    // It comes back as a new process: registered, unfenced, leads "solo" again.
    let second = broker2();
    let mut state = second.state();
    tokio::time::timeout(Duration::from_secs(20), state.wait_for(|s| s.is_ready()))
        .await
        .expect("unfenced again")
        .unwrap();
    assert!(node.broker().image().brokers[&2].epoch > registered.epoch);
    wait_until("solo led by 2", || {
        partitions(&controller, "solo") == vec![(2, vec![2])]
    })
    .await;

    // Controlled shutdown moves its leaderships before it goes.
    topic(&controller, "u", vec![vec![2, 1], vec![2, 1]]);
    assert_eq!(
        second.shutdown(Duration::from_secs(20)).await,
        LifecycleState::ShutDown
    );
    let gone = node.broker().image().brokers[&2].clone();
    assert!(gone.fenced && gone.in_controlled_shutdown);
    assert_eq!(
        partitions(&controller, "u"),
        vec![(1, vec![1]), (1, vec![1])]
    );
    assert_eq!(partitions(&controller, "solo"), vec![(-1, vec![2])]);

    node.stop().await.unwrap();
}

/// The last node of a cluster stopped all at once has no controller left to let it go:
/// it stops after a couple of unanswered heartbeats instead of waiting out its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_without_any_controller_does_not_wait_for_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path()).await;
    let controller = node.controller.clone();
    let channel = controller_channel(&node);
    let offset: MetadataOffset = Arc::new(move || controller.image().metadata_offset);
    let cluster_id = node.broker().image().cluster_id.clone();
    let config = BrokerConfig {
        node_id: 2,
        broker_heartbeat_interval_ms: 100,
        ..BrokerConfig::default()
    };
    let broker2 = BrokerLifecycle::start(
        LifecycleConfig::from_broker(&config, cluster_id),
        channel,
        offset,
    );
    let mut state = broker2.state();
    tokio::time::timeout(Duration::from_secs(20), state.wait_for(|s| s.is_ready()))
        .await
        .expect("registered and unfenced")
        .unwrap();

    // The only controller goes away; then broker 2 is asked to stop.
    node.stop().await.unwrap();
    let asked = tokio::time::Instant::now();
    let last = broker2.shutdown(Duration::from_secs(30)).await;
    let took = asked.elapsed();
    assert_eq!(last, LifecycleState::ShutDown);
    assert!(
        took < Duration::from_secs(5),
        "shutdown waited {took:?} for a controller that is gone"
    );
}
