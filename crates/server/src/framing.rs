//! HTTP/1 framing hyper accepts but a front proxy may read differently,
//! refused at the edge (issue 19, finding 6). hyper reads a chunk size of
//! any number of leading zeros (`000…0001a`: a million zeros parse as
//! 26); a proxy that caps the size line, or reads the digits as a
//! different number, would frame the body differently from us, the
//! precondition of request smuggling. hyper has no knob for it, so this
//! wrapper watches the bytes on their way from the socket to hyper and
//! cuts the connection at a chunk-size line of more than
//! [`MAX_SIZE_DIGITS`] hex digits: hyper never sees the rest, the request
//! fails, and nothing is stored.
//!
//! To know where the chunk-size lines are, it follows each request's
//! framing exactly as hyper does (`proto/h1/role.rs` and `decode.rs` of
//! hyper 1.x: `Transfer-Encoding` whose last coding is `chunked` wins,
//! else `Content-Length`, else no body; the chunked grammar byte for byte),
//! keeping no more than one header line of 1 KiB. Where hyper itself will
//! refuse a head (400) the wrapper lets the head through and then holds
//! back everything after it, so hyper answers and closes, and a head it
//! could read otherwise than hyper is never followed by bytes it did not
//! frame. HTTP/2 (the preface, or `h2` by ALPN, which the listener does
//! not wrap) and a connection hyper upgraded (101, or a 2xx to `CONNECT`,
//! seen on the way out) pass through untouched; bytes after an upgrade
//! request wait until its answer says which they are.
//!
//! Used by `listener` only.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Hex digits a chunk size may have, leading zeros included: 16 is every
/// `u64`, which is all hyper can represent.
pub(crate) const MAX_SIZE_DIGITS: u32 = 16;

/// Bytes of a header line kept to read it; longer framing headers (which
/// no client sends) are treated as ones hyper may read otherwise.
const LINE_KEEP: usize = 1024;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection's byte stream, watched.
pub(crate) struct Guarded<S> {
    inner: S,
    tracker: Tracker,
    /// The reader parked while an upgrade request's answer is awaited.
    parked: Option<Waker>,
    /// The start of the answer being written to an upgrade request.
    status: Vec<u8>,
    /// Bytes read from the socket that hyper may not have yet.
    stash: Vec<u8>,
}

