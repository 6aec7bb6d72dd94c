//! Harness shared by the end-to-end tests: starts the real broker binary.
