//! Clients that keep a sharded table busy while a test changes the cluster:
//! a writer inserting one row at a time and a reader counting rows, each on
//! its own connection, recording what they were told.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

/// The first id the writer uses; rows loaded before have smaller ids.
pub const FIRST_WRITE_ID: u64 = 1_000_000;

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Record {
    /// Acknowledged INSERTs, in order.
    pub acknowledged: Vec<Ack>,
    /// Refused writes: when, and the error.
    pub write_errors: Vec<(Instant, String)>,
    /// Reads that failed, by message.
    pub read_errors: BTreeMap<String, usize>,
    pub reads: usize,
    /// Reads that returned fewer rows than were acknowledged before they
    /// started: (when it started, expected at least, got).
    pub short_reads: Vec<(Instant, u64, u64)>,
}

/// One acknowledged INSERT.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub id: u64,
    /// When the statement was sent: a write answered after a fault began
    /// may have been sent, and replicated, before it.
    pub sent: Instant,
    pub answered: Instant,
}

impl Record {
    /// The longest time writes were refused: from a refused write to the
    /// next acknowledged one.
    pub fn write_outage(&self) -> Duration {
        let mut longest = Duration::ZERO;
        for (failed_at, _) in &self.write_errors {
            let back = self
                .acknowledged
                .iter()
                .find(|ack| ack.answered > *failed_at)
                .map(|ack| ack.answered)
                .unwrap_or_else(Instant::now);
            let outage = self
                .write_errors
                .iter()
                .filter(|(at, _)| at <= failed_at)
                .map(|(at, _)| back.duration_since(*at))
                .max()
                .unwrap_or_default();
            longest = longest.max(outage);
        }
        longest
    }
}

