//! Requests that are slow, silent or too large, against the real binary: a header-read
//! timeout, a whole-request timeout, a cap on connections, and one body limit in front of
//! every route, counted as the bytes arrive.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{Backend, TestDatabase};
use crate::on_both_backends;
use crate::Binary;

on_both_backends!(
    slow_and_silent_clients_are_cut_off_and_starve_no_one,
    http2_is_for_the_balancer_and_a_connection_that_never_says_its_version_is_cut_off,
    connections_are_capped,
    one_address_cannot_take_every_connection,
    a_client_that_stops_reading_is_cut_off,
    a_body_that_stops_arriving_gets_408,
    a_stalled_upload_is_cut_off,
    every_body_is_bounded_as_it_arrives,
    a_huge_form_body_does_not_grow_the_server,
);

/// A connection from the loopback address `127.0.0.{host}` (the loopback range stands for
/// several client machines).
async fn connect_from(host: u8, server: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, host], 0)))
        .unwrap();
    let stream = socket.connect(server.parse().unwrap()).await.unwrap();
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Whether the server has closed this connection (or reset it).
fn is_closed(mut stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            // A 408 or 400 written on the way out; the close follows.
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// Waits (at most `secs`) until every connection is closed.
fn wait_all_closed(streams: &[TcpStream], secs: u64) -> usize {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let open = streams.iter().filter(|s| !is_closed(s)).count();
        if open == 0 || Instant::now() > until {
            return open;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The review held three half-sent requests and a silent connection open for 75 s, and they
/// were still served after. Here 499 half-sent requests and one silent connection, from
/// five client addresses, wait; normal requests from another address are answered while
/// they do, and the server closes all 500 after its header-read timeout.
async fn slow_and_silent_clients_are_cut_off_and_starve_no_one(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let server = Binary::serve(&db, &[("CONFIDE__SERVER__HEADER_READ_TIMEOUT_SECS", "4")]);
    let mut slow = Vec::new();
    for i in 0..500 {
        let mut stream = connect_from(2 + (i % 5) as u8, &server.address).await;
        if i > 0 {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: confide\r\nX-Slow: ")
                .unwrap();
        }
        slow.push(stream);
    }
    let client = reqwest::Client::new();
    for _ in 0..10 {
        let resp = client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // The normal requests did not wait for the slow ones to be dropped.
    let open = slow.iter().filter(|s| !is_closed(s)).count();
    assert_eq!(open, 500, "the slow connections were still open meanwhile");
    assert_eq!(wait_all_closed(&slow, 20), 0, "all cut off");
    // A kept-alive connection that goes quiet is closed the same way.
    let mut idle = TcpStream::connect(&server.address).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: confide\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 256];
    let n = idle.read(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    assert_eq!(wait_all_closed(std::slice::from_ref(&idle), 20), 0);
}

/// From a load balancer's address (`server.http2_balancers`), the first bytes of a
/// connection tell HTTP/1.1 from HTTP/2, and a connection that stops before they do is cut
/// off like a slow request head: half of HTTP/2's preface, half of a request line, nothing
/// at all. Both versions are served to the balancer; anyone else gets HTTP/1.1 only.
async fn http2_is_for_the_balancer_and_a_connection_that_never_says_its_version_is_cut_off(
    backend: Backend,
) {
    let db = TestDatabase::create(backend).await;
    let server = Binary::serve(
        &db,
        &[
            ("CONFIDE__SERVER__HTTP2_BALANCERS", "[\"127.0.0.1\"]"),
            ("CONFIDE__SERVER__HEADER_READ_TIMEOUT_SECS", "3"),
        ],
    );
    let mut stalled = Vec::new();
    for start in [&b"PRI * HTTP/2"[..], b"POST /api/v1/sess", b""] {
        let mut stream = TcpStream::connect(&server.address).unwrap();
        stream.write_all(start).unwrap();
        stalled.push(stream);
    }
    let h2 = |from: [u8; 4]| {
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .local_address(std::net::IpAddr::from(from))
            .build()
            .unwrap()
    };
    let healthz = format!("{}/healthz", server.base);
    let resp = reqwest::get(&healthz).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    let resp = h2([127, 0, 0, 1]).get(&healthz).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    // From another address, HTTP/2's preface is no HTTP/1.1 request.
    let elsewhere = h2([127, 0, 0, 2]).get(&healthz).send().await;
    assert!(elsewhere.is_err(), "{elsewhere:?}");

    assert_eq!(stalled.iter().filter(|s| !is_closed(s)).count(), 3);
    assert_eq!(wait_all_closed(&stalled, 15), 0, "all cut off");
}

/// With `server.max_connections` open, another connection waits until one closes.
async fn connections_are_capped(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let server = Binary::serve(
        &db,
        &[
            ("CONFIDE__SERVER__MAX_CONNECTIONS", "8"),
            ("CONFIDE__SERVER__HEADER_READ_TIMEOUT_SECS", "3"),
        ],
    );
    let held: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(&server.address).unwrap())
        .collect();
    // The kernel accepts the ninth into its backlog; the server does not serve it yet.
    let mut ninth = TcpStream::connect(&server.address).unwrap();
    ninth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: confide\r\nConnection: close\r\n\r\n")
        .unwrap();
    ninth
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut answer = Vec::new();
    let early = ninth.read_to_end(&mut answer);
    assert!(
        early.is_err() && answer.is_empty(),
        "served beyond the cap: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // Once the held ones time out, it is served.
    ninth
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    ninth.read_to_end(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert_eq!(wait_all_closed(&held, 20), 0);
}

/// One client opening connection after connection gets its share, not the server.
async fn one_address_cannot_take_every_connection(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let server = Binary::serve(
        &db,
        &[
            ("CONFIDE__SERVER__MAX_CONNECTIONS_PER_ADDRESS", "4"),
            ("CONFIDE__SERVER__HEADER_READ_TIMEOUT_SECS", "30"),
        ],
    );
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&server.address).unwrap())
        .collect();
    // The fifth from the same address is closed at once, unanswered.
    let mut fifth = TcpStream::connect(&server.address).unwrap();
    let _ = fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: confide\r\n\r\n");
    fifth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let ended = fifth.read_to_end(&mut answer);
    assert!(
        match &ended {
            Ok(_) => true,
            Err(e) => e.kind() == ErrorKind::ConnectionReset,
        },
        "closed, not left hanging: {ended:?}"
    );
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    // Once one of the four closes, the address is served again.
    drop(held);
    let mut served = false;
    for _ in 0..50 {
        let resp = reqwest::get(format!("{}/healthz", server.base)).await;
        if resp.is_ok_and(|r| r.status() == StatusCode::OK) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served);
}

/// A client that asks for large answers and never reads them does not hold its connection
/// (and the server's memory for it) forever.
async fn a_client_that_stops_reading_is_cut_off(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    Binary::create_practice(&db, &[]);
    let server = Binary::serve(&db, &[("CONFIDE__SERVER__SEND_TIMEOUT_SECS", "2")]);
    let token = server.admin_token().await;
    let mut text = "a line of notes\n".repeat(10 * 1024 * 1024 / 16);
    text.truncate(10 * 1024 * 1024);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(text.into_bytes()).file_name("notes.txt"),
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/attachments", server.base))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let upload: serde_json::Value = resp.json().await.unwrap();
    let id = upload["attachments"][0]["id"].as_str().unwrap();
    // Three downloads asked for at once (30 MiB, more than the sockets' buffers hold),
    // and nothing read for a while.
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let request =
        format!("GET /api/v1/attachments/{id} HTTP/1.1\r\nHost: confide\r\nAuthorization: Bearer {token}\r\n\r\n");
    stream.write_all(request.repeat(3).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(6));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let mut start = Vec::new();
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if start.len() < 16 {
                    start.extend_from_slice(&buf[..n.min(16)]);
                }
                received += n;
            }
        }
    }
    assert!(
        start.starts_with(b"HTTP/1.1 200"),
        "the download began: {:?}",
        String::from_utf8_lossy(&start)
    );
    assert!(received > 1024 * 1024, "some of it came: {received} bytes");
    assert!(
        received < 3 * 10 * 1024 * 1024,
        "the server kept the connection for all {received} bytes"
    );
}

