//! Placement and rebalance planning: pure functions, no I/O, no clock.
