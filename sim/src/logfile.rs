//! The daemon log file, with searchd's line format: `[Sun Nov 22 20:03:16.093 2026] [<pid>] <message>`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct DaemonLog {
    file: Option<Mutex<File>>,
    pid: u32,
}

impl DaemonLog {
    /// Opens (appends to) the log file; without a path, lines go to stderr.
    pub fn open(path: Option<&Path>) -> std::io::Result<DaemonLog> {
        let file = match path {
            Some(p) => Some(Mutex::new(
                OpenOptions::new().create(true).append(true).open(p)?,
            )),
            None => None,
        };
        Ok(DaemonLog {
            file,
            pid: std::process::id(),
        })
    }

    pub fn line(&self, message: &str) {
        let text = format!(
            "[{}] [{}] {}\n",
            timestamp(SystemTime::now()),
            self.pid,
            message
        );
        match &self.file {
            Some(file) => {
                let mut f = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                // A failing log write must not take the daemon down; there is nowhere better to report it.
                let _ = f.write_all(text.as_bytes());
            }
            None => eprint!("{text}"),
        }
    }
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Sun Nov 22 20:03:16.093 2026` in UTC (the simulator does not read the local time zone).
pub fn timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02}.{:03} {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis(),
        year
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's `civil_from_days`.
/// Hand-written because it is a dozen lines and the simulator needs nothing else from a date crate.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_like_searchd() {
        // 2026-11-22 20:03:16.093 UTC was a Sunday.
        let at = UNIX_EPOCH + Duration::from_millis(1_795_377_796_093);
        assert_eq!(timestamp(at), "Sun Nov 22 20:03:16.093 2026");
        assert_eq!(timestamp(UNIX_EPOCH), "Thu Jan  1 00:00:00.000 1970");
    }
}
