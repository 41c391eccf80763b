//! The HTTP/1.1 server: poem's endpoint behind an accept loop of our own, because poem
//! builds hyper without a timer, which silently turns hyper's header-read timeout off.
//! Here every connection has one (it also closes kept-alive connections that sit idle); a
//! response the client stops reading is cut off; at most `server.max_connections` are open
//! at once (beyond that, new connections wait in the kernel's backlog until one closes)
//! and at most `server.max_connections_per_address` from one address, so that one client
//! cannot take every slot.

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
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::endpoint::BoxEndpoint;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::{Endpoint, EndpointExt, IntoEndpoint, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// What bounds each connection.
#[derive(Debug, Clone, Copy)]
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
}

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
            limits,
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
/// request in flight is finished and the connection closed. `_held` is released at the end.
async fn serve_connection(
    ep: SharedEndpoint,
    (socket, local_addr, remote_addr, scheme): Accepted,
    _held: Held,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
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
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(socket), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
    // Finish the request in flight, then close.
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
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
