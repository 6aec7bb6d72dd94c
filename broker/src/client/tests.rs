//! The client over real sockets: against a real node, and against scripted
//! peers for what a healthy node never does (answers out of order, hangs,
//! garbage, dropped sockets, NOT_CONTROLLER).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use super::*;
use crate::protocol::{decode_request, encode_response, peek_header, read_frame, RawHeader};
use crate::server::Node;

fn deadline(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

async fn next_request(stream: &mut TcpStream) -> Option<(RawHeader, Bytes)> {
    let frame = read_frame(stream, 1 << 20).await.ok()??;
    Some((peek_header(&frame).unwrap(), frame))
}

async fn respond<T: Encodable>(
    stream: &mut TcpStream,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) {
    for chunk in encode_response(api, version, correlation_id, body, Vec::new()).unwrap() {
        stream.write_all(&chunk).await.unwrap();
    }
}

/// Answers the client's ApiVersions request with `apis` (plus ApiVersions).
async fn serve_versions(stream: &mut TcpStream, apis: &[(ApiKey, i16, i16)]) {
    let (header, _) = next_request(stream).await.unwrap();
    assert_eq!(header.api_key, ApiKey::ApiVersions as i16);
    let table = crate::protocol::ApiVersionTable::new([apis, &[(ApiKey::ApiVersions, 0, 4)]]);
    let response = ApiVersionsResponse::default().with_api_keys(table.to_response_keys());
    respond(
        stream,
        ApiKey::ApiVersions,
        header.api_version,
        header.correlation_id,
        &response,
    )
    .await;
}

async fn connect(addr: &str) -> Connection {
    Connection::connect(addr, &ClientOptions::default(), deadline(5000))
        .await
        .unwrap()
}

/// FindCoordinator for `key` on `connection`, waiting at most `ms`.
async fn ask(
    connection: &Connection,
    key: &str,
    ms: u64,
) -> Result<FindCoordinatorResponse, ClientError> {
    connection.send(&find_coordinator(key), deadline(ms)).await
}

/// Asks for keys "0".."count" at once, each from its own task.
fn ask_concurrently(
    connection: &Arc<Connection>,
    count: usize,
    ms: u64,
) -> Vec<tokio::task::JoinHandle<Result<FindCoordinatorResponse, ClientError>>> {
    (0..count)
        .map(|i| {
            let connection = connection.clone();
            tokio::spawn(async move { ask(&connection, &i.to_string(), ms).await })
        })
        .collect()
}

fn find_coordinator(key: &str) -> FindCoordinatorRequest {
    FindCoordinatorRequest::default().with_key(StrBytes::from_string(key.to_string()))
}

/// A peer serving FindCoordinator v0-3 and answering each key through `answer`:
/// `Some(node id)` answers, `None` never does.
async fn coordinator_peer(
    answer: impl Fn(&str) -> Option<i32> + Send + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    let (listener, addr) = bind().await;
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        serve_versions(&mut stream, &[(ApiKey::FindCoordinator, 0, 3)]).await;
        while let Some((header, frame)) = next_request(&mut stream).await {
            let (_, request): (_, FindCoordinatorRequest) =
                decode_request(ApiKey::FindCoordinator, header.api_version, frame).unwrap();
            if let Some(node) = answer(request.key.as_str()) {
                let response = FindCoordinatorResponse::default().with_node_id(BrokerId(node));
                respond(
                    &mut stream,
                    ApiKey::FindCoordinator,
                    header.api_version,
                    header.correlation_id,
                    &response,
                )
                .await;
            }
        }
    });
    (addr, task)
}

#[tokio::test]
async fn answers_out_of_order_reach_their_callers() {
    let (listener, addr) = bind().await;
    let peer = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        serve_versions(&mut stream, &[(ApiKey::FindCoordinator, 0, 3)]).await;
        let mut held = Vec::new();
        for _ in 0..20 {
            let (header, frame) = next_request(&mut stream).await.unwrap();
            // The highest version both sides support.
            assert_eq!(header.api_version, 3);
            let (_, request): (_, FindCoordinatorRequest) =
                decode_request(ApiKey::FindCoordinator, 3, frame).unwrap();
            held.push((header.correlation_id, request.key.parse::<i32>().unwrap()));
        }
        for (correlation_id, node) in held.into_iter().rev() {
            let response = FindCoordinatorResponse::default().with_node_id(BrokerId(node));
            respond(
                &mut stream,
                ApiKey::FindCoordinator,
                3,
                correlation_id,
                &response,
            )
            .await;
        }
    });
    let connection = Arc::new(connect(&addr).await);
    let calls = ask_concurrently(&connection, 20, 5000);
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap().node_id.0, i as i32);
    }
    peer.await.unwrap();
}

