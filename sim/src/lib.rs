//! manticore-sim: a Manticore-compatible node simulator, the test bed for shardbuddy.
