//! API clients for the components inside `krate server` (controllers,
//! scheduler, informers, simulated nodes, the server's own node agent).
//!
//! They are kube-rs clients of this server like any other, speaking the
//! same HTTP, but each connection is an in-memory pipe that the API server
//! in this process serves with the identity the component would have shown
//! in a client certificate. Nothing crosses loopback TCP or TLS: no
//! handshakes, no encryption, no kernel round trips between two halves of
//! one process.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use apiserver::server::{ApiServer, User};
use apiserver::tls::CertIdentity;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// Bytes a pipe holds in each direction before the writer waits.
const PIPE_BUFFER: usize = 256 * 1024;

/// A client of `api` for user `name` in `group`: the user a client
/// certificate with that subject would be.
pub fn client(api: &Arc<ApiServer>, name: &str, group: &str) -> kube::Client {
    let connector = Connector {
        api: api.clone(),
        user: User::from(CertIdentity {
            user: name.to_string(),
            groups: vec![group.to_string()],
        }),
    };
    let http: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
    let config = kube::Config::new(
        "http://krate.in-process"
            .parse()
            .expect("a constant, valid URL"),
    );
    let service = tower::ServiceBuilder::new()
        .layer(kube::client::ConfigExt::base_uri_layer(&config))
        .service(http);
    kube::Client::new(service, config.default_namespace)
}

/// Opens a connection by serving one end of a new pipe in the API server.
#[derive(Clone)]
struct Connector {
    api: Arc<ApiServer>,
    user: User,
}

impl tower::Service<http::Uri> for Connector {
    type Response = TokioIo<Pipe>;
    type Error = io::Error;
    type Future = std::future::Ready<io::Result<TokioIo<Pipe>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let (client, server) = tokio::io::duplex(PIPE_BUFFER);
        tokio::spawn(self.api.clone().serve_connection(server, self.user.clone()));
        std::future::ready(Ok(TokioIo::new(Pipe(client))))
    }
}

/// The client's end of a connection.
struct Pipe(DuplexStream);

impl Connection for Pipe {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Pipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
