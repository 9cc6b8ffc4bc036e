//! The Prometheus (OpenMetrics text) exposition of a [`ClusterView`].
//! Gauges are made afresh for every scrape, so a label set that is gone from
//! the cluster (a dropped table, a finished rebalance) is gone from the page.

use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::view::ClusterView;

type Labels = Vec<(&'static str, String)>;
type IntGauges = Family<Labels, Gauge>;
type FloatGauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// Statuses every table is counted under, so an alert on `broken` has a
/// series (at 0) before the first table breaks.
const RF_STATUSES: [&str; 3] = ["ok", "degraded", "broken"];

fn int(registry: &mut Registry, name: &str, help: &str) -> IntGauges {
    let family = IntGauges::default();
    registry.register(name, help, family.clone());
    family
}

fn float(registry: &mut Registry, name: &str, help: &str) -> FloatGauges {
    let family = FloatGauges::default();
    registry.register(name, help, family.clone());
    family
}

fn set(family: &IntGauges, labels: Labels, value: u64) {
    family
        .get_or_create(&labels)
        .set(i64::try_from(value).unwrap_or(i64::MAX));
}

/// Appends the view's metrics to `out`. `view` is `None` when it could not
/// be read (`shardbuddy_view_up 0` says so).
pub fn render(view: Option<&ClusterView>, out: &mut String) -> std::fmt::Result {
    let mut r = Registry::default();
    let up = int(
        &mut r,
        "shardbuddy_view_up",
        "1 when this scrape could read the sharding metadata and the node's view of the cluster",
    );
    set(&up, vec![], u64::from(view.is_some()));
    if let Some(view) = view {
        add(&mut r, view);
    }
    encode_registry(out, &r)
}

fn add(r: &mut Registry, view: &ClusterView) {
    let b = u64::from;
    set(
        &int(
            r,
            "shardbuddy_metadata_ready",
            "1 when the sharding metadata exists on this node",
        ),
        vec![],
        b(view.ready),
    );
    set(
        &int(
            r,
            "shardbuddy_is_master",
            "1 when this node holds the master lease",
        ),
        vec![],
        b(view.is_master),
    );
    set(
        &int(
            r,
            "shardbuddy_master_epoch",
            "Epoch of the master lease (grows with every takeover)",
        ),
        vec![],
        view.epoch,
    );
    let master = int(
        r,
        "shardbuddy_master_info",
        "The lease holder as this node reads it",
    );
    if let Some(node) = &view.master {
        set(&master, vec![("node", node.clone())], 1);
    }
    let nodes = int(
        r,
        "shardbuddy_node_up",
        "Members of the cluster: 1 when this node sees them in the cluster's view",
    );
    for n in &view.nodes {
        set(&nodes, vec![("node", n.node.clone())], b(n.up));
    }
    let queue = int(
        r,
        "shardbuddy_queue_rows",
        "Queue rows of the operations on record, by node and status",
    );
    for q in &view.queue {
        set(
            &queue,
            vec![("node", q.node.clone()), ("status", q.status.to_string())],
            q.rows,
        );
    }
    let oldest = float(
        r,
        "shardbuddy_queue_oldest_pending_seconds",
        "Age of the oldest queue row of a running operation that is not processed yet, leaving out rows that wait for a lost node (0: none)",
    );
    oldest
        .get_or_create(&vec![])
        .set(view.oldest_pending_s.unwrap_or(0.0));
    let operations = int(
        r,
        "shardbuddy_operations",
        "Operation groups on record, by kind and state",
    );
    for o in &view.operations {
        set(
            &operations,
            vec![("kind", o.kind.clone()), ("state", o.state.clone())],
            o.count,
        );
    }
    let cleaned = int(
        r,
        "shardbuddy_cleanup_removed_objects",
        "Orphans (objects on a node no metadata accounts for) the master's cleanup removed, in the cleanup operations on record",
    );
    set(&cleaned, vec![], view.cleaned);
    let age = float(
        r,
        "shardbuddy_operation_age_seconds",
        "Running operations: seconds since their master started them",
    );
    let steps = int(
        r,
        "shardbuddy_operation_steps",
        "Running operations: queue steps by progress (done, failed, deferred until a lost node returns, total)",
    );
    for op in &view.running {
        let labels = || {
            vec![
                ("group", op.group.clone()),
                ("kind", op.kind.clone()),
                ("table", op.table.clone()),
            ]
        };
        age.get_or_create(&labels()).set(op.age_s);
        for (progress, n) in [
            ("done", op.steps_done),
            ("failed", op.steps_failed),
            ("deferred", op.steps_deferred),
            ("total", op.steps_total),
        ] {
            let mut labels = labels();
            labels.push(("progress", progress.to_string()));
            set(&steps, labels, n);
        }
    }
    let tables = int(r, "shardbuddy_tables", "Sharded tables by rf_status");
    for status in RF_STATUSES {
        let n = view.tables.iter().filter(|t| t.rf_status == status).count();
        set(&tables, vec![("rf_status", status.to_string())], n as u64);
    }
    let shards = int(
        r,
        "shardbuddy_table_shards",
        "Shards of each sharded table by rf_status",
    );
    for t in &view.tables {
        for status in RF_STATUSES {
            let n = t.shards.iter().filter(|s| s.rf_status == status).count();
            set(
                &shards,
                vec![("table", t.name.clone()), ("rf_status", status.to_string())],
                n as u64,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::view::{NodeLiveness, QueueCount};

    #[test]
    fn a_view_is_rendered_with_its_labels() {
        let view = ClusterView {
            me: "a".into(),
            ready: true,
            master: Some("a".into()),
            epoch: 3,
            is_master: true,
            nodes: vec![
                NodeLiveness {
                    node: "a".into(),
                    up: true,
                },
                NodeLiveness {
                    node: "b".into(),
                    up: false,
                },
            ],
            queue: vec![QueueCount {
                node: "b".into(),
                status: "created",
                rows: 4,
            }],
            oldest_pending_s: Some(1.5),
            cleaned: 2,
            ..ClusterView::default()
        };
        let mut out = String::new();
        render(Some(&view), &mut out).unwrap();
        for line in [
            "shardbuddy_view_up 1",
            "shardbuddy_master_epoch 3",
            "shardbuddy_node_up{node=\"b\"} 0",
            "shardbuddy_queue_rows{node=\"b\",status=\"created\"} 4",
            "shardbuddy_queue_oldest_pending_seconds 1.5",
            "shardbuddy_tables{rf_status=\"broken\"} 0",
            "shardbuddy_cleanup_removed_objects 2",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing in\n{out}");
        }
        let mut down = String::new();
        render(None, &mut down).unwrap();
        assert!(down.contains("shardbuddy_view_up 0"), "{down}");
        assert!(!down.contains("shardbuddy_is_master"), "{down}");
    }
}
