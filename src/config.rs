//! Run-time configuration of the shardbuddy process.
