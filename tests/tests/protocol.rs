//! Raw protocol checks against the real broker binary, with typed frames from `kafka-protocol`.

use anyhow::Result;
use e2e::ops::{api_versions, assert_same, create_topic, fetch, produce, records};
use e2e::Broker;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::records::Compression;

#[test]
fn api_versions_lists_the_core_apis() -> Result<()> {
    let broker = Broker::start()?;
    let mut conn = broker.connect()?;
    let v = api_versions(&mut conn)?;
    for key in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::FindCoordinator,
        ApiKey::JoinGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::SyncGroup,
        ApiKey::ApiVersions,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
    ] {
        let (lo, hi) = v
            .get(&(key as i16))
            .copied()
            .unwrap_or_else(|| panic!("{key:?} not advertised"));
        assert!(lo <= hi, "{key:?}: v{lo}..v{hi}");
    }
    // ApiVersions itself must cover v0..v3 so that every client can bootstrap
    assert_eq!(v[&(ApiKey::ApiVersions as i16)].0, 0);
    assert!(v[&(ApiKey::ApiVersions as i16)].1 >= 3);
    // the same connection keeps working
    let again = api_versions(&mut conn)?;
    assert_eq!(again, v);
    Ok(())
}

#[test]
fn produce_then_fetch_round_trip_survives_kill9() -> Result<()> {
    let mut broker = Broker::start()?;
    let mut conn = broker.connect()?;
    let v = api_versions(&mut conn)?;
    create_topic(&mut conn, &v, "rs-roundtrip", 2, 1)?;

    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - 60_000;
    let first = records(5, ts);
    assert_eq!(
        produce(&mut conn, &v, "rs-roundtrip", 1, &first, Compression::None)?,
        0
    );
    let second = records(7, ts + 100);
    assert_eq!(
        produce(&mut conn, &v, "rs-roundtrip", 1, &second, Compression::Zstd)?,
        5
    );

    let (hw, got) = fetch(&mut conn, &v, "rs-roundtrip", 1, 0)?;
    assert_eq!(hw, 12);
    assert_same(&first, &got[..5.min(got.len())], 0);
    assert_same(&second, &got[5..], 5);
    // partition 0 is untouched
    let (hw0, got0) = fetch(&mut conn, &v, "rs-roundtrip", 0, 0)?;
    assert_eq!((hw0, got0.len()), (0, 0));
    // fetch from the middle of the second batch: the batch comes back whole, the client skips
    let (_, mid) = fetch(&mut conn, &v, "rs-roundtrip", 1, 8)?;
    assert!(
        mid.iter().any(|r| r.offset == 8),
        "offset 8 not in the fetch from 8"
    );

    broker.restart(true)?;
    let mut conn = broker.connect()?;
    let v = api_versions(&mut conn)?;
    let (hw, got) = fetch(&mut conn, &v, "rs-roundtrip", 1, 0)?;
    assert_eq!(hw, 12, "high watermark after kill -9");
    assert_same(&first, &got[..5.min(got.len())], 0);
    assert_same(&second, &got[5..], 5);
    Ok(())
}
