//! PortForward: a TCP connection to 127.0.0.1:<port> made from inside the
//! sandbox's network namespace (a thread that enters it connects and hands
//! the socket back; the socket stays in the pod's namespace).

use crate::cri::*;
use crate::runc::Runc;

impl Runc {
    pub(crate) async fn connect_in_sandbox(
        &self,
        sandbox_id: &str,
        port: u16,
    ) -> Result<tokio::net::TcpStream> {
        let rec = self.load_sandbox(sandbox_id)?;
        if rec.stopped {
            return Err(Error::Runtime {
                op: "port forward".into(),
                message: format!("sandbox {sandbox_id} is not running"),
            });
        }
        let failed = |e: std::io::Error| Error::Runtime {
            op: "port forward".into(),
            message: format!(
                "failed to connect to localhost:{port} inside namespace {sandbox_id:?}, IPv4: {e}"
            ),
        };
        let netns = rec.netns.clone();
        let stream = tokio::task::spawn_blocking(move || {
            let connect = move || std::net::TcpStream::connect(("127.0.0.1", port));
            match netns {
                Some(path) => net::netns::run_in(&path, connect)
                    .map_err(|e| std::io::Error::other(e.to_string()))?,
                None => connect(),
            }
        })
        .await
        .map_err(|e| Error::Runtime {
            op: "port forward".into(),
            message: e.to_string(),
        })?
        .map_err(failed)?;
        stream.set_nonblocking(true).map_err(failed)?;
        tokio::net::TcpStream::from_std(stream).map_err(failed)
    }
}
