//! Counters the request path and the executor feed as they work. They live
//! for the whole process (one set per process, like its log), so the code
//! that feeds them needs no handle: a call here is all a hook is.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::placement::{Action, Ddl};

type Labels = [(&'static str, &'static str); 2];
type Timings = Family<Labels, Histogram, fn() -> Histogram>;

/// 1 ms … about 65 s: a statement answered at once up to a long DDL.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

struct Hooks {
    requests: Timings,
    steps: Timings,
}

static HOOKS: LazyLock<Hooks> = LazyLock::new(|| Hooks {
    requests: Family::new_with_constructor(latency_buckets),
    steps: Family::new_with_constructor(latency_buckets),
});

/// A request to the Buddy endpoint was answered: by `handler` (`none`
/// when nobody claimed it) with `outcome`.
pub fn request_served(handler: &'static str, outcome: &'static str, took: Duration) {
    HOOKS
        .requests
        .get_or_create(&[("handler", handler), ("outcome", outcome)])
        .observe(took.as_secs_f64());
}

/// The executor ran one queue step.
pub fn step_ran(action: &Action, ok: bool, took: Duration) {
    let outcome = if ok { "ok" } else { "failed" };
    HOOKS
        .steps
        .get_or_create(&[("kind", step_kind(action)), ("outcome", outcome)])
        .observe(took.as_secs_f64());
}

/// A label for what a step does.
fn step_kind(action: &Action) -> &'static str {
    match action {
        Action::Ddl(ddl) => match ddl {
            Ddl::CreateShard { .. } => "create_shard",
            Ddl::DropShard { .. } => "drop_shard",
            Ddl::CreateWrapper { .. } => "create_wrapper",
            Ddl::DropWrapper { .. } => "drop_wrapper",
            Ddl::SwapWrapper { .. } => "swap_wrapper",
            Ddl::CreateCluster { .. } => "create_cluster",
            Ddl::JoinCluster { .. } | Ddl::JoinTempCluster { .. } => "join_cluster",
            Ddl::AlterClusterAdd { .. } => "alter_cluster_add",
            Ddl::AlterClusterDrop { .. } => "alter_cluster_drop",
            Ddl::DeleteCluster { .. } => "delete_cluster",
            Ddl::Bootstrap { .. } => "bootstrap",
            Ddl::Other(_) => "other",
        },
        Action::VerifyCopy { .. } => "verify_copy",
        Action::ExpectAbsent { .. } => "expect_absent",
        Action::Noop => "noop",
    }
}

/// Adds the process-lifetime metrics to `registry`.
pub(super) fn register(registry: &mut Registry) {
    registry.register(
        "shardbuddy_request_duration_seconds",
        "Requests from searchd to the helper endpoint, by claiming handler and outcome",
        HOOKS.requests.clone(),
    );
    registry.register(
        "shardbuddy_queue_step_duration_seconds",
        "Queue steps this node's executor ran, by step kind and outcome",
        HOOKS.steps.clone(),
    );
}
