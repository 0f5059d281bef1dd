//! Async ends for blocking file descriptors (a pty master): a thread per
//! direction copies between the descriptor and an in-memory pipe, so that a
//! pty's EIO at hang-up reads as EOF and no reactor registration is needed.

use std::io::{Read, Write};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cri::{BoxedReader, BoxedWriter};

const BUF: usize = 32 * 1024;

pub(crate) fn blocking_reader<R: Read + Send + 'static>(mut r: R) -> BoxedReader {
    let (mut tx, rx) = tokio::io::duplex(2 * BUF);
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; BUF];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if handle.block_on(tx.write_all(&buf[..n])).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
    Box::new(rx)
}

pub(crate) fn blocking_writer<W: Write + Send + 'static>(mut w: W) -> BoxedWriter {
    let (tx, mut rx) = tokio::io::duplex(2 * BUF);
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; BUF];
        loop {
            match handle.block_on(rx.read(&mut buf)) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
    Box::new(tx)
}
