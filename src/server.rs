//! The HTTP/1.1 server: poem's endpoint behind an accept loop of our own, because poem
//! builds hyper without a timer, which silently turns hyper's header-read timeout off.
//! Here every connection has one (it also closes kept-alive connections that sit idle); a
//! response the client stops reading is cut off; at most `server.max_connections` are open
//! at once (beyond that, new connections wait in the kernel's backlog until one closes)
//! and at most `server.max_connections_per_address` from one address, so that one client
//! cannot take every slot. A connection from an address in `server.http2_balancers` that
//! opens with HTTP/2's preface (a load balancer speaking HTTP/2 without TLS) is served as
//! HTTP/2: its streams share the connection, which matters for event streams held open by
//! many people. The balancer then bounds its own connections (idle ones, a stream its
//! client stops reading); Confide still cuts off a connection that stops reading.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use poem::endpoint::BoxEndpoint;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::{Endpoint, EndpointExt, IntoEndpoint, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// What bounds each connection.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// A connection must send a whole request head within this; the same bound closes a
    /// kept-alive connection that sends nothing.
    pub header_read_timeout: Duration,
    /// A response the client reads nothing of for this long is cut off.
    pub send_timeout: Duration,
    pub max_connections: usize,
    /// `None`: no cap per address (behind a proxy, every connection comes from it).
    pub max_per_address: Option<usize>,
    /// How long requests in flight may finish after shutdown is asked for.
    pub grace: Duration,
    /// From these addresses (load balancers), a connection that opens with HTTP/2's preface
    /// is served as HTTP/2 (h2c, prior knowledge); from others, HTTP/1.1 only.
    pub http2_from: Arc<[IpAddr]>,
}

/// Requests open at once on one HTTP/2 connection (hyper's default, set here so that an
/// upgrade of hyper cannot change it).
const HTTP2_MAX_STREAMS: u32 = 200;

/// How often an HTTP/2 connection is pinged, and how long the answer may take: a peer
/// that has gone away does not hold its connection.
const HTTP2_PING: Duration = Duration::from_secs(20);

/// The first bytes of an HTTP/2 connection without TLS (RFC 9113 §3.4).
const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

type ResponseBody = http_body_util::combinators::BoxBody<Bytes, io::Error>;

/// Open connections per client address.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection counted against its address until dropped.
struct AddressSlot {
    counts: Arc<PerAddress>,
    ip: IpAddr,
}

