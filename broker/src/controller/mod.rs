//! Quorum controller: turns admin requests into metadata records and commits them.
