//! Clients that go away mid-request, for tests that prove the servers survive
//! it: HTTP/1.1 written by hand over a raw TCP connection, so that the test
//! decides exactly where the client stops (before sending a byte, inside the
//! body, after sending, inside the answer), and a small seeded random number
//! generator to pick those points.
//!
//! An HTTP library cannot do this: it sends whole requests and reads whole
//! answers, and its timeouts cut at points the test does not choose.

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Where a client stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cut {
    /// No cut: send everything, read the whole answer.
    Complete,
    /// Connect, then close without sending a byte.
    BeforeSending,
    /// Send the head and part of the body, then close. A request without a
    /// body sends part of its head instead.
    MidBody,
    /// Send everything, then close without reading a byte of the answer
    /// (after a random pause, so the close lands anywhere in the server's
    /// work).
    AfterSending,
    /// Send everything, read the first few bytes of the answer, then close.
    MidResponse,
}

impl Cut {
    pub const ALL: [Cut; 5] = [
        Cut::Complete,
        Cut::BeforeSending,
        Cut::MidBody,
        Cut::AfterSending,
        Cut::MidResponse,
    ];
}

/// A request to send byte by byte. Bodies are JSON.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: &'static str,
    /// Path and query, e.g. `/api/products?page=1&page_size=20`.
    pub path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Self {
        Self::new("GET", path, Vec::new())
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self::new("DELETE", path, Vec::new())
    }

    pub fn post(path: impl Into<String>, body: Vec<u8>) -> Self {
        Self::new("POST", path, body)
    }

    pub fn put(path: impl Into<String>, body: Vec<u8>) -> Self {
        Self::new("PUT", path, body)
    }

    fn new(method: &'static str, path: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header (sent in the order added).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The request line and headers, up to and including the empty line. A
    /// POST or PUT always states its length (and JSON), so the server knows
    /// when a cut body is short.
    fn head(&self, host: SocketAddr) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\nHost: {host}\r\n", self.method, self.path);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.body.is_empty() || matches!(self.method, "POST" | "PUT") {
            head.push_str("Content-Type: application/json\r\n");
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON, or `Null`.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What became of one exchange.
#[derive(Debug)]
pub enum Outcome {
    /// The whole answer was read ([`Cut::Complete`] only).
    Answered(Response),
    /// The client went away at the planned point.
    WentAway,
    /// The server closed or reset the connection before the client's planned
    /// step (for [`Cut::Complete`]: before the whole answer had arrived).
    ServerClosed(String),
    /// No connection.
    ConnectFailed(String),
}

/// Sends `request` to `server` and stops where `cut` says; `rng` picks the
/// details (where inside the body, how long a pause, how many bytes of the
/// answer) and how a cut connection closes: half the time gracefully (FIN),
/// half the time abortively (RST, as a killed client or a middlebox does).
///
/// No timeout of its own: wrap it in one.
pub async fn exchange(server: SocketAddr, request: &Request, cut: Cut, rng: &mut Rng) -> Outcome {
    let mut stream = match TcpStream::connect(server).await {
        Ok(stream) => stream,
        Err(e) => return Outcome::ConnectFailed(e.to_string()),
    };
    let _ = stream.set_nodelay(true);
    let head = request.head(server);
    let outcome = match cut {
        Cut::Complete => match send(&mut stream, &head, &request.body).await {
            Err(e) => Outcome::ServerClosed(format!("while sending: {e}")),
            Ok(()) => match read_response(&mut stream).await {
                Ok(response) => Outcome::Answered(response),
                Err(e) => Outcome::ServerClosed(format!("while reading the answer: {e}")),
            },
        },
        Cut::BeforeSending => {
            pause(rng, 5).await;
            Outcome::WentAway
        }
        Cut::MidBody => {
            let sent = if request.body.is_empty() {
                // At least one byte, never the whole head.
                let keep = 1 + rng.below(head.len() as u64 - 1) as usize;
                stream.write_all(&head[..keep]).await
            } else {
                let keep = rng.below(request.body.len() as u64) as usize;
                match stream.write_all(&head).await {
                    Ok(()) => {
                        pause(rng, 10).await;
                        stream.write_all(&request.body[..keep]).await
                    }
                    Err(e) => Err(e),
                }
            };
            match sent {
                Ok(()) => {
                    pause(rng, 10).await;
                    Outcome::WentAway
                }
                Err(e) => Outcome::ServerClosed(format!("while sending: {e}")),
            }
        }
        Cut::AfterSending => match send(&mut stream, &head, &request.body).await {
            Ok(()) => {
                pause(rng, 60).await;
                Outcome::WentAway
            }
            Err(e) => Outcome::ServerClosed(format!("while sending: {e}")),
        },
        Cut::MidResponse => match send(&mut stream, &head, &request.body).await {
            Err(e) => Outcome::ServerClosed(format!("while sending: {e}")),
            Ok(()) => {
                let mut few = vec![0_u8; rng.range(1, 16) as usize];
                match stream.read(&mut few).await {
                    Ok(0) => Outcome::ServerClosed("closed without answering".to_owned()),
                    Ok(_) => Outcome::WentAway,
                    Err(e) => Outcome::ServerClosed(format!("while reading the answer: {e}")),
                }
            }
        },
    };
    if cut != Cut::Complete && rng.chance(50) {
        // Dropped with SO_LINGER 0: the kernel sends RST instead of FIN.
        let _ = stream.set_zero_linger();
    }
    drop(stream);
    outcome
}

async fn send(stream: &mut TcpStream, head: &[u8], body: &[u8]) -> std::io::Result<()> {
    let mut whole = Vec::with_capacity(head.len() + body.len());
    whole.extend_from_slice(head);
    whole.extend_from_slice(body);
    stream.write_all(&whole).await
}

/// Sleeps 0 to `max_ms` milliseconds (no sleep at all a third of the time).
async fn pause(rng: &mut Rng, max_ms: u64) {
    if rng.chance(33) {
        return;
    }
    tokio::time::sleep(Duration::from_millis(rng.below(max_ms + 1))).await;
}

/// Reads one HTTP/1.1 answer: status line, headers, and a body framed by
/// `Content-Length`, chunked transfer coding, or the end of the connection.
async fn read_response(stream: &mut TcpStream) -> std::io::Result<Response> {
    let mut reader = Reader {
        stream,
        buffer: Vec::with_capacity(4096),
    };
    let head_end = reader.fill_until_found(b"\r\n\r\n").await? + 4;
    let head = String::from_utf8_lossy(&reader.buffer[..head_end]).into_owned();
    reader.buffer.drain(..head_end);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        reader.read_chunked().await?
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(format!("content-length {length:?}")))?;
        reader.fill_to(length).await?;
        reader.buffer.truncate(length);
        std::mem::take(&mut reader.buffer)
    } else {
        reader.stream.read_to_end(&mut reader.buffer).await?;
        std::mem::take(&mut reader.buffer)
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Bytes read from the stream and not consumed yet.
struct Reader<'a> {
    stream: &'a mut TcpStream,
    buffer: Vec<u8>,
}

