//! The table of API versions this broker implements, which ApiVersions
//! advertises and the dispatcher enforces: one source for both.

use std::collections::BTreeMap;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiKey;

#[derive(Debug, Clone, Default)]
pub struct ApiVersionTable {
    ranges: BTreeMap<i16, (ApiKey, i16, i16)>,
}

impl ApiVersionTable {
    /// Builds the table from `(api, min, max)` lists, each clipped to what the
    /// codec can decode, so we never advertise a version we cannot parse.
    pub fn new<'a>(lists: impl IntoIterator<Item = &'a [(ApiKey, i16, i16)]>) -> Self {
        let mut ranges = BTreeMap::new();
        for &(api, min, max) in lists.into_iter().flatten() {
            let codec = api.valid_versions();
            let (min, max) = (min.max(codec.min), max.min(codec.max));
            if min <= max {
                ranges.insert(api as i16, (api, min, max));
            }
        }
        ApiVersionTable { ranges }
    }

    /// The API if `key` is implemented at `version`.
    pub fn supported(&self, key: i16, version: i16) -> Option<ApiKey> {
        let &(api, min, max) = self.ranges.get(&key)?;
        (min..=max).contains(&version).then_some(api)
    }

    /// The (min, max) versions of `key`, if implemented.
    pub fn range(&self, key: i16) -> Option<(i16, i16)> {
        self.ranges.get(&key).map(|&(_, min, max)| (min, max))
    }

    /// Whether the key is implemented at any version.
    pub fn knows(&self, key: i16) -> bool {
        self.ranges.contains_key(&key)
    }

    pub fn to_response_keys(&self) -> Vec<ApiVersion> {
        self.ranges
            .values()
            .map(|&(api, min, max)| {
                ApiVersion::default()
                    .with_api_key(api as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_clipped_to_the_codec() {
        let table = ApiVersionTable::new([&[(ApiKey::Produce, 0, 99), (ApiKey::Fetch, 4, 12)][..]]);
        let produce = ApiKey::Produce.valid_versions();
        assert_eq!(table.supported(0, produce.max), Some(ApiKey::Produce));
        assert_eq!(table.supported(0, produce.max + 1), None);
        assert_eq!(table.supported(0, produce.min - 1), None);
        assert_eq!(table.supported(1, 13), None);
        assert!(table.knows(1) && !table.knows(2));
        assert_eq!(table.range(1), Some((4, 12)));
        assert_eq!(table.range(2), None);
        assert_eq!(table.to_response_keys().len(), 2);
    }
}
