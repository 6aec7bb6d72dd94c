//! DescribeLogDirs: every log dir of this broker with the size of each partition it
//! holds, as `kafka-log-dirs.sh --describe` and AdminClient's describeLogDirs show them,
//! and from v4 the total and usable bytes of the volume. The admin API sums these sizes
//! for a removal's bytes remaining.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::server::BrokerState;
use crate::storage::HostedLog;

/// v0 is below Kafka 4.0's minimum (KIP-896); v5 is not needed by any client here.
pub const VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::DescribeLogDirs, 1, 4)];

/// Unknown total or usable bytes, as Kafka answers.
const UNKNOWN_BYTES: i64 = -1;

pub async fn handle(
    state: &BrokerState,
    version: i16,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // None: every partition. A topic may be named twice; its partitions add up.
    let wanted = request.topics.map(|topics| {
        let mut wanted: HashMap<String, HashSet<i32>> = HashMap::new();
        for t in topics {
            wanted
                .entry(t.topic.0.to_string())
                .or_default()
                .extend(t.partitions);
        }
        wanted
    });
    let selected = |h: &HostedLog| {
        wanted.as_ref().is_none_or(|w| {
            w.get(&h.tp.topic)
                .is_some_and(|partitions| partitions.contains(&h.tp.partition))
        })
    };
    let hosted: Vec<HostedLog> = state.logs.hosted().into_iter().filter(selected).collect();
    let results = state
        .config
        .log_dirs
        .iter()
        .map(|dir| {
            let mut topics: BTreeMap<&str, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
            for h in hosted.iter().filter(|h| h.log_dir == *dir) {
                topics.entry(&h.tp.topic).or_default().push(
                    DescribeLogDirsPartition::default()
                        .with_partition_index(h.tp.partition)
                        .with_partition_size(h.log.size_bytes() as i64)
                        // Kafka's lag of a current replica: its high watermark past its end.
                        .with_offset_lag(0)
                        .with_is_future_key(false),
                );
            }
            let topics = topics
                .into_iter()
                .map(|(name, mut partitions)| {
                    partitions.sort_by_key(|p| p.partition_index);
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.to_string())))
                        .with_partitions(partitions)
                })
                .collect();
            let result = DescribeLogDirsResult::default()
                .with_log_dir(StrBytes::from_string(dir.display().to_string()))
                .with_topics(topics);
            if version >= 4 {
                let (total, usable) = volume_bytes(dir).unwrap_or((UNKNOWN_BYTES, UNKNOWN_BYTES));
                result.with_total_bytes(total).with_usable_bytes(usable)
            } else {
                result
            }
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}

/// The total and the available bytes of the file system holding `dir`.
fn volume_bytes(dir: &Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stats` is written by statvfs
    // before it is read, only when the call succeeds.
    let stats = unsafe {
        if libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return None;
        }
        stats.assume_init()
    };
    let block = stats.f_frsize as i64;
    Some((stats.f_blocks as i64 * block, stats.f_bavail as i64 * block))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;

    use super::*;
    use crate::server::testing::broker_state;
    use crate::storage::batch::testutil::simple;
    use crate::storage::TopicPartition;

    fn sizes(answer: &DescribeLogDirsResponse) -> Vec<(String, i32, i64)> {
        answer
            .results
            .iter()
            .flat_map(|r| &r.topics)
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index, p.partition_size))
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn each_partition_is_listed_under_its_log_dir_with_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let state = broker_state(dir.path());
        let config = crate::storage::LogConfig::from_broker(&state.config);
        let id = uuid::Uuid::from_u128(1);
        for p in 0..2 {
            let log = state
                .logs
                .get_or_create(&TopicPartition::new("t", p), id, config.clone())
                .unwrap();
            log.append(simple(p as usize + 1, 0), 0, 0).unwrap();
        }
        let one = state
            .logs
            .get(&TopicPartition::new("t", 1))
            .unwrap()
            .size_bytes() as i64;
        let zero = state
            .logs
            .get(&TopicPartition::new("t", 0))
            .unwrap()
            .size_bytes() as i64;
        assert!(zero > 0 && one > zero);

        let none = handle(&state, 4, DescribeLogDirsRequest::default()).await;
        assert_eq!(sizes(&none), [], "an empty topic list asks for nothing");
        let everything = DescribeLogDirsRequest::default().with_topics(None);
        let all = handle(&state, 4, everything).await;
        assert_eq!(all.results.len(), 1);
        assert_eq!(
            all.results[0].log_dir.as_str(),
            state.config.log_dirs[0].display().to_string()
        );
        assert!(all.results[0].total_bytes > 0);
        assert!((0..=all.results[0].total_bytes).contains(&all.results[0].usable_bytes));
        assert_eq!(sizes(&all), [("t".into(), 0, zero), ("t".into(), 1, one)]);

        let some = DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![1, 7]),
            DescribableLogDirTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("missing")))
                .with_partitions(vec![0]),
        ]));
        let answer = handle(&state, 1, some).await;
        assert_eq!(sizes(&answer), [("t".into(), 1, one)]);
        assert_eq!(answer.results[0].total_bytes, UNKNOWN_BYTES, "not in v1");
    }
}