impl<S> Guarded<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            tracker: Tracker::default(),
            parked: None,
            status: Vec::new(),
            stash: Vec::new(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.tracker.state {
            State::Pass if this.stash.is_empty() => {
                return Pin::new(&mut this.inner).poll_read(cx, buf)
            }
            State::Refused => return Poll::Ready(Err(refused())),
            // hyper answers (and closes) without more bytes; a peer's
            // silence is what it sees until the answer decides.
            State::Held | State::Upgrading => {
                this.parked = Some(cx.waker().clone());
                return Poll::Pending;
            }
            _ => {}
        }
        let before = buf.filled().len();
        if this.stash.is_empty() {
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        } else {
            let n = this.stash.len().min(buf.remaining());
            buf.put_slice(&this.stash[..n]);
            this.stash.drain(..n);
        }
        let fresh = &buf.filled()[before..];
        if fresh.is_empty() {
            return Poll::Ready(Ok(())); // end of stream
        }
        let (taken, verdict) = this.tracker.feed(fresh);
        if verdict == Verdict::Stop {
            // Read but not yet hyper's: kept for when the answer decides
            // (one read's worth at most, as no more is read meanwhile).
            let rest = fresh[taken..].to_vec();
            this.stash.splice(0..0, rest);
        }
        buf.set_filled(before + taken);
        match verdict {
            _ if taken > 0 => Poll::Ready(Ok(())),
            Verdict::Refuse => Poll::Ready(Err(refused())),
            _ => {
                this.parked = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

fn refused() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "ambiguous HTTP/1 framing")
}

impl<S> Guarded<S> {
    /// Watches the answer to an upgrade request: 101 (or 2xx to CONNECT)
    /// makes the connection something else; any other final status means
    /// the bytes after the request are HTTP/1 again.
    fn watch_answer(&mut self, written: &[u8]) {
        let Some(watch) = &mut self.tracker.upgrade else {
            return;
        };
        if watch.upgraded.is_some() {
            return;
        }
        let want = 12usize.saturating_sub(self.status.len());
        self.status
            .extend_from_slice(&written[..want.min(written.len())]);
        if self.status.len() < 12 {
            return;
        }
        let code = std::str::from_utf8(&self.status[9..12])
            .ok()
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        self.status.clear();
        watch.upgraded = match code {
            101 => Some(true),
            200..=299 if watch.connect => Some(true),
            // 100 Continue and other interim answers: the final one decides.
            100..=199 => return,
            _ => Some(false),
        };
        if matches!(self.tracker.state, State::Upgrading) {
            self.tracker.body_done();
            if let Some(waker) = self.parked.take() {
                waker.wake();
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.watch_answer(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = std::task::ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        let mut left = n;
        for slice in bufs {
            if left == 0 {
                break;
            }
            let part = &slice[..left.min(slice.len())];
            this.watch_answer(part);
            left -= part.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Feeds `bytes` to a fresh tracker in pieces of `piece` bytes, as reads
/// would: how many reach hyper, and the verdict where it stopped (for the
/// tests and the fuzz target).
pub(crate) fn feed_in_pieces(bytes: &[u8], piece: usize) -> (usize, Verdict) {
    let mut tracker = Tracker::default();
    let mut passed = 0;
    for part in bytes.chunks(piece.max(1)) {
        let (taken, verdict) = tracker.feed(part);
        passed += taken;
        if verdict != Verdict::Go {
            return (passed, verdict);
        }
    }
    (passed, Verdict::Go)
}

/// What the bytes fed so far allow.
#[derive(Debug, PartialEq, Clone, Copy)]
pub(crate) enum Verdict {
    /// Everything taken; go on.
    Go,
    /// Stop after what was taken: the rest waits or never comes.
    Stop,
    /// Stop after what was taken and fail the connection.
    Refuse,
}

/// Where in the HTTP/1 stream the next byte falls.
#[derive(Debug)]
enum State {
    /// Maybe the HTTP/2 preface; this many of its bytes seen.
    Preface(usize),
    /// HTTP/2 or upgraded: not ours to watch.
    Pass,
    /// A request head.
    Head(Head),
    /// This many `Content-Length` body bytes left.
    Sized(u64),
    /// A chunked body, in hyper's state machine.
    Chunked(Chunk),
    /// After an upgrade request: nothing passes until its answer is seen.
    Upgrading,
    /// After a head hyper refuses, or a request after which hyper closes:
    /// nothing more passes.
    Held,
    /// Ambiguous framing seen: the connection fails.
    Refused,
}

/// The chunked grammar (hyper's `ChunkedState`), with the size's digits
/// counted.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Chunk {
    Start,
    Size { digits: u32, size: u64 },
    SizeLws { size: u64 },
    Extension { size: u64 },
    SizeLf { size: u64 },
    Body { left: u64 },
    BodyCr,
    BodyLf,
    EndCr,
    Trailer,
    TrailerLf,
    EndLf,
}

/// What a request head has said about its framing so far.
#[derive(Debug, Default)]
struct Head {
    /// The current line (its first `LINE_KEEP` bytes) and its length.
    line: Vec<u8>,
    line_len: usize,
    /// The last bytes of the current line (the request line's version).
    tail: Vec<u8>,
    request_line: bool,
    http11: bool,
    connect: bool,
    upgrade: bool,
    te: bool,
    te_chunked: bool,
    cl_seen: bool,
    cl: Option<u64>,
    /// Something hyper refuses, or that this reading may not match.
    doubtful: bool,
}

/// Follows the framing of the requests on one connection.
#[derive(Debug)]
struct Tracker {
    state: State,
    /// What to do after the current body (set at the end of each head).
    after: After,
    /// The answer awaited by the last upgrade request.
    upgrade: Option<UpgradeWatch>,
}

#[derive(Debug, Clone, Copy)]
enum After {
    NextRequest,
    Upgrade,
    Close,
}

/// An upgrade request's answer, as seen on the way out (it may come before
/// the request's body has been read).
#[derive(Debug)]
struct UpgradeWatch {
    connect: bool,
    /// `None` until a final answer is written.
    upgraded: Option<bool>,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            state: State::Preface(0),
            after: After::NextRequest,
            upgrade: None,
        }
    }
}

impl Tracker {
    /// Feeds fresh bytes; returns how many may reach hyper and what then.
    fn feed(&mut self, bytes: &[u8]) -> (usize, Verdict) {
        let mut at = 0;
        while at < bytes.len() {
            match &mut self.state {
                State::Pass => return (bytes.len(), Verdict::Go),
                State::Held | State::Upgrading => return (at, Verdict::Stop),
                State::Refused => return (at, Verdict::Refuse),
                State::Preface(seen) => {
                    let seen = *seen;
                    if bytes[at] == PREFACE[seen] {
                        at += 1;
                        self.state = if seen + 1 == PREFACE.len() {
                            State::Pass
                        } else {
                            State::Preface(seen + 1)
                        };
                    } else {
                        // Not HTTP/2: replay what matched as HTTP/1.
                        // (What follows the head within it, if the
                        // head ends there, is not framing hyper reads.)
                        self.state = State::Head(Head::default());
                        self.head_feed(&PREFACE[..seen]);
                    }
                }
                State::Sized(left) => {
                    let n = (*left).min((bytes.len() - at) as u64);
                    *left -= n;
                    at += n as usize;
                    if *left == 0 {
                        self.body_done();
                    }
                }
                State::Head(_) => at += self.head_feed(&bytes[at..]),
                State::Chunked(chunk) => {
                    if let Chunk::Body { left } = chunk {
                        let n = (*left).min((bytes.len() - at) as u64);
                        *left -= n;
                        at += n as usize;
                        if *left == 0 {
                            *chunk = Chunk::BodyCr;
                        }
                        continue;
                    }
                    match step(*chunk, bytes[at]) {
                        Some(Some(next)) => *chunk = next,
                        Some(None) => self.body_done(),
                        None => {
                            self.state = State::Refused;
                            return (at, Verdict::Refuse);
                        }
                    }
                    at += 1;
                }
            }
        }
        (at, Verdict::Go)
    }

    /// The current body ended (or there was none).
    fn body_done(&mut self) {
        self.state = match self.after {
            After::NextRequest => State::Head(Head::default()),
            After::Upgrade => match self.upgrade.as_ref().and_then(|w| w.upgraded) {
                None => State::Upgrading,
                Some(upgraded) => {
                    self.upgrade = None;
                    self.after = After::NextRequest;
                    if upgraded {
                        State::Pass
                    } else {
                        State::Head(Head::default())
                    }
                }
            },
            After::Close => State::Held,
        };
    }

    /// Reads head bytes a line at a time while a head is being read; how
    /// many it took (all, or up to the `\n` that ended the head). Byte by
    /// byte this guard was 2.3 % of the relay's CPU under ingest (`perf`).
    fn head_feed(&mut self, bytes: &[u8]) -> usize {
        let mut at = 0;
        while at < bytes.len() {
            let State::Head(head) = &mut self.state else {
                break;
            };
            let rest = &bytes[at..];
            match rest.iter().position(|&c| c == b'\n') {
                Some(end) => {
                    head.extend(&rest[..end]);
                    at += end + 1;
                    self.line_end();
                }
                None => {
                    head.extend(rest);
                    at = bytes.len();
                }
            }
        }
        at
    }

    /// The end of a head line (its `\n` read).
    fn line_end(&mut self) {
        let State::Head(head) = &mut self.state else {
            return;
        };
        let mut line = std::mem::take(&mut head.line);
        let mut tail = std::mem::take(&mut head.tail);
        let truncated = head.line_len > LINE_KEEP;
        head.line_len = 0;
        if tail.last() == Some(&b'\r') {
            tail.pop();
            if !truncated {
                line.pop();
            }
        }
        if !head.request_line {
            if line.is_empty() && !truncated {
                return; // httparse skips empty lines before a request
            }
            head.request_line = true;
            let version = tail.rsplit(|&c| c == b' ').next().unwrap_or(&[]);
            head.http11 = version == b"HTTP/1.1";
            head.doubtful |= !head.http11 && version != b"HTTP/1.0";
            head.connect = line.starts_with(b"CONNECT ");
            return;
        }
        if line.is_empty() && !truncated {
            self.head_done();
            return;
        }
        head.header(&line, truncated);
    }

    fn head_done(&mut self) {
        let State::Head(head) = &self.state else {
            return;
        };
        if head.doubtful || (head.te && !head.te_chunked) {
            self.state = State::Held;
            return;
        }
        let wants_upgrade = head.connect || head.upgrade;
        self.after = if wants_upgrade {
            self.upgrade = Some(UpgradeWatch {
                connect: head.connect,
                upgraded: None,
            });
            After::Upgrade
        } else if head.te && head.cl_seen {
            // hyper closes such a connection after its answer.
            After::Close
        } else {
            After::NextRequest
        };
        self.state = if head.te {
            State::Chunked(Chunk::Start)
        } else {
            match head.cl {
                Some(n) if n > 0 => State::Sized(n),
                _ => {
                    self.body_done();
                    return;
                }
            }
        };
    }
}

/// The last bytes of a line kept (the request line's version is in them).
const TAIL_KEEP: usize = 16;

impl Head {
    /// More of the current line, without its `\n`.
    fn extend(&mut self, part: &[u8]) {
        let keep = LINE_KEEP.saturating_sub(self.line.len()).min(part.len());
        self.line.extend_from_slice(&part[..keep]);
        self.line_len += part.len();
        if part.len() >= TAIL_KEEP {
            self.tail.clear();
            self.tail.extend_from_slice(&part[part.len() - TAIL_KEEP..]);
        } else {
            let excess = (self.tail.len() + part.len()).saturating_sub(TAIL_KEEP);
            self.tail.drain(..excess);
            self.tail.extend_from_slice(part);
        }
    }

    /// One header line, read as hyper reads the framing headers.
    fn header(&mut self, line: &[u8], truncated: bool) {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            self.doubtful = true; // httparse: not a header
            return;
        };
        let name = &line[..colon];
        if name.is_empty() || name.iter().any(|c| c.is_ascii_whitespace()) {
            self.doubtful = true; // obs-fold, space before the colon
            return;
        }
        let value = trim(&line[colon + 1..]);
        let is = |want: &str| name.eq_ignore_ascii_case(want.as_bytes());
        let framing = is("transfer-encoding") || is("content-length") || is("upgrade");
        if framing && truncated {
            self.doubtful = true;
            return;
        }
        if is("transfer-encoding") {
            if !self.http11 {
                self.doubtful = true;
                return;
            }
            self.te = true;
            self.cl = None;
            // hyper: the value must be visible ASCII, its last coding
            // `chunked`.
            let visible = value
                .iter()
                .all(|&c| c == b'\t' || (b' '..=b'~').contains(&c));
            self.te_chunked = visible
                && value
                    .rsplit(|&c| c == b',')
                    .next()
                    .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"));
        } else if is("content-length") {
            self.cl_seen = true;
            if self.te {
                return;
            }
            match digits(value) {
                Some(n) if self.cl.is_none_or(|prev| prev == n) => self.cl = Some(n),
                _ => self.doubtful = true,
            }
        } else if is("upgrade") {
            self.upgrade = self.http11;
        }
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&c| c != b' ' && c != b'\t');
    let Some(start) = start else {
        return &[];
    };
    let end = bytes
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .unwrap_or(start);
    &bytes[start..=end]
}

/// A `Content-Length` as hyper reads it: ASCII digits only, within `u64`.
fn digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &c| {
        c.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(c - b'0')))
            .flatten()
    })
}

