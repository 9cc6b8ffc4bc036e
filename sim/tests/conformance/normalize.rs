//! The textual normalisation of transcripts.md: placeholders for ports, directories, ids, pids
//! and `took`, and volatile counters masked as `{v}` (mysql boxes redrawn as the client would).

use std::collections::HashSet;

/// Replaces whole digit runs equal to `n`.
pub fn replace_number(text: &str, n: u16, with: &str) -> String {
    let needle = n.to_string();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()) {
            let end = (i..bytes.len())
                .find(|&j| !bytes[j].is_ascii_digit())
                .unwrap_or(bytes.len());
            if text[i..end] == needle {
                out.push_str(with);
            } else {
                out.push_str(&text[i..end]);
            }
            i = end;
        } else {
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Ids the simulator generated (19 digits, per-start counter in the low 24 bits) → `{idN}`,
/// right-aligned to the number's width so mysql boxes keep their shape.
pub fn replace_generated_ids(text: &str) -> String {
    let re = regex::Regex::new(r"(\s*)\b(\d{19})\b").unwrap();
    re.replace_all(text, |c: &regex::Captures| {
        let spaces = &c[1];
        let digits = &c[2];
        let n: u64 = digits.parse().unwrap_or(0);
        let placeholder = format!("{{id{}}}", n & 0xff_ffff);
        if spaces.is_empty() {
            placeholder
        } else {
            let width = spaces.len() + digits.len();
            format!("{placeholder:>width$}")
        }
    })
    .to_string()
}

pub fn replace_pid_and_took(text: &str) -> String {
    let pid = regex::Regex::new(r#"("Setting_name":"worker_pid","Value":)\d+"#).unwrap();
    let text = pid.replace_all(text, "${1}{pid}");
    let box_pid = regex::Regex::new(r"(\| worker_pid +\| )(\d+)").unwrap();
    let text = box_pid.replace_all(&text, "${1}{pid}");
    let took = regex::Regex::new(r#""took":\d+"#).unwrap();
    took.replace_all(&text, "\"took\":{v}").to_string()
}

/// Volatile counter values become `{v}`; mysql boxes holding them are redrawn as the client would.
pub fn mask_volatile(text: &str, via: &str, volatile: &HashSet<String>) -> String {
    if via != "mysql" {
        let re = regex::Regex::new(r#"\{"(Counter|Variable_name)":"([^"]*)","Value":"[^"]*"\}"#)
            .unwrap();
        return re
            .replace_all(text, |c: &regex::Captures| {
                if volatile.contains(&c[2]) {
                    format!("{{\"{}\":\"{}\",\"Value\":\"{{v}}\"}}", &c[1], &c[2])
                } else {
                    c[0].to_string()
                }
            })
            .to_string();
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        // A box: border, header, border, rows…, border.
        if lines[i].starts_with("+-") && i + 2 < lines.len() && lines[i + 1].starts_with('|') {
            let end = (i + 3..lines.len())
                .find(|&j| lines[j].starts_with("+-"))
                .unwrap_or(lines.len() - 1);
            let rows: Vec<Vec<String>> = lines[i + 3..end].iter().map(|l| cells(l)).collect();
            let touched = rows
                .iter()
                .any(|r| r.len() == 2 && volatile.contains(r[0].as_str()));
            if touched && rows.iter().all(|r| r.len() == 2) {
                let header = cells(lines[i + 1]);
                let rows: Vec<Vec<String>> = rows
                    .into_iter()
                    .map(|r| {
                        if volatile.contains(r[0].as_str()) {
                            vec![r[0].clone(), "{v}".to_string()]
                        } else {
                            r
                        }
                    })
                    .collect();
                out.extend(draw_box(&header, &rows));
                i = end + 1;
                continue;
            }
        }
        out.push(lines[i].to_string());
        i += 1;
    }
    out.join("\n")
}

fn cells(line: &str) -> Vec<String> {
    line.trim_matches('|')
        .split(" | ")
        .map(|c| c.trim().to_string())
        .collect()
}

fn draw_box(header: &[String], rows: &[Vec<String>]) -> Vec<String> {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let border = format!(
        "+{}+",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let line = |r: &[String]| {
        format!(
            "|{}|",
            r.iter()
                .zip(&widths)
                .map(|(c, w)| format!(" {c:<w$} "))
                .collect::<Vec<_>>()
                .join("|")
        )
    };
    let mut out = vec![border.clone(), line(header), border.clone()];
    out.extend(rows.iter().map(|r| line(r)));
    out.push(border);
    out
}
