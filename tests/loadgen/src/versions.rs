//! API version negotiation: the highest version both sides support.

use std::collections::HashMap;

use anyhow::{bail, Result};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

#[derive(Debug, Clone, Default)]
pub struct Versions {
    ranges: HashMap<i16, (i16, i16)>,
}

impl Versions {
    pub fn from_response(resp: &ApiVersionsResponse) -> Self {
        Self {
            ranges: resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect(),
        }
    }

    #[cfg(test)]
    pub fn from_ranges(r: &[(ApiKey, i16, i16)]) -> Self {
        Self {
            ranges: r.iter().map(|&(k, lo, hi)| (k as i16, (lo, hi))).collect(),
        }
    }

    /// Highest version in both `ours_min..=ours_max` and the broker's range.
    pub fn pick(&self, api: ApiKey, ours_min: i16, ours_max: i16) -> Result<i16> {
        let Some(&(lo, hi)) = self.ranges.get(&(api as i16)) else {
            bail!("broker does not support {api:?}");
        };
        let v = hi.min(ours_max);
        if v < lo.max(ours_min) {
            bail!(
                "no common {api:?} version: broker supports {lo}..={hi}, loadgen {ours_min}..={ours_max}"
            );
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_highest_common() {
        let v = Versions::from_ranges(&[(ApiKey::Produce, 3, 11), (ApiKey::Fetch, 4, 17)]);
        assert_eq!(v.pick(ApiKey::Produce, 3, 13).unwrap(), 11);
        assert_eq!(v.pick(ApiKey::Fetch, 4, 12).unwrap(), 12);
        assert!(v.pick(ApiKey::Fetch, 18, 18).is_err());
        assert!(v.pick(ApiKey::Metadata, 0, 12).is_err());
    }
}
