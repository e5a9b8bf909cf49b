//! tokio_mt_server --workload echo|http --port P [--threads T]
//!
//! The echo and http servers of shared/bench/WORKLOADS.md on Tokio's
//! `multi_thread` runtime with `worker_threads(T)` (default 2): what a Tokio
//! user gets from the plain API, one listener whose connections are spawned
//! with `tokio::spawn` and placed by Tokio's scheduler. corio-bench's
//! `--threads T` servers are compared against it (README, "Multi-core").
//! Serves 127.0.0.1:P until SIGTERM or SIGINT, then prints one JSON line.
//!
//! echo: every byte read is written back. http: HTTP/1.1 keep-alive, one
//! "Hello, World!" response per request head; bodies given by
//! Content-Length are skipped; `Connection: close` and HTTP/1.0 close after
//! the response; chunked bodies and bad lengths get a 400 and a close.
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

mod rusage;
use rusage::peak_rss_kb;

static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const OK_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!";
const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const BUFFER: usize = 64 * 1024;

async fn echo(mut s: TcpStream) {
    let mut buf = vec![0u8; BUFFER];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// What one request head asks of the connection.
enum Head {
    Serve { keep_alive: bool, body: usize },
    Bad,
}

/// `bytes` without the spaces, tabs and carriage returns around it (Debian 12's
/// Rust 1.63 has no `trim_ascii`, nor let-else).
fn trim(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !blank(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn header_value_has(value: &[u8], word: &[u8]) -> bool {
    value.windows(word.len()).any(|w| w.eq_ignore_ascii_case(word))
}

fn read_head(head: &[u8]) -> Head {
    let mut lines = head.split(|&b| b == b'\n');
    let request_line = lines.next().unwrap_or_default();
    let mut keep_alive = !trim(request_line).ends_with(b"HTTP/1.0");
    let mut body = 0usize;
    for line in lines {
        let colon = match line.iter().position(|&b| b == b':') {
            Some(colon) => colon,
            None => continue,
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            match std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) {
                Some(n) if value.iter().all(u8::is_ascii_digit) => body = n,
                _ => return Head::Bad,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Head::Bad;
        } else if name.eq_ignore_ascii_case(b"connection") {
            if header_value_has(value, b"close") {
                keep_alive = false;
            } else if header_value_has(value, b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    Head::Serve { keep_alive, body }
}

fn find_end_of_head(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

async fn http(mut s: TcpStream) {
    let mut buf = vec![0u8; BUFFER];
    let mut out = Vec::with_capacity(1024);
    let (mut filled, mut body_left) = (0usize, 0usize);
    let mut open = true;
    while open {
        let n = match s.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        filled += n;
        let mut at = body_left.min(filled);
        body_left -= at;
        out.clear();
        while open && at < filled {
            let end = match find_end_of_head(&buf[at..filled]) {
                Some(end) => end,
                None => break,
            };
            match read_head(&buf[at..at + end]) {
                Head::Bad => {
                    out.extend_from_slice(BAD);
                    open = false;
                }
                Head::Serve { keep_alive, body } => {
                    REQUESTS.fetch_add(1, Relaxed);
                    out.extend_from_slice(if keep_alive { OK } else { OK_CLOSE });
                    open = keep_alive;
                    at += end + 4;
                    let here = body.min(filled - at);
                    at += here;
                    body_left = body - here;
                }
            }
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        if open && filled == BUFFER {
            out.extend_from_slice(BAD); // a head larger than the buffer
            open = false;
        }
        if !out.is_empty() && s.write_all(&out).await.is_err() {
            return;
        }
    }
    let _ = s.shutdown().await;
}

fn usage(message: &str) -> ! {
    eprintln!("tokio_mt_server: {message}\nusage: tokio_mt_server --workload echo|http --port P [--threads T]");
    std::process::exit(2);
}

fn main() {
    let (mut workload, mut port, mut threads) = (String::new(), 0u16, 2usize);
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).unwrap_or_else(|| usage("an option without a value"));
        match pair[0].as_str() {
            "--workload" => workload = value.clone(),
            "--port" => port = value.parse().unwrap_or_else(|_| usage("bad --port")),
            "--threads" => threads = value.parse().unwrap_or_else(|_| usage("bad --threads")),
            other => usage(&format!("unknown option {other}")),
        }
    }
    if workload != "echo" && workload != "http" {
        usage("--workload must be echo or http");
    }
    if threads == 0 {
        usage("--threads must be >= 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a runtime");
    let is_http = workload == "http";
    runtime.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(([127, 0, 0, 1], port).into()).unwrap_or_else(|e| usage(&format!("bind: {e}")));
        let listener = socket.listen(1024).expect("listen");
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT");
        tokio::spawn(async move {
            loop {
                let s = match listener.accept().await {
                    Ok((s, _)) => s,
                    Err(_) => continue,
                };
                CONNECTIONS.fetch_add(1, Relaxed);
                let _ = s.set_nodelay(true);
                if is_http {
                    tokio::spawn(http(s));
                } else {
                    tokio::spawn(echo(s));
                }
            }
        });
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    });
    println!(
        "{{\"impl\":\"tokio-mt\",\"role\":\"server\",\"workload\":\"{workload}\",\"threads\":{threads},\
         \"conns\":{},\"requests\":{},\"peak_rss_kb\":{}}}",
        CONNECTIONS.load(Relaxed),
        REQUESTS.load(Relaxed),
        peak_rss_kb()
    );
    drop(runtime); // open connections' tasks are dropped with the runtime
}
