//! Minimal optional auth model: named users with read/write/schema rights.
//!
//! Auth is enabled when the `sim` section defines at least one `user`. The helper then gets
//! `BUDDY_TOKEN`, a bearer token for the internal user `system.buddy`, which has every right
//! and may act for another user through `X-Manticore-User` (only with the Buddy User-Agent).

use serde::{Deserialize, Serialize};

/// The internal user the helper authenticates as.
pub const BUDDY_USER: &str = "system.buddy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub schema: bool,
}

impl Perms {
    pub const ALL: Perms = Perms {
        read: true,
        write: true,
        schema: true,
    };

    pub fn parse(spec: &str) -> Result<Perms, String> {
        let mut perms = Perms::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => perms = Perms::ALL,
                "none" => {}
                "read" => perms.read = true,
                "write" => perms.write = true,
                "schema" => perms.schema = true,
                other => return Err(format!("unknown permission '{other}'")),
            }
        }
        Ok(perms)
    }
}

/// What a statement needs from the user who sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Nothing,
    Read,
    Write,
    Schema,
}

impl Perms {
    pub fn allows(self, need: Need) -> bool {
        match need {
            Need::Nothing => true,
            Need::Read => self.read,
            Need::Write => self.write,
            Need::Schema => self.schema,
        }
    }
}

/// The exact text searchd uses when a user lacks a right.
pub fn denied_message(user: &str) -> String {
    format!("Permission denied for user '{user}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_perm_lists() {
        assert_eq!(Perms::parse("all").unwrap(), Perms::ALL);
        assert_eq!(Perms::parse("none").unwrap(), Perms::default());
        let p = Perms::parse("read, write").unwrap();
        assert!(p.read && p.write && !p.schema);
        assert!(Perms::parse("admin").is_err());
    }

    #[test]
    fn needs_are_checked() {
        let reader = Perms::parse("read").unwrap();
        assert!(reader.allows(Need::Read) && reader.allows(Need::Nothing));
        assert!(!reader.allows(Need::Write) && !reader.allows(Need::Schema));
    }
}
