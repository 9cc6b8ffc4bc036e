//! A recording HTTP/1.1 server that stands in for searchd (or for another
//! Buddy). It keeps every request exactly as it came off the wire (header
//! names, order and body bytes), which an HTTP library would normalise, and
//! answers with scripted replies. Connections behave as searchd's do (golden
//! facts §6): kept open after a 2xx reply, closed right after any other reply,
//! without a `Connection` header; so connection reuse by the client, and
//! reuse that must not happen, are visible too.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/sql?mode=raw`.
    pub target: String,
    /// Header lines in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Which accepted connection carried it (0, 1, …).
    pub connection: usize,
    /// Its position among the requests of that connection (0, 1, …).
    pub on_connection: usize,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        super::find_header(&self.headers, name)
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct FakeReply {
    pub status: u16,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Close the connection instead of answering (a server that restarted,
    /// or closed an idle connection as the request arrived).
    pub hang_up: bool,
}

impl FakeReply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            body: body.into(),
            delay: Duration::ZERO,
            hang_up: false,
        }
    }

    /// Closes the connection without a reply.
    pub fn hang_up() -> Self {
        Self {
            hang_up: true,
            ..Self::new(0, "")
        }
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// How long after an error reply the connection is closed.
const CLOSE_AFTER_ERROR: Duration = Duration::from_millis(5);

type Responder = dyn Fn(&Recorded) -> FakeReply + Send + Sync;

/// The server; it runs until the test process ends.
pub struct FakeHttp {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeHttp {
    /// Answers every request with `reply`.
    pub fn replying(reply: FakeReply) -> Self {
        Self::start(move |_| reply.clone())
    }

    pub fn start(responder: impl Fn(&Recorded) -> FakeReply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let responder: Arc<Responder> = Arc::new(responder);
        let recorded = Arc::clone(&requests);
        std::thread::spawn(move || {
            for (connection, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let (recorded, responder) = (Arc::clone(&recorded), Arc::clone(&responder));
                std::thread::spawn(move || serve(stream, connection, &recorded, &*responder));
            }
        });
        Self { addr, requests }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    connection: usize,
    recorded: &Mutex<Vec<Recorded>>,
    responder: &Responder,
) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    let mut on_connection = 0;
    while let Some(mut request) = read_request(&mut reader, connection) {
        request.on_connection = on_connection;
        on_connection += 1;
        recorded.lock().unwrap().push(request.clone());
        let reply = responder(&request);
        std::thread::sleep(reply.delay);
        if reply.hang_up {
            return;
        }
        let head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reply.status,
            reply.body.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&reply.body).is_err() {
            return;
        }
        if !(200..300).contains(&reply.status) {
            // searchd closes after every reply that is not 2xx, as it ends
            // the request: a moment after the reply, without reading what
            // the client sent meanwhile (which makes the close a reset).
            std::thread::sleep(CLOSE_AFTER_ERROR);
            return;
        }
    }
}

fn read_request(reader: &mut impl BufRead, connection: usize) -> Option<Recorded> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut parts = request_line.trim_end().splitn(3, ' ');
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        target,
        headers,
        body,
        connection,
        on_connection: 0,
    })
}