impl Reader<'_> {
    /// Reads more; an error at the end of the stream.
    async fn read_more(&mut self) -> std::io::Result<()> {
        let mut chunk = [0_u8; 8192];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed mid-answer",
            ));
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }

    /// Reads until the buffer holds `needle`; returns where it starts.
    async fn fill_until_found(&mut self, needle: &[u8]) -> std::io::Result<usize> {
        loop {
            if let Some(at) = self.buffer.windows(needle.len()).position(|w| w == needle) {
                return Ok(at);
            }
            self.read_more().await?;
        }
    }

    /// Reads until the buffer holds at least `length` bytes.
    async fn fill_to(&mut self, length: usize) -> std::io::Result<()> {
        while self.buffer.len() < length {
            self.read_more().await?;
        }
        Ok(())
    }

    /// A chunked body (chunk extensions and trailers ignored).
    async fn read_chunked(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = self.fill_until_found(b"\r\n").await?;
            let line = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| invalid(format!("chunk size {line:?}")))?;
            self.buffer.drain(..line_end + 2);
            if size == 0 {
                return Ok(body);
            }
            self.fill_to(size + 2).await?;
            body.extend_from_slice(&self.buffer[..size]);
            self.buffer.drain(..size + 2);
        }
    }
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("malformed answer: {what}"),
    )
}

/// SplitMix64: a tiny random number generator, good enough to pick test
/// actions, seedable so a run can be repeated as far as timing allows.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        self.next_u64() % n
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// True `percent` times out of 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One item of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// One choice, each as likely as its weight.
    pub fn weighted<T: Copy>(&mut self, choices: &[(T, u64)]) -> T {
        let total: u64 = choices.iter().map(|(_, weight)| weight).sum();
        let mut roll = self.below(total);
        for &(choice, weight) in choices {
            if roll < weight {
                return choice;
            }
            roll -= weight;
        }
        unreachable!("roll < total")
    }
}

/// A seed that differs from run to run.
pub fn seed_from_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos() as u64
}
