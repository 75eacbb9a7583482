//! Loom models of dispatcher-core's concurrent protocols live in `tests/`.
