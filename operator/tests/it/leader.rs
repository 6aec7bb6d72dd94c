//! Leader election against the mocked API server: one holder at a time, renewals by the
//! holder, takeover only after expiry.

use crate::support::FakeApi;
use operator::leader::Elector;
use serde_json::json;

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/kafka-operator-leader";

#[tokio::test]
async fn one_holder_until_the_lease_expires() {
    let (client, api) = FakeApi::start();
    let a = Elector::new(client.clone(), "ops", "kafka-operator-leader", "a");
    let b = Elector::new(api.client(), "ops", "kafka-operator-leader", "b");

    assert!(a.try_acquire().await.unwrap(), "a free lease is taken");
    assert_eq!(api.get(LEASE).unwrap()["spec"]["holderIdentity"], "a");
    assert!(!b.try_acquire().await.unwrap(), "a held lease is not");
    assert!(a.try_acquire().await.unwrap(), "the holder renews");
    assert_eq!(api.get(LEASE).unwrap()["spec"]["leaseTransitions"], 1);

    let mut lease = api.get(LEASE).unwrap();
    lease["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    api.put(LEASE, lease);
    assert!(
        b.try_acquire().await.unwrap(),
        "an expired lease is taken over"
    );
    assert_eq!(api.get(LEASE).unwrap()["spec"]["holderIdentity"], "b");
    assert_eq!(api.get(LEASE).unwrap()["spec"]["leaseTransitions"], 2);
    assert!(!a.try_acquire().await.unwrap());
    let methods: Vec<String> = api.calls().iter().map(|c| c.method.clone()).collect();
    assert_eq!(
        methods.iter().filter(|m| *m == "POST").count(),
        1,
        "created once: {methods:?}"
    );

    b.release().await;
    assert!(api.get(LEASE).unwrap()["spec"]
        .get("holderIdentity")
        .is_none());
    assert!(
        a.try_acquire().await.unwrap(),
        "a released lease is free at once"
    );
    b.release().await;
    assert_eq!(
        api.get(LEASE).unwrap()["spec"]["holderIdentity"],
        "a",
        "only the holder releases"
    );
}
