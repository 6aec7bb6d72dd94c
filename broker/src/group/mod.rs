//! Group coordinator for the classic consumer group protocol; offsets kept in `__consumer_offsets`.