/// One byte of the chunked grammar outside chunk data: the next state,
/// `Some(None)` at the end of the body, `None` for a byte hyper refuses or
/// a size of more than [`MAX_SIZE_DIGITS`] digits.
fn step(chunk: Chunk, b: u8) -> Option<Option<Chunk>> {
    let hex = (b as char).to_digit(16).map(u64::from);
    let next = match (chunk, b) {
        (Chunk::Start, _) => Chunk::Size {
            digits: 1,
            size: hex?,
        },
        (Chunk::Size { digits, size }, _) if hex.is_some() => {
            if digits >= MAX_SIZE_DIGITS {
                return None;
            }
            Chunk::Size {
                digits: digits + 1,
                size: size.checked_mul(16)?.checked_add(hex?)?,
            }
        }
        (Chunk::Size { size, .. } | Chunk::SizeLws { size }, b'\t' | b' ') => {
            Chunk::SizeLws { size }
        }
        (Chunk::Size { size, .. } | Chunk::SizeLws { size }, b';') => Chunk::Extension { size },
        (Chunk::Size { size, .. } | Chunk::SizeLws { size } | Chunk::Extension { size }, b'\r') => {
            Chunk::SizeLf { size }
        }
        (Chunk::Extension { .. }, b'\n') => return None,
        // hyper bounds extensions itself (16 KiB).
        (Chunk::Extension { size }, _) => Chunk::Extension { size },
        (Chunk::SizeLf { size: 0 }, b'\n') => Chunk::EndCr,
        (Chunk::SizeLf { size }, b'\n') => Chunk::Body { left: size },
        (Chunk::BodyCr, b'\r') => Chunk::BodyLf,
        (Chunk::BodyLf, b'\n') => Chunk::Start,
        (Chunk::EndCr, b'\r') => Chunk::EndLf,
        (Chunk::Trailer, b'\r') => Chunk::TrailerLf,
        (Chunk::EndCr | Chunk::Trailer, _) => Chunk::Trailer,
        (Chunk::TrailerLf, b'\n') => Chunk::EndCr,
        (Chunk::EndLf, b'\n') => return Some(None),
        _ => return None,
    };
    Some(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: &[u8], piece: usize) -> (usize, Verdict) {
        feed_in_pieces(bytes, piece)
    }

    fn chunked(size_line: &str) -> Vec<u8> {
        format!(
            "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{size_line}\r\nhello\r\n0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_broken_http2_preface_is_read_as_the_http1_lines_it_holds() {
        // "PRI * HTTP/2.0" is a request line of a version hyper refuses,
        // and the preface's blank line ends that head: nothing after it
        // passes, whatever the reads.
        for piece in [1, 3, 64] {
            assert_eq!(
                run(b"PRI * HTTP/2.0\r\n\r\nXY", piece),
                (18, Verdict::Stop),
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn well_framed_requests_pass_whole_in_any_pieces() {
        let mut two = chunked("5");
        two.extend_from_slice(b"POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
        two.extend_from_slice(&chunked("0000000000000005;ext=1"));
        two.extend_from_slice(
            b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
        );
        two.extend_from_slice(b"\r\nGET /d HTTP/1.0\r\n\r\n");
        for piece in [1, 3, 7, two.len()] {
            assert_eq!(
                run(&two, piece),
                (two.len(), Verdict::Go),
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn a_long_run_of_leading_zeros_is_refused_where_it_starts_to_count() {
        let head_len = chunked("").len() - "\r\nhello\r\n0\r\n\r\n".len();
        let zeros = "0".repeat(1_000_000) + "5";
        for piece in [1, 4096] {
            let (passed, verdict) = run(&chunked(&zeros), piece);
            assert_eq!(verdict, Verdict::Refuse);
            assert_eq!(passed, head_len + MAX_SIZE_DIGITS as usize);
        }
        assert_eq!(run(&chunked(&"0".repeat(17)), 1).1, Verdict::Refuse);
    }

    #[test]
    fn heads_hyper_refuses_pass_but_nothing_after_them() {
        let doubtful = [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.1\r\nX-A: 1\r\n b\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ];
        for head in doubtful {
            let bytes = format!("{head}5\r\nhello\r\n0\r\n\r\n");
            assert_eq!(
                run(bytes.as_bytes(), 1),
                (head.len(), Verdict::Stop),
                "{head:?}"
            );
        }
    }

    #[test]
    fn http2_and_upgrades_pass_through() {
        let mut h2 = PREFACE.to_vec();
        h2.extend_from_slice(&[0; 64]);
        assert_eq!(run(&h2, 5), (h2.len(), Verdict::Go));
        let upgrade = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
        let mut bytes = upgrade.to_vec();
        bytes.extend_from_slice(&[0x82, 0x00]);
        assert_eq!(run(&bytes, 1), (upgrade.len(), Verdict::Stop));
    }

    #[test]
    fn the_answer_to_an_upgrade_decides_what_follows() {
        let upgrade = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
        for (answer, then) in [
            (&b"HTTP/1.1 101 Switching Protocols\r\n"[..], "pass"),
            (b"HTTP/1.1 400 Bad Request\r\n", "head"),
        ] {
            let mut guarded = Guarded::new(tokio::io::empty());
            assert_eq!(guarded.tracker.feed(upgrade), (upgrade.len(), Verdict::Go));
            assert!(matches!(guarded.tracker.state, State::Upgrading));
            guarded.watch_answer(&answer[..5]);
            guarded.watch_answer(&answer[5..]);
            match then {
                "pass" => assert!(matches!(guarded.tracker.state, State::Pass)),
                _ => assert!(matches!(guarded.tracker.state, State::Head(_))),
            }
        }
    }
}
