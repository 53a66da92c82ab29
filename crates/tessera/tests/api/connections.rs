//! Slow and numerous connections: a client cannot hold the server with half-sent requests,
//! idle kept-alive connections, or more connections than the server serves at once. Spoken
//! over raw sockets, since an HTTP client sends whole requests.

use crate::helpers::{fresh_database_url, test_config};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera::clock::ManualClock;
use tessera::startup::{Application, ConnectionLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A running server with `limits`; it stops when the returned sender is dropped.
struct Server {
    address: SocketAddr,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn serve_with(limits: ConnectionLimits) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&fresh_database_url(dir.path()).await);
    let app = Application::build(&config, Arc::new(ManualClock::new())).await.unwrap().with_limits(limits);
    let address = app.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    Server { address, _stop: stop, _dir: dir }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: tessera.test\r\n\r\n";

/// Reads until the answer to `GET /healthz` is complete; panics after `within`.
async fn read_health_answer(stream: &mut TcpStream, within: Duration) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        while !String::from_utf8_lossy(&answer).contains(r#"{"status":"ok"}"#) {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before the answer: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no answer within {within:?}: {}", String::from_utf8_lossy(&answer)));
    String::from_utf8(answer).unwrap()
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
/// Panics if the connection is still open after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Instant) {
    let mut sent = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(n) => sent.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server kept the connection open for {within:?}"));
    (String::from_utf8_lossy(&sent).into_owned(), closed)
}

#[tokio::test]
async fn a_connection_that_sends_half_a_request_head_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_secs(1);
    let server = serve_with(ConnectionLimits { header_read_timeout: timeout, ..ConnectionLimits::default() }).await;
    let mut slow = TcpStream::connect(server.address).await.unwrap();
    let started = Instant::now();

    // A request line and one header, then nothing: the blank line never comes.
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: tessera.test\r\n").await.unwrap();

    let (sent, closed) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    let open_for = closed - started;
    assert!(open_for >= timeout - Duration::from_millis(100), "closed after {open_for:?}, before the timeout");
    assert!(!sent.contains("200 OK"), "the half request was answered: {sent}");
}

#[tokio::test]
async fn a_request_head_sent_byte_by_byte_slower_than_the_timeout_is_cut_off() {
    let timeout = Duration::from_secs(1);
    let server = serve_with(ConnectionLimits { header_read_timeout: timeout, ..ConnectionLimits::default() }).await;
    let mut slow = TcpStream::connect(server.address).await.unwrap();
    let started = Instant::now();

    // Each byte arrives well within the timeout, the whole head does not: the deadline is
    // for the head, not for each read.
    let mut cut_off = false;
    for byte in HEALTHZ {
        if slow.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    if !cut_off {
        let (sent, _) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
        assert!(!sent.contains("200 OK"), "the slow request was answered: {sent}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_kept_alive_connection_left_idle_is_closed() {
    let timeout = Duration::from_secs(1);
    let server = serve_with(ConnectionLimits { header_read_timeout: timeout, ..ConnectionLimits::default() }).await;
    let mut idle = TcpStream::connect(server.address).await.unwrap();
    idle.write_all(HEALTHZ).await.unwrap();
    let answer = read_health_answer(&mut idle, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let answered = Instant::now();

    let (sent, closed) = read_until_closed(&mut idle, Duration::from_secs(10)).await;

    assert!(closed - answered >= timeout - Duration::from_millis(100), "closed after {:?}", closed - answered);
    assert!(!sent.contains("200 OK"), "{sent}");
}

#[tokio::test]
async fn requests_within_the_timeout_are_served_on_one_kept_alive_connection() {
    let server = serve_with(ConnectionLimits { header_read_timeout: Duration::from_secs(2), ..ConnectionLimits::default() }).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    for _ in 0..3 {
        stream.write_all(HEALTHZ).await.unwrap();
        let answer = read_health_answer(&mut stream, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let server = serve_with(ConnectionLimits { header_read_timeout: Duration::from_secs(30), max_connections: 2 }).await;
    // Two kept-alive connections, each answered once, take both places.
    let mut first = TcpStream::connect(server.address).await.unwrap();
    first.write_all(HEALTHZ).await.unwrap();
    read_health_answer(&mut first, Duration::from_secs(5)).await;
    let mut second = TcpStream::connect(server.address).await.unwrap();
    second.write_all(HEALTHZ).await.unwrap();
    read_health_answer(&mut second, Duration::from_secs(5)).await;

    let mut third = TcpStream::connect(server.address).await.unwrap();
    third.write_all(HEALTHZ).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(700), third.read(&mut buf)).await;
    assert!(early.is_err(), "a third connection was served beyond the cap of two: {early:?}");

    drop(first);

    let answer = read_health_answer(&mut third, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    // The second one is still served.
    second.write_all(HEALTHZ).await.unwrap();
    read_health_answer(&mut second, Duration::from_secs(5)).await;
}
