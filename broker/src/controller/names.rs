//! Topic name rules and the internal topics the broker creates itself.

use kafka_protocol::error::ResponseError;

use super::error::ApiError;

/// Kafka's limit, so `<topic>-<partition>` directory names stay under 255 bytes.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Topics the broker creates on demand and users may not delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalTopic {
    ConsumerOffsets,
}

impl InternalTopic {
    pub fn name(self) -> &'static str {
        match self {
            InternalTopic::ConsumerOffsets => "__consumer_offsets",
        }
    }

    /// True for the internal topics Kafka defines, including those not created here yet.
    pub fn is_internal(name: &str) -> bool {
        name == InternalTopic::ConsumerOffsets.name() || name == "__transaction_state"
    }
}

/// Checks Kafka's topic name rules: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let invalid = |why: String| ApiError::new(ResponseError::InvalidTopicException, why);
    if name.is_empty() {
        return Err(invalid("Topic name is illegal, it can't be empty".into()));
    }
    if name == "." || name == ".." {
        return Err(invalid(format!(
            "Topic name cannot be \".\" or \"..\": `{name}`"
        )));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(invalid(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid(format!(
            "Topic name `{name}` is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// `.` and `_` collide in metric names, so Kafka refuses topics differing only by them.
pub fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_and_illegal_names() {
        for ok in ["a", "orders-v1.eu_west", &"x".repeat(249), "..."] {
            assert_eq!(validate_topic_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "tøpic", &"x".repeat(250)] {
            let err = validate_topic_name(bad).unwrap_err();
            assert_eq!(err.error, ResponseError::InvalidTopicException, "{bad}");
        }
    }

    #[test]
    fn dots_and_underscores_collide() {
        assert_eq!(collision_key("a.b"), collision_key("a_b"));
        assert_ne!(collision_key("a.b"), collision_key("ab"));
    }
}