/// The address a connection counts against: an IPv6 client's whole /64 (one subscriber
/// usually has one, and may pick any address in it), an IPv4-mapped one as IPv4.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let ip = client_key(ip);
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// A socket whose writes fail once they have made no progress for `limit`: a client that
/// stops reading its answer cannot hold the connection forever.
struct SendTimeout<T> {
    inner: T,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> SendTimeout<T> {
    fn new(inner: T, limit: Duration) -> Self {
        SendTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// After the inner write answered Pending: fails once the stall has lasted `limit`.
    fn check_stall<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SendTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.check_stall(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.check_stall(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.check_stall(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A socket whose first bytes, already read to tell HTTP/1.1 from HTTP/2, are read again.
struct Rewound<T> {
    head: [u8; HTTP2_PREFACE.len()],
    at: usize,
    len: usize,
    /// An error of the read that followed the replayed bytes, for the next read.
    failed: Option<io::Error>,
    inner: T,
}

impl<T: AsyncRead + Unpin> Rewound<T> {
    /// Reads from `inner` until its bytes differ from HTTP/2's preface or are all of it:
    /// whether it is HTTP/2, and the socket with those bytes to be read again. `None` when
    /// the peer closes first.
    async fn sniff(mut inner: T) -> io::Result<Option<(bool, Self)>> {
        use tokio::io::AsyncReadExt;
        let mut head = [0u8; HTTP2_PREFACE.len()];
        let mut len = 0;
        while len < head.len() && head[..len] == HTTP2_PREFACE[..len] {
            match inner.read(&mut head[len..]).await? {
                0 => return Ok(None),
                n => len += n,
            }
        }
        let http2 = head[..len] == HTTP2_PREFACE[..];
        Ok(Some((
            http2,
            Rewound {
                head,
                at: 0,
                len,
                failed: None,
                inner,
            },
        )))
    }

    /// Without sniffing: HTTP/1.1.
    fn plain(inner: T) -> Self {
        Rewound {
            head: [0; HTTP2_PREFACE.len()],
            at: 0,
            len: 0,
            failed: None,
            inner,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewound<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.len {
            let n = (self.len - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.head[at..at + n]);
            self.at += n;
            // With what has arrived after them, if anything: hyper sizes its read buffer
            // by what a read brings, and a first read of only these bytes would make it
            // reserve a second 8 KiB for the rest of the request head.
            if self.at == self.len && buf.remaining() > 0 {
                if let Poll::Ready(Err(e)) = Pin::new(&mut self.inner).poll_read(cx, buf) {
                    self.failed = Some(e);
                }
            }
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewound<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves `ep` on `acceptor` until `shutdown` resolves, then lets requests in flight
/// finish (for at most `limits.grace`) and ends the connections still open.
pub async fn serve<E>(
    mut acceptor: TcpAcceptor,
    ep: E,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    E: IntoEndpoint,
    E::Endpoint: 'static,
{
    let ep: SharedEndpoint = Arc::new(ep.into_endpoint().map_to_response().boxed());
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let Some(permit) = next_permit(&permits, &mut connections, &mut shutdown).await else {
            break;
        };
        let Some(accepted) = next_accepted(&mut acceptor, &mut connections, &mut shutdown).await
        else {
            break;
        };
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was taken:
                // wait a moment rather than spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match (limits.max_per_address, accepted.2.as_socket_addr()) {
            (Some(max), Some(addr)) => match per_address.take(addr.ip(), max) {
                Some(slot) => Some(slot),
                // Closed at once: this address holds its share already.
                None => continue,
            },
            _ => None,
        };
        let held = (permit, slot);
        connections.spawn(serve_connection(
            ep.clone(),
            accepted,
            held,
            limits.clone(),
            stop_rx.clone(),
        ));
    }
    finish_connections(stop_tx, connections, limits.grace).await;
    Ok(())
}

/// What a connection's service answers a request with.
type ResponseFuture = std::pin::Pin<
    Box<dyn Future<Output = Result<poem::http::Response<ResponseBody>, Infallible>> + Send>,
>;

/// The endpoint every connection answers with.
type SharedEndpoint = Arc<BoxEndpoint<'static, Response>>;

/// A connection as the acceptor hands it over: the socket, both addresses and the scheme.
type Accepted = (
    <TcpAcceptor as Acceptor>::Io,
    poem::web::LocalAddr,
    poem::web::RemoteAddr,
    poem::http::uri::Scheme,
);

/// What a connection holds while it is open: its place among `max_connections` and, when
/// capped, among its address's.
type Held = (OwnedSemaphorePermit, Option<AddressSlot>);

/// Waits for a free connection slot, reaping finished connections meanwhile; `None` once
/// `shutdown` resolves (or the slots are closed).
async fn next_permit<S>(
    permits: &Arc<Semaphore>,
    connections: &mut JoinSet<()>,
    shutdown: &mut S,
) -> Option<OwnedSemaphorePermit>
where
    S: Future<Output = ()> + Unpin,
{
    loop {
        tokio::select! {
            _ = &mut *shutdown => return None,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            permit = permits.clone().acquire_owned() => return permit.ok(),
        }
    }
}

/// Waits for the next connection (or the error accepting it), reaping finished
/// connections meanwhile; `None` once `shutdown` resolves.
async fn next_accepted<S>(
    acceptor: &mut TcpAcceptor,
    connections: &mut JoinSet<()>,
    shutdown: &mut S,
) -> Option<io::Result<Accepted>>
where
    S: Future<Output = ()> + Unpin,
{
    loop {
        tokio::select! {
            _ = &mut *shutdown => return None,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = acceptor.accept() => return Some(accepted),
        }
    }
}

/// Serves one connection with `ep` until it closes, or until `stop` turns true: then the
/// requests in flight are finished and the connection closed. `_held` is released at the end.
async fn serve_connection(
    ep: SharedEndpoint,
    (socket, local_addr, remote_addr, scheme): Accepted,
    _held: Held,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let balancer = remote_addr
        .as_socket_addr()
        .is_some_and(|a| limits.http2_from.contains(&a.ip().to_canonical()));
    // The request's future is boxed: hyper keeps room for it as long as the connection
    // lives, so a connection kept open (an event stream, keep-alive) holds a pointer, not
    // the whole request.
    let service = hyper::service::service_fn(move |req: poem::http::Request<Incoming>| {
        let ep = ep.clone();
        let request: poem::Request =
            (req, local_addr.clone(), remote_addr.clone(), scheme.clone()).into();
        let respond: ResponseFuture = Box::pin(async move {
            let response = ep.get_response(request).await;
            Ok(poem::http::Response::<ResponseBody>::from(response))
        });
        respond
    });
    let socket = SendTimeout::new(socket, limits.send_timeout);
    let mut header_read_timeout = limits.header_read_timeout;
    let (http2, socket) = if balancer {
        // Telling the versions apart is part of reading the request head, and shares its
        // time bound. Boxed, so that the task does not keep room for it.
        let started = tokio::time::Instant::now();
        match Box::pin(tokio::time::timeout(
            header_read_timeout,
            Rewound::sniff(socket),
        ))
        .await
        {
            Ok(Ok(Some(sniffed))) => {
                header_read_timeout = header_read_timeout
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(1));
                sniffed
            }
            _ => return,
        }
    } else {
        (false, Rewound::plain(socket))
    };
    let io = TokioIo::new(socket);
    // Until the connection closes, or until `stop` turns true: then it finishes the
    // requests in flight and closes. Boxed, so that the task holds a pointer.
    macro_rules! until_stopped {
        ($connection:expr) => {{
            let mut connection = Box::pin($connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }};
    }
    if http2 {
        let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_concurrent_streams(HTTP2_MAX_STREAMS)
            .keep_alive_interval(HTTP2_PING)
            .keep_alive_timeout(HTTP2_PING)
            .serve_connection(io, service);
        until_stopped!(connection);
    } else {
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .keep_alive(true)
            .serve_connection(io, service)
            .with_upgrades();
        until_stopped!(connection);
    }
}

/// Tells every connection to stop, waits up to `grace` for them to finish and cuts off
/// those still open.
async fn finish_connections(
    stop_tx: watch::Sender<bool>,
    mut connections: JoinSet<()>,
    grace: Duration,
) {
    let _ = stop_tx.send(true);
    let finished = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, finished).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the grace period are cut"
        );
        connections.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `Rewound::sniff` makes of a peer that writes `chunks` (one at a time) and
    /// closes: whether it is HTTP/2, and everything read back through the wrapper.
    async fn sniffed(chunks: &[&[u8]]) -> Option<(bool, Vec<u8>)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (near, mut far) = tokio::io::duplex(64);
        let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
        let writer = tokio::spawn(async move {
            for chunk in chunks {
                far.write_all(&chunk).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let (http2, mut rewound) = Rewound::sniff(near).await.unwrap()?;
        writer.await.unwrap();
        let mut all = Vec::new();
        rewound.read_to_end(&mut all).await.unwrap();
        Some((http2, all))
    }

    #[tokio::test]
    async fn the_first_bytes_tell_http2_from_http1_and_are_read_again() {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        // HTTP/2's preface, whole or a byte at a time, and the frames after it.
        let (h2, all) = sniffed(&[preface, b"frames"]).await.unwrap();
        assert!(h2);
        assert_eq!(all, [&preface[..], b"frames"].concat());
        let bytes: Vec<&[u8]> = preface.chunks(1).collect();
        assert_eq!(sniffed(&bytes).await, Some((true, preface.to_vec())));
        // HTTP/1.1, even when it starts like the preface ("P" of POST, "PRI" of a method
        // that happens to be called so).
        assert_eq!(sniffed(&[request]).await, Some((false, request.to_vec())));
        let post = b"POST /x HTTP/1.1\r\n\r\n";
        assert_eq!(
            sniffed(&[b"P", &post[1..]]).await,
            Some((false, post.to_vec()))
        );
        let pri = b"PRI / HTTP/1.1\r\n\r\n";
        assert_eq!(sniffed(&[pri]).await, Some((false, pri.to_vec())));
        // A peer that closes before its version is known.
        assert_eq!(sniffed(&[]).await, None);
        assert_eq!(sniffed(&[b"PRI * HTTP"]).await, None);
    }

    #[test]
    fn an_ipv6_client_counts_as_its_whole_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(client_key(mapped), "203.0.113.7".parse::<IpAddr>().unwrap());
        let counts = Arc::new(PerAddress::default());
        let first = counts.take(a, 1);
        assert!(first.is_some());
        assert!(counts.take(b, 1).is_none(), "the same /64");
        drop(first);
        assert!(counts.take(b, 1).is_some(), "given back on drop");
    }
}
