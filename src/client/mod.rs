//! The daemon client: the only way shardbuddy touches a node. It sends SQL to
//! `POST <base>/sql?mode=raw` (spec §4) and decodes the reply into typed
//! result sets or a typed error.
