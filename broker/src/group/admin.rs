//! DescribeGroups, ListGroups and DeleteGroups.

use super::coordinator::GroupCoordinator;
use super::error::GroupError;
use super::state::GroupState;
use super::types::{GroupDescription, GroupListing};

/// Classic groups are the only type this coordinator has (ListGroups v5 types).
pub const CLASSIC_GROUP_TYPE: &str = "classic";

impl GroupCoordinator {
    /// GROUP_ID_NOT_FOUND for a group that does not exist; older DescribeGroups
    /// versions show that as a Dead group, which is the handler's business.
    pub fn describe_groups(
        &self,
        group_ids: &[String],
    ) -> Vec<Result<GroupDescription, GroupError>> {
        let mut inner = self.inner.lock();
        group_ids
            .iter()
            .map(|id| {
                inner.check_serves(self.partition_of(id))?;
                let group = inner
                    .groups
                    .get_mut(id)
                    .ok_or(GroupError::GroupIdNotFound)?;
                self.expire_overdue_sessions(group);
                Ok(group.describe())
            })
            .collect()
    }

    /// Groups whose state and type match the filters (empty filter = all), compared
    /// case-insensitively as Kafka does.
    pub fn list_groups(
        &self,
        states: &[String],
        types: &[String],
    ) -> Result<Vec<GroupListing>, GroupError> {
        let inner = self.inner.lock();
        inner.check_active()?;
        let matches = |filter: &[String], value: &str| {
            filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
        };
        if !matches(types, CLASSIC_GROUP_TYPE) {
            return Ok(Vec::new());
        }
        let mut groups: Vec<GroupListing> = inner
            .groups
            .values()
            .filter(|g| inner.serves(self.partition_of(&g.id)) && matches(states, g.state.name()))
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
            })
            .collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(groups)
    }

    /// Deletes Empty groups with all their offsets (tombstones in `__consumer_offsets`).
    pub fn delete_groups(&self, group_ids: &[String]) -> Vec<Result<(), GroupError>> {
        let mut inner = self.inner.lock();
        group_ids
            .iter()
            .map(|id| {
                inner.check_serves(self.partition_of(id))?;
                let group = inner
                    .groups
                    .get_mut(id)
                    .ok_or(GroupError::GroupIdNotFound)?;
                self.expire_overdue_sessions(group);
                match group.state {
                    GroupState::Empty => {}
                    GroupState::Dead => return Err(GroupError::GroupIdNotFound),
                    _ => return Err(GroupError::NonEmptyGroup),
                }
                let offsets: Vec<(String, i32)> = group.offsets.keys().cloned().collect();
                self.write_tombstones(id, &offsets, true)?;
                if let Some(mut group) = inner.groups.remove(id) {
                    group.transition(GroupState::Dead, self.now_ms());
                }
                tracing::info!(group = %id, "group deleted");
                Ok(())
            })
            .collect()
    }
}