/// The writes acknowledged to any of `records` that table `t` (read through
/// `c`) does not hold.
pub async fn lost_writes(c: &mut Conn, records: &[&Record]) -> Vec<u64> {
    let sql = format!(
        "SELECT id FROM t WHERE id >= {FIRST_WRITE_ID} ORDER BY id ASC LIMIT 10000000 \
         OPTION max_matches=10000000"
    );
    let stored: std::collections::BTreeSet<u64> = c
        .query::<u64, _>(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .collect();
    records
        .iter()
        .flat_map(|r| r.acknowledged.iter())
        .map(|ack| ack.id)
        .filter(|id| !stored.contains(id))
        .collect()
}

/// A writer and a reader on `table` through the MySQL port of one node.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    pub record: Arc<Mutex<Record>>,
    acked: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    /// `base` rows are in the table already.
    pub async fn start(mysql_url: &str, table: &str, base: u64) -> Self {
        Self::start_at(mysql_url, table, base, FIRST_WRITE_ID).await
    }

    /// As [`Traffic::start`], the writer's ids counting from `first_id`.
    pub async fn start_at(mysql_url: &str, table: &str, base: u64, first_id: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let record = Arc::new(Mutex::new(Record::default()));
        let acked = Arc::new(AtomicU64::new(0));
        let opts = Opts::from_url(mysql_url).expect("url");
        let writer = {
            let (stop, record, acked, table) = (
                stop.clone(),
                record.clone(),
                acked.clone(),
                table.to_string(),
            );
            let mut conn = Conn::new(opts.clone()).await.expect("writer connects");
            tokio::spawn(async move {
                let mut id = first_id;
                while !stop.load(Ordering::Relaxed) {
                    let sql = format!("INSERT INTO {table} (id, title) VALUES ({id}, 'w')");
                    let sent = Instant::now();
                    match conn.query_drop(&sql).await {
                        Ok(()) => {
                            record.lock().unwrap().acknowledged.push(Ack {
                                id,
                                sent,
                                answered: Instant::now(),
                            });
                            acked.fetch_add(1, Ordering::SeqCst);
                            id += 1;
                        }
                        Err(e) => {
                            record
                                .lock()
                                .unwrap()
                                .write_errors
                                .push((Instant::now(), e.to_string()));
                            // Another id: the refused one may still have landed.
                            id += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let reader = {
            let (stop, record, acked, table) = (
                stop.clone(),
                record.clone(),
                acked.clone(),
                table.to_string(),
            );
            let mut conn = Conn::new(opts).await.expect("reader connects");
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let before = base + acked.load(Ordering::SeqCst);
                    let asked = Instant::now();
                    let got: Result<Option<u64>, _> = conn
                        .query_first(format!("SELECT COUNT(*) FROM {table}"))
                        .await;
                    {
                        let mut r = record.lock().unwrap();
                        r.reads += 1;
                        match got {
                            Ok(Some(n)) if n < before => r.short_reads.push((asked, before, n)),
                            Ok(_) => {}
                            Err(e) => *r.read_errors.entry(e.to_string()).or_default() += 1,
                        }
                    }
                    // Yield: a connection that fails at once must not spin
                    // (nor keep the runtime from shutting down when a test
                    // fails).
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        Self {
            stop,
            record,
            acked,
            tasks: vec![writer, reader],
        }
    }

    pub fn acknowledged(&self) -> u64 {
        self.acked.load(Ordering::SeqCst)
    }

    /// Waits until `more` further writes were acknowledged.
    pub async fn wait_for_writes(&self, more: u64, timeout: Duration) {
        let target = self.acknowledged() + more;
        let deadline = Instant::now() + timeout;
        while self.acknowledged() < target {
            assert!(
                Instant::now() < deadline,
                "writes did not go on: {} acknowledged, {target} expected; {:?}",
                self.acknowledged(),
                self.record.lock().unwrap().write_errors.last()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) -> Record {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("client task");
        }
        Arc::try_unwrap(self.record)
            .expect("tasks are done")
            .into_inner()
            .unwrap()
    }
}

/// A client reading `SHOW SHARDING STATUS` of a table back to back: every
/// answer must show each shard served, whatever moves meanwhile.
pub struct StatusWatch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<WatchRecord>,
}

/// What a [`StatusWatch`] saw.
#[derive(Debug)]
pub struct WatchRecord {
    pub answers: usize,
    /// The fewest copies of one shard, `active` or `draining`, in one
    /// answer (a shard missing from an answer counts 0).
    pub fewest_serving: usize,
    /// The answer in which that was seen: (shard, node, status) rows.
    pub thinnest: Vec<(u32, String, String)>,
}

impl StatusWatch {
    pub async fn start(mysql_url: &str, table: &str, shards: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut conn = Conn::new(Opts::from_url(mysql_url).expect("url"))
            .await
            .expect("status reader connects");
        let sql = format!("SHOW SHARDING STATUS {table}");
        let task = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut record = WatchRecord {
                    answers: 0,
                    fewest_serving: usize::MAX,
                    thinnest: Vec::new(),
                };
                while !stop.load(Ordering::Relaxed) {
                    let answer: Vec<(String, u32, String, String)> = conn
                        .query_map(&sql, |row: mysql_async::Row| {
                            (
                                row.get::<String, _>(0).unwrap_or_default(),
                                row.get::<u32, _>(1).unwrap_or_default(),
                                row.get::<String, _>(2).unwrap_or_default(),
                                row.get::<String, _>(3).unwrap_or_default(),
                            )
                        })
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    record.answers += 1;
                    let fewest = (0..shards)
                        .map(|s| {
                            answer
                                .iter()
                                .filter(|(_, shard, _, status)| {
                                    *shard == s && matches!(status.as_str(), "active" | "draining")
                                })
                                .count()
                        })
                        .min()
                        .unwrap_or(0);
                    if fewest < record.fewest_serving {
                        record.fewest_serving = fewest;
                        record.thinnest = answer
                            .into_iter()
                            .map(|(_, shard, node, status)| (shard, node, status))
                            .collect();
                    }
                    tokio::task::yield_now().await;
                }
                record
            })
        };
        Self { stop, task }
    }

    pub async fn stop(self) -> WatchRecord {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("status reader")
    }
}
