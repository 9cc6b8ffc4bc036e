//! Persistence: an append-only log of mutation batches under `data_dir`, written before a
//! statement is acknowledged, replayed at start and compacted into a snapshot.
//!
//! Files: `sim.wal` holds one line per committed statement, `<seq> <crc32> <json array>`;
//! `sim.snapshot` holds the whole catalog as of sequence `seq`. A crash between writing a new
//! snapshot and truncating the log is harmless: replay skips records already in the snapshot.
//! A torn last line (the process died mid-write) is dropped; it was never acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::catalog::Catalog;
use super::mutation::{apply, Mutation};

const WAL_FILE: &str = "sim.wal";
const SNAPSHOT_FILE: &str = "sim.snapshot";

#[derive(Debug, Error)]
pub enum WalError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: corrupt snapshot: {reason}")]
    Snapshot { path: String, reason: String },
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    seq: u64,
    catalog: Catalog,
}

pub struct Wal {
    path: PathBuf,
    dir: PathBuf,
    file: File,
    /// Sequence number of the last record written.
    seq: u64,
    /// Records in the log file since the last snapshot.
    records: u64,
    fsync: bool,
    compact_after: u64,
}

/// What [`Wal::open`] recovered.
pub struct Recovered {
    pub wal: Wal,
    pub catalog: Catalog,
    /// Records replayed from the log (not counting the snapshot).
    pub replayed: u64,
    /// Records that no longer applied (logged by the caller).
    pub skipped: Vec<String>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Wal {
    pub fn open(dir: &Path, fsync: bool, compact_after: u64) -> Result<Recovered, WalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let snap_path = dir.join(SNAPSHOT_FILE);
        let (mut seq, mut catalog) = match fs::read(&snap_path) {
            Ok(bytes) => {
                let snap: Snapshot =
                    serde_json::from_slice(&bytes).map_err(|e| WalError::Snapshot {
                        path: snap_path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                (snap.seq, snap.catalog)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, Catalog::default()),
            Err(e) => return Err(io_err(&snap_path)(e)),
        };
        catalog.reindex();
        let path = dir.join(WAL_FILE);
        let mut replayed = 0;
        let mut records = 0;
        let mut skipped = Vec::new();
        let mut good_len = 0u64;
        if let Ok(file) = File::open(&path) {
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader.read_line(&mut line).map_err(io_err(&path))?;
                if n == 0 || !line.ends_with('\n') {
                    break;
                }
                let Some((rec_seq, batch)) = decode(line.trim_end()) else {
                    break;
                };
                good_len += n as u64;
                records += 1;
                if rec_seq <= seq {
                    continue;
                }
                seq = rec_seq;
                replayed += 1;
                for m in &batch {
                    if let Err(e) = apply(&mut catalog, m) {
                        skipped.push(format!("record {rec_seq}: {e}"));
                    }
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        // Drop a torn tail so new records follow the last good one.
        file.set_len(good_len).map_err(io_err(&path))?;
        Ok(Recovered {
            wal: Wal {
                path,
                dir: dir.to_path_buf(),
                file,
                seq,
                records,
                fsync,
                compact_after,
            },
            catalog,
            replayed,
            skipped,
        })
    }

    /// Appends one statement's mutations; returns once the record is in the file.
    pub fn append(&mut self, batch: &[Mutation]) -> io::Result<()> {
        let seq = self.seq + 1;
        let line = encode(seq, batch)?;
        self.file.write_all(line.as_bytes())?;
        if self.fsync {
            self.file.sync_data()?;
        }
        self.seq = seq;
        self.records += 1;
        Ok(())
    }

    pub fn needs_compaction(&self) -> bool {
        self.records >= self.compact_after
    }

    /// Writes a snapshot of `catalog` (which must include every appended record) and empties the log.
    pub fn compact(&mut self, catalog: &Catalog) -> io::Result<()> {
        let snap = Snapshot {
            seq: self.seq,
            catalog: catalog.clone(),
        };
        let tmp = self.dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        let bytes = serde_json::to_vec(&snap).map_err(io::Error::other)?;
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join(SNAPSHOT_FILE))?;
        self.file.set_len(0)?;
        self.records = 0;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn encode(seq: u64, batch: &[Mutation]) -> io::Result<String> {
    let json = serde_json::to_string(batch).map_err(io::Error::other)?;
    let crc = crc32fast::hash(json.as_bytes());
    Ok(format!("{seq} {crc:08x} {json}\n"))
}

fn decode(line: &str) -> Option<(u64, Vec<Mutation>)> {
    let mut parts = line.splitn(3, ' ');
    let seq = parts.next()?.parse::<u64>().ok()?;
    let crc = u32::from_str_radix(parts.next()?, 16).ok()?;
    let json = parts.next()?;
    if crc32fast::hash(json.as_bytes()) != crc {
        return None;
    }
    Some((seq, serde_json::from_str(json).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::Schema;
    use crate::store::table::TableDef;
    use crate::store::value::{Row, Value};

    fn create(name: &str) -> Mutation {
        Mutation::CreateTable {
            name: name.into(),
            def: TableDef::Rt {
                schema: Schema::default(),
                options: vec![],
            },
        }
    }

    fn insert(id: i64) -> Mutation {
        Mutation::Insert {
            table: "t".into(),
            rows: vec![Row { id, values: vec![] }],
        }
    }

    #[test]
    fn replays_appended_records() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut r = Wal::open(dir.path(), false, 1000).unwrap();
            r.wal.append(&[create("t")]).unwrap();
            r.wal.append(&[insert(1), insert(2)]).unwrap();
        }
        let r = Wal::open(dir.path(), false, 1000).unwrap();
        assert_eq!(r.replayed, 2);
        assert_eq!(r.catalog.get("t").unwrap().data.len(), 2);
    }

    #[test]
    fn torn_tail_is_dropped_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut r = Wal::open(dir.path(), false, 1000).unwrap();
            r.wal.append(&[create("t")]).unwrap();
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(WAL_FILE))
            .unwrap();
        f.write_all(b"2 deadbeef [{\"Insert").unwrap();
        drop(f);
        {
            let mut r = Wal::open(dir.path(), false, 1000).unwrap();
            assert_eq!(r.replayed, 1);
            r.wal.append(&[insert(5)]).unwrap();
        }
        let r = Wal::open(dir.path(), false, 1000).unwrap();
        assert!(r.catalog.get("t").unwrap().data.contains(5));
    }

    #[test]
    fn compaction_keeps_state_and_skips_old_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Wal::open(dir.path(), false, 2).unwrap();
        let mut catalog = std::mem::take(&mut r.catalog);
        for m in [create("t"), insert(1)] {
            r.wal.append(std::slice::from_ref(&m)).unwrap();
            apply(&mut catalog, &m).unwrap();
        }
        assert!(r.wal.needs_compaction());
        // Simulate a crash after the snapshot rename but before the log was emptied.
        let old_log = fs::read(dir.path().join(WAL_FILE)).unwrap();
        r.wal.compact(&catalog).unwrap();
        fs::write(dir.path().join(WAL_FILE), old_log).unwrap();
        drop(r);
        let r2 = Wal::open(dir.path(), false, 2).unwrap();
        assert_eq!(r2.replayed, 0);
        let t = r2.catalog.get("t").unwrap();
        assert_eq!(
            t.data.get(1).map(|r| r.values.clone()),
            Some(Vec::<Value>::new())
        );
    }
}
