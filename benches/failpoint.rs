//! What a failpoint costs where it is compiled in: one check while no
//! failpoint is set (the production case), and while another one is set.
//!
//! Run with `cargo bench --bench failpoint`. `baseline_empty_async_fn` polls
//! an async function that does nothing, so the difference is the check.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, Criterion};
use shardbuddy::failpoint::{self, EXECUTOR_BEFORE_RUN};

/// Reaches the failpoint once; it never waits unless set to delay or hang.
fn reach() -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let poll = pin!(failpoint::hit(black_box(EXECUTOR_BEFORE_RUN))).poll(&mut cx);
    matches!(poll, Poll::Ready(Ok(())))
}

/// The same poll of an async function that only returns: what any call
/// site pays without a failpoint, to subtract.
async fn nothing(_name: &'static str) -> Result<(), failpoint::Injected> {
    Ok(())
}

fn baseline() -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let poll = pin!(nothing(black_box(EXECUTOR_BEFORE_RUN))).poll(&mut cx);
    matches!(poll, Poll::Ready(Ok(())))
}

fn failpoints(c: &mut Criterion) {
    c.bench_function("failpoint/baseline_empty_async_fn", |b| b.iter(baseline));
    failpoint::configure("").expect("valid");
    c.bench_function("failpoint/none_set", |b| b.iter(reach));
    failpoint::configure("helper.received=delay(1)").expect("valid");
    c.bench_function("failpoint/another_set", |b| b.iter(reach));
    failpoint::configure("").expect("valid");
}

criterion_group!(benches, failpoints);
criterion_main!(benches);