#[tokio::test]
async fn a_timed_out_request_leaves_the_connection_usable() {
    let (addr, _peer) = coordinator_peer(|key| key.parse().ok()).await;
    let connection = connect(&addr).await;
    let started = Instant::now();
    let error = ask(&connection, "never", 200).await.unwrap_err();
    assert!(matches!(error, ClientError::Timeout(_)), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    let answer = ask(&connection, "7", 5000).await.unwrap();
    assert_eq!(answer.node_id.0, 7);
}

#[tokio::test]
async fn a_dropped_socket_fails_waiting_requests_at_once() {
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        serve_versions(&mut stream, &[(ApiKey::FindCoordinator, 0, 3)]).await;
        for _ in 0..3 {
            next_request(&mut stream).await.unwrap();
        }
        // Gone without answering.
    });
    let connection = Arc::new(connect(&addr).await);
    let started = Instant::now();
    let calls = ask_concurrently(&connection, 3, 30_000);
    for call in calls {
        let error = call.await.unwrap().unwrap_err();
        assert!(matches!(error, ClientError::Disconnected { .. }), "{error}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(connection.is_closed());
    let error = ask(&connection, "1", 30_000).await.unwrap_err();
    assert!(matches!(error, ClientError::Disconnected { .. }), "{error}");
}

#[tokio::test]
async fn bad_responses_are_errors_not_panics() {
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        serve_versions(&mut stream, &[(ApiKey::FindCoordinator, 0, 3)]).await;
        let (header, _) = next_request(&mut stream).await.unwrap();
        // The right correlation id, then a body cut short.
        let mut frame = vec![0, 0, 0, 7];
        frame.extend(header.correlation_id.to_be_bytes());
        frame.extend([0xff, 0xff, 0xff]);
        stream.write_all(&frame).await.unwrap();
        // A frame too short to hold a correlation id closes the connection.
        next_request(&mut stream).await.unwrap();
        stream.write_all(&[0, 0, 0, 2, 1, 2]).await.unwrap();
        let _ = next_request(&mut stream).await;
    });
    let connection = connect(&addr).await;
    let error = ask(&connection, "1", 5000).await.unwrap_err();
    assert!(matches!(error, ClientError::Malformed { .. }), "{error}");
    let error = ask(&connection, "2", 5000).await.unwrap_err();
    assert!(matches!(error, ClientError::Disconnected { .. }), "{error}");
}

#[tokio::test]
async fn versions_fall_back_and_unknown_apis_are_refused() {
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        // An older peer: our ApiVersions version is too new for it.
        let (header, _) = next_request(&mut stream).await.unwrap();
        assert_eq!(header.api_version, ApiKey::ApiVersions.valid_versions().max);
        let refusal = ApiVersionsResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code())
            .with_api_keys(vec![api_versions_response::ApiVersion::default()
                .with_api_key(ApiKey::ApiVersions as i16)
                .with_min_version(0)
                .with_max_version(2)]);
        respond(
            &mut stream,
            ApiKey::ApiVersions,
            0,
            header.correlation_id,
            &refusal,
        )
        .await;
        let (header, _) = next_request(&mut stream).await.unwrap();
        assert_eq!(header.api_version, 2);
        let table = crate::protocol::ApiVersionTable::new([&[(ApiKey::ApiVersions, 0, 2)][..]]);
        let response = ApiVersionsResponse::default().with_api_keys(table.to_response_keys());
        respond(
            &mut stream,
            ApiKey::ApiVersions,
            2,
            header.correlation_id,
            &response,
        )
        .await;
        let _ = next_request(&mut stream).await;
    });
    let connection = connect(&addr).await;
    assert_eq!(connection.version_for(ApiKey::ApiVersions), Ok(2));
    let error = ask(&connection, "1", 5000).await.unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::UnsupportedApi {
                api: ApiKey::FindCoordinator,
                ..
            }
        ),
        "{error}"
    );
}

async fn start_node(dir: &std::path::Path, port: u16) -> Node {
    crate::server::testing::start_node(dir, port, "").await
}

fn one_node(port: u16) -> NodeClients {
    NodeClients::new(
        Arc::new(move |id| (id == 1).then(|| ("localhost".to_string(), port))),
        ClientOptions::default(),
    )
}

