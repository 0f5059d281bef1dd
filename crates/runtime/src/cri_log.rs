//! Container logs in the CRI format the kubelet reads
//! (`<RFC3339Nano> <stream> <F|P> <content>`): one full line per `\n`, a
//! trailing `\r` dropped, lines longer than 16 KiB split into partial (`P`)
//! pieces, and what is left without a newline at the end written as `P`
//! (containerd's `redirectLogs`).

use std::io::{self, Write};

use chrono::{DateTime, Timelike, Utc};

/// containerd's `max_container_log_line_size` default.
pub const MAX_LINE: usize = 16 * 1024;

/// A time as Go's `time.RFC3339Nano` prints a UTC time: nanoseconds with
/// trailing zeros removed, none at all for a whole second.
pub fn rfc3339_nano(t: DateTime<Utc>) -> String {
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// One stream's line splitter; `emit` is called per CRI log record.
pub struct LineSplitter {
    buf: Vec<u8>,
    max: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    Full,
    Partial,
}

impl Tag {
    fn as_str(self) -> &'static str {
        match self {
            Tag::Full => "F",
            Tag::Partial => "P",
        }
    }
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::new(MAX_LINE)
    }
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            max,
        }
    }

    /// Feeds bytes read from the stream.
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8], Tag)) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            match rest.iter().position(|b| *b == b'\n') {
                Some(i) if i <= self.max => {
                    let mut line = &rest[..i];
                    if line.last() == Some(&b'\r') {
                        line = &line[..line.len() - 1];
                    }
                    emit(line, Tag::Full);
                    start += i + 1;
                }
                _ if rest.len() > self.max => {
                    emit(&rest[..self.max], Tag::Partial);
                    start += self.max;
                }
                _ => break,
            }
        }
        self.buf.drain(..start);
    }

    /// The stream ended: what is left is a partial line.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8], Tag)) {
        if !self.buf.is_empty() {
            emit(&self.buf, Tag::Partial);
            self.buf.clear();
        }
    }
}

/// Writes one record as a single `write` so that records of stdout and
/// stderr never interleave within a line.
pub fn write_record(
    out: &mut impl Write,
    time: DateTime<Utc>,
    stream: &str,
    tag: Tag,
    content: &[u8],
) -> io::Result<()> {
    let ts = rfc3339_nano(time);
    let mut rec = Vec::with_capacity(ts.len() + stream.len() + content.len() + 6);
    rec.extend_from_slice(ts.as_bytes());
    rec.push(b' ');
    rec.extend_from_slice(stream.as_bytes());
    rec.push(b' ');
    rec.extend_from_slice(tag.as_str().as_bytes());
    rec.push(b' ');
    rec.extend_from_slice(content);
    rec.push(b'\n');
    out.write_all(&rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<(String, Tag)> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l, t| {
                out.push((String::from_utf8_lossy(l).into_owned(), t))
            });
        }
        s.finish(|l, t| out.push((String::from_utf8_lossy(l).into_owned(), t)));
        out
    }

    #[test]
    fn timestamps_trim_trailing_zeros_as_go_does() {
        let t = Utc.with_ymd_and_hms(2024, 3, 5, 7, 8, 9).unwrap();
        assert_eq!(rfc3339_nano(t), "2024-03-05T07:08:09Z");
        let t = t + chrono::Duration::nanoseconds(120_000_000);
        assert_eq!(rfc3339_nano(t), "2024-03-05T07:08:09.12Z");
        let t = t + chrono::Duration::nanoseconds(3);
        assert_eq!(rfc3339_nano(t), "2024-03-05T07:08:09.120000003Z");
    }

    #[test]
    fn lines_split_on_newlines_across_reads() {
        assert_eq!(
            split(16, &[b"hel", b"lo\nwor", b"ld\r\n\n"]),
            vec![
                ("hello".into(), Tag::Full),
                ("world".into(), Tag::Full),
                ("".into(), Tag::Full)
            ]
        );
    }

    #[test]
    fn long_lines_become_partial_records() {
        assert_eq!(
            split(4, &[b"abcdefghij\n"]),
            vec![
                ("abcd".into(), Tag::Partial),
                ("efgh".into(), Tag::Partial),
                ("ij".into(), Tag::Full)
            ]
        );
        assert_eq!(split(4, &[b"abcd\n"]), vec![("abcd".into(), Tag::Full)]);
    }

    #[test]
    fn an_unterminated_last_line_is_partial() {
        assert_eq!(
            split(16, &[b"a\nno newline"]),
            vec![("a".into(), Tag::Full), ("no newline".into(), Tag::Partial)]
        );
    }

    #[test]
    fn records_have_the_cri_layout() {
        let t = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        let mut out = Vec::new();
        write_record(&mut out, t, "stderr", Tag::Full, b"oops").unwrap();
        assert_eq!(out, b"2024-01-02T03:04:05Z stderr F oops\n");
    }
}
