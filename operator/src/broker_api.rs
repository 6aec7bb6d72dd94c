//! Typed client of the broker admin API, following `docs/admin-api.yaml`. The operator only
//! sees the `BrokerAdmin` trait, so reconcile tests can substitute an in-memory broker.

use std::time::Duration;

use futures::future::BoxFuture;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum BrokerApiError {
    #[error("admin API unreachable at {url}: {message}")]
    Transport { url: String, message: String },
    #[error("admin API {method} {url} returned {status}: {body}")]
    Status {
        method: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error("admin API response from {url} could not be decoded: {message}")]
    Decode { url: String, message: String },
}

pub type Result<T> = std::result::Result<T, BrokerApiError>;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub cluster_id: String,
    #[serde(default)]
    pub active_controller_id: Option<i32>,
    pub brokers: Vec<BrokerInfo>,
    pub topics: Vec<TopicInfo>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerInfo {
    pub id: i32,
    pub state: BrokerState,
    pub excluded: bool,
    pub replicas: i64,
    pub leaders: i64,
    #[serde(default)]
    pub rack: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BrokerState {
    Running,
    Fenced,
    ControlledShutdown,
    Offline,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TopicInfo {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RemovalRequest {
    pub broker_ids: Vec<i32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Removal {
    pub id: String,
    pub broker_ids: Vec<i32>,
    pub state: RemovalState,
    pub partitions_remaining: i64,
    pub bytes_remaining: i64,
    pub brokers: Vec<BrokerProgress>,
    /// Every partition that still has a replica on a leaving broker.
    #[serde(default)]
    pub partitions: Vec<PartitionProgress>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PartitionProgress {
    pub topic: String,
    pub partition: i32,
    pub state: MoveState,
    pub replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MoveState {
    Waiting,
    Moving,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RemovalState {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerProgress {
    pub broker_id: i32,
    pub partitions_remaining: i64,
    pub bytes_remaining: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QuorumView {
    pub leader_id: Option<i32>,
    pub epoch: i64,
    pub voters: Vec<VoterInfo>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VoterInfo {
    pub id: i32,
    pub caught_up: bool,
    pub lag_records: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RestartSafety {
    pub broker_id: i32,
    pub safe: bool,
    /// Partitions whose ISR would drop below min.insync.replicas without this broker.
    pub partitions_at_min_isr: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Demotion {
    pub broker_id: i32,
    pub leaders_remaining: i64,
}

/// The calls the operator makes; each one is idempotent on the broker side, which is what
/// lets the scale-down state machine repeat a step after an operator restart.
pub trait BrokerAdmin: Send + Sync {
    fn cluster(&self, base: &str) -> BoxFuture<'_, Result<ClusterView>>;
    fn exclude(&self, base: &str, broker_id: i32) -> BoxFuture<'_, Result<()>>;
    fn unexclude(&self, base: &str, broker_id: i32) -> BoxFuture<'_, Result<()>>;
    fn start_removal(
        &self,
        base: &str,
        id: &str,
        broker_ids: &[i32],
    ) -> BoxFuture<'_, Result<Removal>>;
    /// `None` when the broker knows no removal with this id.
    fn removal(&self, base: &str, id: &str) -> BoxFuture<'_, Result<Option<Removal>>>;
    fn cancel_removal(&self, base: &str, id: &str) -> BoxFuture<'_, Result<()>>;
    fn unregister(&self, base: &str, broker_id: i32) -> BoxFuture<'_, Result<()>>;
    fn quorum(&self, base: &str) -> BoxFuture<'_, Result<QuorumView>>;
    fn restart_safety(&self, base: &str, broker_id: i32) -> BoxFuture<'_, Result<RestartSafety>>;
    fn demote(&self, base: &str, broker_id: i32) -> BoxFuture<'_, Result<Demotion>>;
}

/// HTTP/1.1 implementation over hyper.
pub struct HttpBrokerAdmin {
    client: Client<HttpConnector, Full<bytes::Bytes>>,
    timeout: Duration,
}

impl Default for HttpBrokerAdmin {
    fn default() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl HttpBrokerAdmin {
    /// One request; `Ok(None)` for 404 so callers decide whether absence is an error.
    async fn call(
        &self,
        method: Method,
        url: String,
        body: Option<serde_json::Value>,
    ) -> Result<Option<Vec<u8>>> {
        let transport = |e: &dyn std::fmt::Display| BrokerApiError::Transport {
            url: url.clone(),
            message: e.to_string(),
        };
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let req = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(bytes::Bytes::from(payload)))
            .map_err(|e| transport(&e))?;
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|e| transport(&e))?
            .map_err(|e| transport(&e))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| transport(&e))?
            .to_bytes();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(BrokerApiError::Status {
                method: method.to_string(),
                url,
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(Some(bytes.to_vec()))
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: String,
        body: Option<serde_json::Value>,
    ) -> Result<Option<T>> {
        match self.call(method, url.clone(), body).await? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| BrokerApiError::Decode {
                        url,
                        message: e.to_string(),
                    })
            }
        }
    }

    async fn required<T: DeserializeOwned>(
        &self,
        method: Method,
        url: String,
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        self.json(method.clone(), url.clone(), body)
            .await?
            .ok_or(BrokerApiError::Status {
                method: method.to_string(),
                url,
                status: 404,
                body: String::new(),
            })
    }
}

impl BrokerAdmin for HttpBrokerAdmin {
    fn cluster(&self, base: &str) -> BoxFuture<'_, Result<ClusterView>> {
        let url = format!("{base}/admin/v1/cluster");
        Box::pin(self.required(Method::GET, url, None))
    }

    fn exclude(&self, base: &str, broker_id: i32) -> BoxFuture<'_, Result<()>> {
        let url = format!("{base}/admin/v1/brokers/{broker_id}/exclusion");
        Box::pin(async move { self.call(Method::PUT, url, None).await.map(drop) })
    }

    fn unexclude(&self, base: &str, broker_id: i32) -> BoxFuture<'_, Result<()>> {
        let url = format!("{base}/admin/v1/brokers/{broker_id}/exclusion");
        Box::pin(async move { self.call(Method::DELETE, url, None).await.map(drop) })
    }

    fn start_removal(
        &self,
        base: &str,
        id: &str,
        broker_ids: &[i32],
    ) -> BoxFuture<'_, Result<Removal>> {
        let url = format!("{base}/admin/v1/removals/{id}");
        let body = serde_json::to_value(RemovalRequest {
            broker_ids: broker_ids.to_vec(),
        })
        .ok();
        Box::pin(self.required(Method::PUT, url, body))
    }

    fn removal(&self, base: &str, id: &str) -> BoxFuture<'_, Result<Option<Removal>>> {
        let url = format!("{base}/admin/v1/removals/{id}");
        Box::pin(self.json(Method::GET, url, None))
    }

    fn cancel_removal(&self, base: &str, id: &str) -> BoxFuture<'_, Result<()>> {
        let url = format!("{base}/admin/v1/removals/{id}");
        Box::pin(async move { self.call(Method::DELETE, url, None).await.map(drop) })
    }

    fn unregister(&self, base: &str, broker_id: i32) -> BoxFuture<'_, Result<()>> {
        // 404 means already unregistered: the goal is reached.
        let url = format!("{base}/admin/v1/brokers/{broker_id}");
        Box::pin(async move { self.call(Method::DELETE, url, None).await.map(drop) })
    }

    fn quorum(&self, base: &str) -> BoxFuture<'_, Result<QuorumView>> {
        let url = format!("{base}/admin/v1/quorum");
        Box::pin(self.required(Method::GET, url, None))
    }

    fn restart_safety(&self, base: &str, broker_id: i32) -> BoxFuture<'_, Result<RestartSafety>> {
        let url = format!("{base}/admin/v1/brokers/{broker_id}/restart-safety");
        Box::pin(self.required(Method::GET, url, None))
    }

    fn demote(&self, base: &str, broker_id: i32) -> BoxFuture<'_, Result<Demotion>> {
        let url = format!("{base}/admin/v1/brokers/{broker_id}/demote");
        Box::pin(self.required(Method::POST, url, None))
    }
}
