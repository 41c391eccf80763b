//! The HTTP/1.1 server: poem's endpoint behind an accept loop of our own, because poem
//! builds hyper without a timer, which silently turns hyper's header-read timeout off.
//! Here every connection has one (it also closes kept-alive connections that sit idle),
//! and at most `server.max_connections` are open at once: beyond that, new connections
//! wait in the kernel's backlog until one closes.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::endpoint::BoxEndpoint;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::{Endpoint, EndpointExt, IntoEndpoint, Response};
use tokio::sync::{watch, Semaphore};

/// What bounds each connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A connection must send a whole request head within this; the same bound closes a
    /// kept-alive connection that sends nothing.
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// How long requests in flight may finish after shutdown is asked for.
    pub grace: Duration,
}

type ResponseBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// Serves `ep` on `acceptor` until `shutdown` resolves, then lets requests in flight
/// finish (for at most `limits.grace`).
pub async fn serve<E>(
    mut acceptor: TcpAcceptor,
    ep: E,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    E: IntoEndpoint,
    E::Endpoint: 'static,
{
    let ep: Arc<BoxEndpoint<'static, Response>> =
        Arc::new(ep.into_endpoint().map_to_response().boxed());
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = acceptor.accept() => accepted,
        };
        let (socket, local_addr, remote_addr, scheme) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was taken:
                // wait a moment rather than spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ep = ep.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req: poem::http::Request<Incoming>| {
                let ep = ep.clone();
                let request: poem::Request =
                    (req, local_addr.clone(), remote_addr.clone(), scheme.clone()).into();
                async move {
                    let response = ep.get_response(request).await;
                    Ok::<_, Infallible>(poem::http::Response::<ResponseBody>::from(response))
                }
            });
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
        });
    }
    let _ = stop_tx.send(true);
    // Every open connection holds a permit: having them all back means all are closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.grace, permits.acquire_many(all)).await;
    Ok(())
}
