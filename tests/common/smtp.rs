//! A real SMTP server for tests (mailin-embedded), collecting what it receives.

use std::{
    net::{SocketAddr, TcpListener},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use mailin_embedded::{Handler, Server, SslConfig, response::Response};

#[derive(Clone, Default)]
struct Collect {
    current: Vec<u8>,
    inbox: Arc<Mutex<Vec<String>>>,
}

impl Handler for Collect {
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let raw = String::from_utf8_lossy(&std::mem::take(&mut self.current)).into_owned();
        self.inbox.lock().unwrap().push(raw);
        mailin_embedded::response::OK
    }
}

/// A running test SMTP server.
pub struct SmtpServer {
    pub addr: SocketAddr,
    inbox: Arc<Mutex<Vec<String>>>,
}

impl SmtpServer {
    /// Start on a free port.
    pub fn start() -> SmtpServer {
        Self::start_on(TcpListener::bind("127.0.0.1:0").expect("bind smtp"))
    }

    /// Start on a given listener (e.g. a port that was down before).
    pub fn start_on(listener: TcpListener) -> SmtpServer {
        let addr = listener.local_addr().unwrap();
        let handler = Collect::default();
        let inbox = handler.inbox.clone();
        let mut server = Server::new(handler);
        server
            .with_name("test.smtp")
            .with_ssl(SslConfig::None)
            .expect("ssl config")
            .with_num_threads(8)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer { addr, inbox }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn messages(&self) -> Vec<String> {
        self.inbox.lock().unwrap().clone()
    }

    /// Wait (with a deadline) until `n` messages have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let msgs = self.messages();
            if msgs.len() >= n || Instant::now() > deadline {
                return msgs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Decode a quoted-printable or base64 text body well enough to search it.
pub fn decoded(raw: &str) -> String {
    use base64::Engine as _;
    let mut out = raw.replace("=\r\n", "").replace("=\n", "");
    // Decode =XX escapes (quoted-printable).
    let bytes = out.as_bytes();
    let mut buf = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            buf.push(b);
            i += 3;
            continue;
        }
        buf.push(bytes[i]);
        i += 1;
    }
    out = String::from_utf8_lossy(&buf).into_owned();
    // Append base64-decoded blocks too.
    let mut extra = String::new();
    for block in raw.split("\r\n\r\n") {
        let joined: String = block
            .lines()
            .map(str::trim)
            .take_while(|l| !l.starts_with("--") && !l.is_empty())
            .collect();
        if joined.len() > 16
            && let Ok(b) = base64::engine::general_purpose::STANDARD.decode(joined.as_bytes())
        {
            extra.push_str(&String::from_utf8_lossy(&b));
        }
    }
    out + &extra
}
