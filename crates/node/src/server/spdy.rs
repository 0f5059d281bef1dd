//! A minimal SPDY/3.1 framer, enough to serve `portforward.k8s.io` to
//! client-go's SPDY connection (moby/spdystream): SYN_STREAM / SYN_REPLY /
//! RST_STREAM / SETTINGS / PING / GOAWAY / HEADERS / WINDOW_UPDATE control
//! frames and DATA frames. Header blocks are zlib streams primed with the
//! SPDY/3 dictionary, one compression context per direction for the whole
//! connection. Flow control is not enforced, as spdystream does not.

use std::sync::OnceLock;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

pub const VERSION: u16 = 3;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

pub const FLAG_FIN: u8 = 0x01;

/// RST_STREAM status codes.
pub const PROTOCOL_ERROR: u32 = 1;
pub const REFUSED_STREAM: u32 = 3;
pub const CANCEL: u32 = 5;

/// The largest frame payload accepted (SPDY's length field is 24 bits).
const MAX_FRAME: usize = (1 << 24) - 1;

pub type Headers = Vec<(String, String)>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings,
    Ping(u32),
    GoAway {
        last_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    /// A control frame of a type this framer does not know (ignored).
    Unknown,
}

impl Frame {
    pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
    #[error("malformed {0} frame")]
    Malformed(&'static str),
    #[error("header block: {0}")]
    Compression(String),
}

/// The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1):
/// length-prefixed header names and values, then common strings.
pub fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TAIL: &str = concat!(
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
            "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
            "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
            "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct ",
            "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,",
            "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,",
            "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8",
            "charset=iso-8859-1,utf-,*,enq=0.",
        );
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(TAIL.as_bytes());
        d
    })
}

/// Reads frames from a byte buffer (the receiving half of a connection).
pub struct Reader {
    inflate: Decompress,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            inflate: Decompress::new(true),
        }
    }
}

impl Reader {
    /// The next complete frame at the start of `buf` (consumed), or `None`
    /// when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if len > MAX_FRAME {
            return Err(SpdyError::TooLarge(len));
        }
        if buf.len() < 8 + len {
            return Ok(None);
        }
        let head = buf.split_to(8);
        let mut payload = buf.split_to(len).freeze();
        let flags = head[4];
        let fin = flags & FLAG_FIN != 0;
        if head[0] & 0x80 == 0 {
            let stream_id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            return Ok(Some(Frame::Data {
                stream_id,
                fin,
                data: payload,
            }));
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let need = |p: &Bytes, n: usize, what: &'static str| {
            if p.len() < n {
                Err(SpdyError::Malformed(what))
            } else {
                Ok(())
            }
        };
        let frame = match kind {
            SYN_STREAM => {
                need(&payload, 10, "SYN_STREAM")?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                payload.advance(6); // associated stream, priority, slot
                let headers = self.headers(&payload)?;
                Frame::SynStream {
                    stream_id,
                    fin,
                    headers,
                }
            }
            SYN_REPLY => {
                need(&payload, 4, "SYN_REPLY")?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                let headers = self.headers(&payload)?;
                Frame::SynReply {
                    stream_id,
                    fin,
                    headers,
                }
            }
            HEADERS => {
                need(&payload, 4, "HEADERS")?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                let headers = self.headers(&payload)?;
                Frame::Headers { stream_id, headers }
            }
            RST_STREAM => {
                need(&payload, 8, "RST_STREAM")?;
                Frame::RstStream {
                    stream_id: payload.get_u32() & 0x7fff_ffff,
                    status: payload.get_u32(),
                }
            }
            SETTINGS => Frame::Settings,
            PING => {
                need(&payload, 4, "PING")?;
                Frame::Ping(payload.get_u32())
            }
            GOAWAY => {
                need(&payload, 4, "GOAWAY")?;
                let last_stream_id = payload.get_u32() & 0x7fff_ffff;
                let status = if payload.len() >= 4 {
                    payload.get_u32()
                } else {
                    0
                };
                Frame::GoAway {
                    last_stream_id,
                    status,
                }
            }
            WINDOW_UPDATE => {
                need(&payload, 8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate {
                    stream_id: payload.get_u32() & 0x7fff_ffff,
                    delta: payload.get_u32() & 0x7fff_ffff,
                }
            }
            _ => Frame::Unknown,
        };
        Ok(Some(frame))
    }

    fn headers(&mut self, compressed: &[u8]) -> Result<Headers, SpdyError> {
        let block = self.inflate(compressed)?;
        parse_header_block(&block)
    }

    fn inflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out: Vec<u8> = Vec::with_capacity(input.len() * 4 + 256);
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity().max(1024));
            }
            let spare = out.capacity() - out.len();
            let (in_before, out_before) = (self.inflate.total_in(), out.len());
            let result = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let consumed = (self.inflate.total_in() - in_before) as usize;
            input = &input[consumed..];
            let produced = out.len() - out_before;
            match result {
                // Done once the input is used up and the output had room left.
                Ok(_) if input.is_empty() && produced < spare => return Ok(out),
                Ok(_) if consumed == 0 && produced == 0 => {
                    return Err(SpdyError::Compression("no progress".into()))
                }
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(dictionary())
                        .map_err(|e| SpdyError::Compression(e.to_string()))?;
                }
                Err(e) => return Err(SpdyError::Compression(e.to_string())),
            }
        }
    }
}

