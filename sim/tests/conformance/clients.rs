//! The clients the golden generator used: the `mysql` command-line client, HTTP requests, and a
//! minimal MySQL-protocol client on one raw socket (the `raw_mysql` records).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `mysql -h127.0.0.1 -P<port> --table -e "<sql>"`, stdout and stderr through one pipe.
pub fn mysql_client(port: u16, sql: &str) -> String {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut child = Command::new("mysql")
        .args(["-h127.0.0.1", &format!("-P{port}"), "--table", "-e", sql])
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .expect("the `mysql` client must be installed (Debian: default-mysql-client)");
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    child.wait().unwrap();
    out
}

/// What one statement returned, as the generator's raw client prints it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok { affected: u64 },
    Err { code: u16, message: String },
    Rows(Vec<Vec<Option<String>>>),
}

impl Reply {
    /// `OK (affected rows N)`, `ERR <code>: <message>`, `rows [[…]]`.
    pub fn render(&self) -> String {
        match self {
            Reply::Ok { affected } => format!("OK (affected rows {affected})"),
            Reply::Err { code, message } => format!("ERR {code}: {message}"),
            Reply::Rows(rows) => {
                let rows: Vec<String> = rows
                    .iter()
                    .map(|r| {
                        let cells: Vec<String> = r
                            .iter()
                            .map(|c| match c {
                                Some(s) => serde_json::to_string(s).unwrap_or_default(),
                                None => "null".to_string(),
                            })
                            .collect();
                        format!("[{}]", cells.join(", "))
                    })
                    .collect();
                format!("rows [{}]", rows.join(", "))
            }
        }
    }
}

const CLIENT_LONG_PASSWORD: u32 = 0x1;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
/// Bound on one packet this client accepts.
const MAX_PACKET: usize = 64 << 20;

/// A minimal MySQL-protocol client: handshake as `root` without a password, then COM_QUERY
/// with text result sets (EOF packets, no CLIENT_DEPRECATE_EOF).
pub struct RawMysql {
    stream: TcpStream,
    /// The server version from the handshake.
    pub server_version: String,
}

impl RawMysql {
    pub fn connect(port: u16) -> io::Result<RawMysql> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut c = RawMysql {
            stream,
            server_version: String::new(),
        };
        let (seq, greeting) = c.read_packet()?;
        let rest = greeting.get(1..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        c.server_version = String::from_utf8_lossy(&rest[..end]).to_string();
        let caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION;
        let mut resp = Vec::new();
        resp.extend_from_slice(&caps.to_le_bytes());
        resp.extend_from_slice(&(16u32 << 20).to_le_bytes());
        resp.push(33);
        resp.extend_from_slice(&[0u8; 23]);
        resp.extend_from_slice(b"root\0");
        resp.push(0);
        c.write_packet(seq.wrapping_add(1), &resp)?;
        loop {
            let (seq, packet) = c.read_packet()?;
            match packet.first() {
                Some(0x00) => return Ok(c),
                // An authentication switch: an empty password for whatever method it names.
                Some(0xFE) => c.write_packet(seq.wrapping_add(1), &[])?,
                _ => {
                    return Err(io::Error::other(format!(
                        "handshake refused: {}",
                        String::from_utf8_lossy(&packet)
                    )))
                }
            }
        }
    }

    fn read_packet(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 4];
        self.stream.read_exact(&mut head)?;
        let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
        if len > MAX_PACKET {
            return Err(io::Error::other("packet too large"));
        }
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload)?;
        Ok((head[3], payload))
    }

    fn write_packet(&mut self, seq: u8, payload: &[u8]) -> io::Result<()> {
        let len = payload.len() as u32;
        let mut out = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
        out.extend_from_slice(payload);
        self.stream.write_all(&out)
    }

    /// Runs one statement.
    pub fn query(&mut self, sql: &str) -> io::Result<Reply> {
        let mut payload = vec![0x03];
        payload.extend_from_slice(sql.as_bytes());
        self.write_packet(0, &payload)?;
        let (_, first) = self.read_packet()?;
        match first.first() {
            Some(0x00) => {
                let (affected, _) = lenenc(&first[1..]);
                Ok(Reply::Ok { affected })
            }
            Some(0xFF) => Ok(error_reply(&first)),
            _ => {
                let (columns, _) = lenenc(&first);
                for _ in 0..columns {
                    self.read_packet()?;
                }
                let (_, eof) = self.read_packet()?;
                if !is_eof(&eof) {
                    return Err(io::Error::other(
                        "expected EOF after the column definitions",
                    ));
                }
                let mut rows = Vec::new();
                loop {
                    let (_, packet) = self.read_packet()?;
                    if is_eof(&packet) {
                        return Ok(Reply::Rows(rows));
                    }
                    if packet.first() == Some(&0xFF) {
                        return Ok(error_reply(&packet));
                    }
                    let mut row = Vec::new();
                    let mut rest = &packet[..];
                    for _ in 0..columns {
                        if rest.first() == Some(&0xFB) {
                            row.push(None);
                            rest = &rest[1..];
                            continue;
                        }
                        let (len, used) = lenenc(rest);
                        let len = usize::try_from(len).unwrap_or(usize::MAX);
                        let text = rest.get(used..used + len).unwrap_or_default();
                        row.push(Some(String::from_utf8_lossy(text).to_string()));
                        rest = rest.get(used + len..).unwrap_or_default();
                    }
                    rows.push(row);
                }
            }
        }
    }
}

fn is_eof(packet: &[u8]) -> bool {
    packet.first() == Some(&0xFE) && packet.len() < 9
}

fn error_reply(packet: &[u8]) -> Reply {
    let code = u16::from_le_bytes([packet[1], packet[2]]);
    // `#` and the five-character SQL state follow with CLIENT_PROTOCOL_41.
    let message = if packet.get(3) == Some(&b'#') {
        &packet[9..]
    } else {
        &packet[3..]
    };
    Reply::Err {
        code,
        message: String::from_utf8_lossy(message).to_string(),
    }
}

/// A length-encoded integer and the bytes it took.
fn lenenc(b: &[u8]) -> (u64, usize) {
    match b.first() {
        Some(&n) if n < 0xFB => (u64::from(n), 1),
        Some(0xFC) if b.len() >= 3 => (u64::from(u16::from_le_bytes([b[1], b[2]])), 3),
        Some(0xFD) if b.len() >= 4 => (
            u64::from(b[1]) | u64::from(b[2]) << 8 | u64::from(b[3]) << 16,
            4,
        ),
        Some(0xFE) if b.len() >= 9 => (
            u64::from_le_bytes([b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8]]),
            9,
        ),
        _ => (0, 1),
    }
}
