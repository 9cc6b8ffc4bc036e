//! `manticore-sim -c <config> [--nodetach]`: runs one simulated searchd node.
fn main() {}
