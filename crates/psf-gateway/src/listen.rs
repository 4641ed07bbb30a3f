//! The server loop: hyper with the bounds `axum::serve` has no settings for, so a slow
//! or idle client can never hold what others need. Headers must arrive within
//! `gateway.header_timeout_ms` (which also bounds an idle kept-alive connection), a body
//! within `gateway.body_timeout_ms` ([`body_deadline`]); at most
//! `gateway.max_connections` are open at once, and one more is answered `503` and
//! closed; after the shutdown signal, requests in flight get `gateway.shutdown_grace_ms`
//! to finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use psf_core::code::Code;
use psf_core::manifest::GatewaySettings;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::error::ApiError;
use crate::state::Gateway;

/// Serves `router` on `listener` until `shutdown` resolves, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &GatewaySettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_timeout = Duration::from_millis(settings.header_timeout_ms);
    let slots = Arc::new(Semaphore::new(settings.max_connections as usize));
    // Every connection holds a receiver: the sender learns when the last one is gone.
    let (closing, closed) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Streamed tokens are small writes: without TCP_NODELAY, Nagle's algorithm holds the
        // last one until the client's delayed ACK (40 ms on Linux) — measured by bench/.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse_connection(tcp));
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(addr));
            let mut router = router.clone();
            tower_service::Service::call(&mut router, request.map(Body::new))
        });
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
            builder.http2().timer(TokioTimer::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
            let mut conn = std::pin::pin!(conn);
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, peer = %addr, "connection ended with an error");
                        }
                        break;
                    }
                    changed = closed.changed() => {
                        if changed.is_err() || *closed.borrow() {
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    // Only the connections' receivers may keep the drain waiting.
    drop(closed);
    let _ = closing.send(true);
    let grace = Duration::from_millis(settings.shutdown_grace_ms);
    if tokio::time::timeout(grace, closing.closed()).await.is_err() {
        tracing::warn!(
            open = closing.receiver_count(),
            grace_ms = settings.shutdown_grace_ms,
            "connections still open at the shutdown deadline are closed"
        );
    }
    Ok(())
}

/// A connection over the limit: a coded 503, then closed; never dropped silently.
async fn refuse_connection(mut tcp: tokio::net::TcpStream) {
    let error = ApiError::new(Code::Overloaded, "the gateway is at its connection limit; retry shortly");
    let status = error.status();
    let body = error.body().to_string();
    let reply = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(reply.as_bytes())).await;
    let _ = tcp.shutdown().await;
}

/// Reads the whole body within `gateway.body_timeout_ms` (and the body limit), so a
/// client that announces a body and sends it slowly, or never, is answered `408`.
pub(crate) async fn body_deadline(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let settings = &gw.compiled.manifest.gateway;
    let (parts, body) = request.into_parts();
    let limit = gw.compiled.max_body_bytes();
    let read = tokio::time::timeout(Duration::from_millis(settings.body_timeout_ms), axum::body::to_bytes(body, limit));
    match read.await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(e)) => ApiError::new(Code::Ig2Size, format!("the body could not be read: {e}")).into_response(),
        Err(_) => ApiError::new(
            Code::BodyTimeout,
            format!("the body did not arrive within {} ms; send it whole, promptly", settings.body_timeout_ms),
        )
        .into_response(),
    }
}
