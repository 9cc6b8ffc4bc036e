//! Announces further results after a row set for clients that negotiated
//! `CLIENT_DEPRECATE_EOF` (mysql_async, MySQL 8 clients).
//!
//! opensrv-mysql 0.7 ends a row set with an OK packet (header `0xfe`) whose status flags it
//! always leaves empty, so a client reading `SELECT …; SELECT …` stops after the first set and
//! the connection falls out of step. Its API offers no way to set the flag, so this writer sits
//! between opensrv and the socket, follows the packet framing, and sets
//! `SERVER_MORE_RESULTS_EXISTS` in the next terminator after the server raised [`MoreFlag`].
//! For classic EOF terminators (same layout: status at payload offset 3) it changes nothing,
//! since opensrv sets the flag there itself.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

/// Raised by the server before it writes the next result after a row set.
pub type MoreFlag = Arc<AtomicBool>;

const SERVER_MORE_RESULTS_EXISTS: u8 = 0x08;
/// Payload offset of the low status byte in a `0xfe` terminator with zero affected rows and
/// insert id (OK) or zero warnings (EOF).
const STATUS_OFFSET: usize = 3;
/// Terminators are short; a longer `0xfe` packet is a row.
const MAX_TERMINATOR: usize = 9;

/// Where the writer is in the packet stream.
#[derive(Debug, Default, Clone)]
struct Framing {
    header: [u8; 4],
    header_have: usize,
    payload_len: usize,
    payload_at: usize,
    /// The current packet is a terminator to mark.
    marking: bool,
}

impl Framing {
    /// The byte that goes out for `b` at the current position (patched or not), advancing.
    fn step(&mut self, b: u8, flag: &AtomicBool) -> u8 {
        if self.header_have < 4 {
            self.header[self.header_have] = b;
            self.header_have += 1;
            if self.header_have == 4 {
                self.payload_len = usize::from(self.header[0])
                    | usize::from(self.header[1]) << 8
                    | usize::from(self.header[2]) << 16;
                self.payload_at = 0;
                self.marking = self.payload_len < MAX_TERMINATOR
                    && self.payload_len > STATUS_OFFSET
                    && flag.load(Ordering::Relaxed);
                if self.payload_len == 0 {
                    self.header_have = 0;
                }
            }
            return b;
        }
        let at = self.payload_at;
        self.payload_at += 1;
        if self.payload_at == self.payload_len {
            self.header_have = 0;
        }
        if !self.marking {
            return b;
        }
        if at == 0 && b != 0xfe {
            self.marking = false;
            return b;
        }
        if at == STATUS_OFFSET {
            self.marking = false;
            flag.store(false, Ordering::Relaxed);
            return b | SERVER_MORE_RESULTS_EXISTS;
        }
        b
    }

    /// Whether bytes can pass untouched: inside a payload that is not being marked.
    fn passthrough(&self) -> usize {
        if self.header_have == 4 && !self.marking {
            self.payload_len - self.payload_at
        } else {
            0
        }
    }
}

pub struct MoreResults<W> {
    inner: W,
    flag: MoreFlag,
    framing: Framing,
    /// The bytes of the last write attempt as they go out (patched), kept until accepted.
    scratch: Vec<u8>,
}

impl<W> MoreResults<W> {
    pub fn new(inner: W, flag: MoreFlag) -> MoreResults<W> {
        MoreResults {
            inner,
            flag,
            framing: Framing::default(),
            scratch: Vec::new(),
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for MoreResults<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Bulk payload bytes go straight through.
        let direct = this.framing.passthrough().min(buf.len());
        if direct > 0 {
            let n = match Pin::new(&mut this.inner).poll_write(cx, &buf[..direct]) {
                Poll::Ready(Ok(n)) => n,
                other => return other,
            };
            this.framing.payload_at += n;
            if this.framing.payload_at == this.framing.payload_len {
                this.framing.header_have = 0;
            }
            return Poll::Ready(Ok(n));
        }
        // Headers and marked packets: compute what goes out without advancing the framing,
        // then advance it over the bytes the socket took.
        let mut preview = this.framing.clone();
        let probe = AtomicBool::new(this.flag.load(Ordering::Relaxed));
        this.scratch.clear();
        this.scratch
            .extend(buf.iter().map(|b| preview.step(*b, &probe)));
        let n = match Pin::new(&mut this.inner).poll_write(cx, &this.scratch) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        for b in &buf[..n] {
            this.framing.step(*b, &this.flag);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut p = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
        p.extend_from_slice(payload);
        p
    }

    async fn run(chunks: &[Vec<u8>], raise_before: usize) -> Vec<u8> {
        let flag: MoreFlag = Arc::default();
        let mut w = MoreResults::new(Vec::new(), flag.clone());
        for (i, c) in chunks.iter().enumerate() {
            if i == raise_before {
                flag.store(true, Ordering::Relaxed);
            }
            // Byte by byte, as the worst case of partial writes.
            for b in c {
                w.write_all(&[*b]).await.unwrap();
            }
        }
        w.inner
    }

    #[tokio::test]
    async fn marks_only_the_next_terminator() {
        let row = packet(3, &[0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let ok = packet(4, &[0xfe, 0, 0, 0x02, 0, 0, 0]);
        let cols = packet(0, &[1]);
        let chunks = vec![row.clone(), ok.clone(), cols.clone(), ok.clone()];
        let out = run(&chunks, 1).await;
        let mut want = row.clone();
        let mut marked = ok.clone();
        marked[4 + STATUS_OFFSET] |= SERVER_MORE_RESULTS_EXISTS;
        want.extend(marked);
        want.extend(cols);
        want.extend(ok.clone());
        assert_eq!(out, want);
        // Nothing raised: nothing changes.
        assert_eq!(run(&chunks, usize::MAX).await, chunks.concat());
    }

    #[tokio::test]
    async fn long_rows_starting_with_0xfe_are_left_alone() {
        let row = packet(1, &[0xfe; 20]);
        let out = run(std::slice::from_ref(&row), 0).await;
        assert_eq!(out, row);
    }
}
