//! The live status page: one self-contained HTML document (no external
//! assets, works offline) that draws `/status.json` and reads it again
//! every two seconds.

/// The page, as served at `/`.
pub const PAGE: &str = include_str!("page.html");