#[tokio::test]
async fn a_hanging_connect_does_not_hold_up_a_sender_with_an_earlier_deadline() {
    // A peer that accepts and never answers: a connect (TCP + ApiVersions) to it
    // lasts until its deadline, as one to a vanished host does.
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let port = addr.rsplit(':').next().unwrap().parse().unwrap();
    let clients = Arc::new(one_node(port));
    let slow = {
        let clients = clients.clone();
        tokio::spawn(async move {
            clients
                .send(1, &ApiVersionsRequest::default(), Duration::from_secs(10))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let error = clients
        .send(
            1,
            &ApiVersionsRequest::default(),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(error.is_retriable(), "{error}");
    assert!(
        elapsed < Duration::from_secs(2),
        "waited {elapsed:?} for another connect"
    );
    slow.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_requests_to_a_real_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), 0).await;
    let clients = Arc::new(one_node(node.client_addr.unwrap().port()));
    let cluster_id = node.broker().image().cluster_id.clone();
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let clients = clients.clone();
            tokio::spawn(async move {
                let timeout = Duration::from_secs(10);
                if i % 2 == 0 {
                    let r = clients
                        .send(1, &DescribeClusterRequest::default(), timeout)
                        .await?;
                    Ok::<_, ClientError>(r.cluster_id.to_string())
                } else {
                    let r = clients
                        .send(1, &MetadataRequest::default(), timeout)
                        .await?;
                    Ok(r.cluster_id.map(|c| c.to_string()).unwrap_or_default())
                }
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), cluster_id);
    }
    let error = clients
        .send(9, &MetadataRequest::default(), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(error, ClientError::UnknownNode(9));
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_once_the_node_comes_up() {
    let (listener, addr) = bind().await;
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let clients = one_node(port);
    let timeout = Duration::from_secs(10);
    let started = Instant::now();
    let error = clients
        .send(1, &DescribeClusterRequest::default(), timeout)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Connect { .. }),
        "{addr}: {error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "fails promptly");

    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), port).await;
    let answer = clients
        .send(1, &DescribeClusterRequest::default(), timeout)
        .await
        .unwrap();
    assert_eq!(answer.controller_id.0, 1);
    node.stop().await.unwrap();
}

#[tokio::test]
async fn a_dropped_connection_is_reopened() {
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        let (mut first, _) = listener.accept().await.unwrap();
        serve_versions(&mut first, &[(ApiKey::FindCoordinator, 0, 3)]).await;
        next_request(&mut first).await.unwrap();
        drop(first);
        let (mut second, _) = listener.accept().await.unwrap();
        serve_versions(&mut second, &[(ApiKey::FindCoordinator, 0, 3)]).await;
        let (header, _) = next_request(&mut second).await.unwrap();
        let response = FindCoordinatorResponse::default().with_node_id(BrokerId(5));
        respond(
            &mut second,
            ApiKey::FindCoordinator,
            3,
            header.correlation_id,
            &response,
        )
        .await;
        let _ = next_request(&mut second).await;
    });
    let (host, port) = addr.rsplit_once(':').unwrap();
    let (host, port) = (host.to_string(), port.parse().unwrap());
    let clients = NodeClients::new(
        Arc::new(move |_| Some((host.clone(), port))),
        ClientOptions::default(),
    );
    let timeout = Duration::from_secs(10);
    let error = clients
        .send(5, &find_coordinator("5"), timeout)
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Disconnected { .. }), "{error}");
    let answer = clients
        .send(5, &find_coordinator("5"), timeout)
        .await
        .unwrap();
    assert_eq!(answer.node_id.0, 5);
}

/// A controller that answers every heartbeat with `error_code`; counts them.
async fn fake_voter(error_code: i16) -> (String, Arc<AtomicUsize>) {
    let (listener, addr) = bind().await;
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                serve_versions(&mut stream, &[(ApiKey::BrokerHeartbeat, 0, 1)]).await;
                while let Some((header, _)) = next_request(&mut stream).await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let response = BrokerHeartbeatResponse::default().with_error_code(error_code);
                    respond(
                        &mut stream,
                        ApiKey::BrokerHeartbeat,
                        header.api_version,
                        header.correlation_id,
                        &response,
                    )
                    .await;
                }
            });
        }
    });
    (addr, answered)
}

fn voter(id: i32, addr: &str) -> (i32, String, u16) {
    let (host, port) = addr.rsplit_once(':').unwrap();
    (id, host.to_string(), port.parse().unwrap())
}

#[tokio::test]
async fn controller_channel_follows_the_leader() {
    let (standby, standby_hits) = fake_voter(ResponseError::NotController.code()).await;
    let (active, active_hits) = fake_voter(0).await;
    let (leader_tx, leader) = watch::channel(Some(1));
    let channel = ControllerChannel::new(
        &[voter(1, &standby), voter(2, &active)],
        leader,
        ClientOptions::default(),
    );
    let switch = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        leader_tx.send(Some(2)).unwrap();
        leader_tx
    });
    let response = channel
        .send(&BrokerHeartbeatRequest::default(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(response.error_code, 0);
    assert!(standby_hits.load(Ordering::SeqCst) >= 1);
    assert_eq!(active_hits.load(Ordering::SeqCst), 1);

    // With the leader unknown, the voters are tried in turn.
    let leader_tx = switch.await.unwrap();
    leader_tx.send(None).unwrap();
    let response = channel
        .send(&BrokerHeartbeatRequest::default(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(response.error_code, 0);
    assert_eq!(active_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn controller_channel_gives_up_at_the_deadline() {
    let (standby, _) = fake_voter(ResponseError::NotController.code()).await;
    // A port with nothing listening.
    let (listener, closed) = bind().await;
    drop(listener);
    let (_leader_tx, leader) = watch::channel(None);
    let channel = ControllerChannel::new(
        &[voter(1, &standby), voter(2, &closed)],
        leader,
        ClientOptions::default(),
    );
    let started = Instant::now();
    let error = channel
        .send(
            &BrokerHeartbeatRequest::default(),
            Duration::from_millis(700),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::NoController(_)), "{error}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}