fn parse_header_block(mut b: &[u8]) -> Result<Headers, SpdyError> {
    let malformed = || SpdyError::Malformed("header block");
    let next = |b: &mut &[u8]| -> Result<String, SpdyError> {
        if b.len() < 4 {
            return Err(malformed());
        }
        let n = b.get_u32() as usize;
        if b.len() < n {
            return Err(malformed());
        }
        let s = String::from_utf8_lossy(&b[..n]).into_owned();
        b.advance(n);
        Ok(s)
    };
    if b.len() < 4 {
        return Err(malformed());
    }
    let count = b.get_u32();
    let mut headers = Vec::new();
    for _ in 0..count {
        let name = next(&mut b)?;
        let value = next(&mut b)?;
        // Several values of one name are NUL-separated.
        for v in value.split('\0') {
            headers.push((name.clone(), v.to_string()));
        }
    }
    Ok(headers)
}

/// Writes frames (the sending half of a connection).
pub struct Writer {
    deflate: Compress,
}

impl Default for Writer {
    fn default() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        // Priming cannot fail on a fresh stream.
        let _ = deflate.set_dictionary(dictionary());
        Writer { deflate }
    }
}

impl Writer {
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) {
        match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                for (i, chunk) in data.chunks(MAX_FRAME).enumerate() {
                    let last = (i + 1) * MAX_FRAME >= data.len();
                    out.put_u32(stream_id & 0x7fff_ffff);
                    out.put_u8(if *fin && last { FLAG_FIN } else { 0 });
                    out.put_uint(chunk.len() as u64, 3);
                    out.put_slice(chunk);
                }
                if data.is_empty() {
                    out.put_u32(stream_id & 0x7fff_ffff);
                    out.put_u8(if *fin { FLAG_FIN } else { 0 });
                    out.put_uint(0, 3);
                }
            }
            Frame::SynStream {
                stream_id,
                fin,
                headers,
            } => {
                let block = self.compress(headers);
                let mut p = BytesMut::new();
                p.put_u32(*stream_id);
                p.put_u32(0);
                p.put_u16(0);
                p.put_slice(&block);
                control(out, SYN_STREAM, if *fin { FLAG_FIN } else { 0 }, &p);
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => {
                let block = self.compress(headers);
                let mut p = BytesMut::new();
                p.put_u32(*stream_id);
                p.put_slice(&block);
                control(out, SYN_REPLY, if *fin { FLAG_FIN } else { 0 }, &p);
            }
            Frame::Headers { stream_id, headers } => {
                let block = self.compress(headers);
                let mut p = BytesMut::new();
                p.put_u32(*stream_id);
                p.put_slice(&block);
                control(out, HEADERS, 0, &p);
            }
            Frame::RstStream { stream_id, status } => {
                let mut p = BytesMut::new();
                p.put_u32(*stream_id);
                p.put_u32(*status);
                control(out, RST_STREAM, 0, &p);
            }
            Frame::Settings => control(out, SETTINGS, 0, &0u32.to_be_bytes()),
            Frame::Ping(id) => control(out, PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_stream_id,
                status,
            } => {
                let mut p = BytesMut::new();
                p.put_u32(*last_stream_id);
                p.put_u32(*status);
                control(out, GOAWAY, 0, &p);
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut p = BytesMut::new();
                p.put_u32(*stream_id);
                p.put_u32(*delta);
                control(out, WINDOW_UPDATE, 0, &p);
            }
            Frame::Unknown => {}
        }
    }

    fn compress(&mut self, headers: &Headers) -> Vec<u8> {
        let mut block = Vec::new();
        block.put_u32(headers.len() as u32);
        for (n, v) in headers {
            block.put_u32(n.len() as u32);
            block.put_slice(n.to_ascii_lowercase().as_bytes());
            block.put_u32(v.len() as u32);
            block.put_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(block.len() + 64);
        let mut input = &block[..];
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.deflate.total_in();
            if self
                .deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .is_err()
            {
                break;
            }
            input = &input[(self.deflate.total_in() - before) as usize..];
            // The sync flush is complete when output space was left over.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        out
    }
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, payload: &[u8]) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u8(flags);
    out.put_uint(payload.len() as u64, 3);
    out.put_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_spdy3s_by_length_and_checksum() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        // A zlib stream primed with it names it by its Adler-32 (FDICT).
        let mut w = Writer::default();
        let block = w.compress(&vec![]);
        assert_eq!(block[1] & 0x20, 0x20, "FDICT set");
        assert_eq!(&block[2..6], &[0xe3, 0xc6, 0xa7, 0xc2]);
    }

    #[test]
    fn frames_round_trip_with_one_compression_context_per_direction() {
        let mut w = Writer::default();
        let mut r = Reader::default();
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                fin: false,
                headers: vec![
                    ("streamtype".into(), "error".into()),
                    ("port".into(), "80".into()),
                    ("requestid".into(), "0".into()),
                ],
            },
            Frame::SynStream {
                stream_id: 3,
                fin: false,
                headers: vec![
                    ("streamtype".into(), "data".into()),
                    ("port".into(), "80".into()),
                    ("requestid".into(), "0".into()),
                ],
            },
            Frame::SynReply {
                stream_id: 3,
                fin: false,
                headers: vec![],
            },
            Frame::Data {
                stream_id: 3,
                fin: true,
                data: Bytes::from_static(b"GET / HTTP/1.0\r\n\r\n"),
            },
            Frame::Ping(7),
            Frame::RstStream {
                stream_id: 1,
                status: CANCEL,
            },
            Frame::GoAway {
                last_stream_id: 3,
                status: 0,
            },
        ];
        let mut buf = BytesMut::new();
        for f in &frames {
            w.encode(f, &mut buf);
        }
        // Fed a few bytes at a time, as a socket delivers them.
        let all = buf.freeze();
        let mut pending = BytesMut::new();
        let mut got = Vec::new();
        for chunk in all.chunks(5) {
            pending.extend_from_slice(chunk);
            while let Some(f) = r.decode(&mut pending).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }
}