/// A request whose body stops arriving is answered 408 after the request timeout, not held.
async fn a_body_that_stops_arriving_gets_408(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let server = Binary::serve(&db, &[("CONFIDE__SERVER__REQUEST_TIMEOUT_SECS", "2")]);
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream
        .write_all(
            b"POST /api/v1/sessions HTTP/1.1\r\nHost: confide\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"practice\":",
        )
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = [0u8; 1024];
    let n = stream.read(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

/// A streamed upload that sends nothing more is cut off after `server.body_idle_timeout_secs`
/// and leaves nothing behind.
async fn a_stalled_upload_is_cut_off(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    Binary::create_practice(&db, &[]);
    let server = Binary::serve(&db, &[("CONFIDE__SERVER__BODY_IDLE_TIMEOUT_SECS", "2")]);
    let token = server.admin_token().await;
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let head = format!(
        "POST /api/v1/attachments HTTP/1.1\r\nHost: confide\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 100000\r\n\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nthe first few words"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = [0u8; 1024];
    let n = stream.read(&mut answer).unwrap_or(0);
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert_eq!(wait_all_closed(std::slice::from_ref(&stream), 20), 0);
    let tmp = db.data_dir().join("tmp");
    let left = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "nothing staged is left in {}", tmp.display());
}

/// One limit for every route, on the bytes as they arrive: forms 64 KiB (answered with a
/// page), JSON 1 MiB (answered with problem+json), whether the length is declared, false
/// or missing.
async fn every_body_is_bounded_as_it_arrives(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let server = Binary::serve(&db, &[]);
    let client = reqwest::Client::new();
    let form = format!("password={}", "a".repeat(100 * 1024));
    // Declared length, then none at all (chunked).
    let declared = client
        .post(format!("{}/password-resets/abc", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.clone())
        .send()
        .await
        .unwrap();
    let chunks: Vec<Result<String, std::io::Error>> = form
        .as_bytes()
        .chunks(8192)
        .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
        .collect();
    let chunked = client
        .post(format!("{}/password-resets/abc", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    for resp in [declared, chunked] {
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(resp.text().await.unwrap().contains("too large"));
    }
    // A form just under the limit reaches the page (which then finds no valid form).
    let small = client
        .post(format!("{}/password-resets/abc", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("password={}", "a".repeat(60 * 1024)))
        .send()
        .await
        .unwrap();
    assert_ne!(small.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // JSON over 1 MiB, chunked, to a route that reads JSON.
    let json = format!("{{\"practice\": \"{}\"}}", "a".repeat(1024 * 1024 + 10));
    let chunks: Vec<Result<String, std::io::Error>> = json
        .as_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
        .collect();
    let resp = client
        .post(format!("{}/api/v1/password-resets", server.base))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "payload_too_large");
    // A Content-Length smaller than the body sent: the server reads only what was
    // declared, and the rest is no request of its own.
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let lying = format!(
        "POST /password-resets/abc HTTP/1.1\r\nHost: confide\r\nContent-Type: \
         application/x-www-form-urlencoded\r\nContent-Length: 10\r\nConnection: close\r\n\r\n\
         password=a{}",
        "b".repeat(100 * 1024)
    );
    stream.write_all(lying.as_bytes()).unwrap();
    let mut answer = [0u8; 64];
    let n = stream.read(&mut answer).unwrap();
    assert!(!String::from_utf8_lossy(&answer[..n]).contains(" 500 "));
}

/// The review sent 300 MiB to a password-reset form and the server's memory went from
/// 178 MB to 904 MB. Now it stops reading at 64 KiB: its peak grows by a few MiB at most.
async fn a_huge_form_body_does_not_grow_the_server(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let server = Binary::serve(&db, &[]);
    // Warm up: the first requests allocate what every request needs.
    let client = reqwest::Client::new();
    for _ in 0..5 {
        client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap();
    }
    let before = server.peak_memory_kib();
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream
        .write_all(
            b"POST /password-resets/abc HTTP/1.1\r\nHost: confide\r\nContent-Type: \
              application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
    let chunk = vec![b'a'; 1024 * 1024];
    let mut sent = 0usize;
    for _ in 0..300 {
        let header = format!("{:x}\r\n", chunk.len());
        let ok = stream.write_all(header.as_bytes()).is_ok()
            && stream.write_all(&chunk).is_ok()
            && stream.write_all(b"\r\n").is_ok();
        if !ok {
            break;
        }
        sent += chunk.len();
    }
    assert!(sent < 300 * 1024 * 1024, "the server stopped reading");
    let after = server.peak_memory_kib();
    assert!(
        after < before + 16 * 1024,
        "peak memory went from {before} KiB to {after} KiB"
    );
}
