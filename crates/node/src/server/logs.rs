//! `GET /containerLogs/{ns}/{pod}/{container}`: a container's output from
//! its CRI log file (`/var/log/pods/<ns>_<pod>_<uid>/<container>/<attempt>.log`,
//! lines `<RFC3339Nano> stdout|stderr F|P <text>`, P marking a line the
//! runtime split), as upstream's `kuberuntime.ReadLogs` serves it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use runtime::cri::ContainerState;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::resolve::{self, ResolveError};
use super::{query_flag, query_get, status_error, Body, KubeletServer};

/// `PodLogOptions` as the query carries them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<u64>,
    pub since: Option<DateTime<Utc>>,
    pub limit_bytes: Option<u64>,
}

impl LogOptions {
    /// Reads the options from a query string; `now` anchors `sinceSeconds`.
    pub fn parse(query: Option<&str>, now: DateTime<Utc>) -> Result<LogOptions, String> {
        let int = |key: &str| -> Result<Option<i64>, String> {
            match query_get(query, key) {
                None => Ok(None),
                Some(v) if v.is_empty() => Ok(None),
                Some(v) => v
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| format!("{key}: invalid value {v:?}")),
            }
        };
        let mut since = None;
        if let Some(s) = int("sinceSeconds")? {
            since = Some(now - chrono::Duration::seconds(s.max(0)));
        }
        if let Some(t) = query_get(query, "sinceTime").filter(|t| !t.is_empty()) {
            let t = DateTime::parse_from_rfc3339(&t)
                .map_err(|_| format!("sinceTime: invalid value {t:?}"))?;
            since = Some(t.with_timezone(&Utc));
        }
        Ok(LogOptions {
            follow: query_flag(query, "follow"),
            previous: query_flag(query, "previous"),
            timestamps: query_flag(query, "timestamps"),
            tail_lines: int("tailLines")?.map(|n| n.max(0) as u64),
            since,
            limit_bytes: int("limitBytes")?.map(|n| n.max(0) as u64),
        })
    }
}

/// One line of a CRI log file.
#[derive(Debug, PartialEq)]
pub struct Entry<'a> {
    pub time: DateTime<Utc>,
    pub stream: &'a str,
    pub partial: bool,
    pub content: &'a [u8],
}

/// Parses `<time> <stream> <tag> <content>` (the line without its `\n`).
pub fn parse_line(line: &[u8]) -> Option<Entry<'_>> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(fields.next()?).ok()?;
    let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    let stream = std::str::from_utf8(fields.next()?).ok()?;
    let tag = fields.next()?;
    let content = fields.next().unwrap_or(b"");
    // Tags are `:`-separated; the first says full (F) or partial (P).
    let partial = tag.split(|b| *b == b':').next() == Some(b"P");
    Some(Entry {
        time,
        stream,
        partial,
        content,
    })
}

/// The text a client sees for one entry.
pub fn format_entry(e: &Entry<'_>, timestamps: bool, out: &mut Vec<u8>) {
    if timestamps {
        out.extend_from_slice(
            e.time
                .format("%Y-%m-%dT%H:%M:%S%.9fZ")
                .to_string()
                .as_bytes(),
        );
        out.push(b' ');
    }
    out.extend_from_slice(e.content);
    if !e.partial {
        out.push(b'\n');
    }
}

/// Formats the complete lines of `data` that pass the options into `out`,
/// stopping at `limit` bytes. Returns whether the limit was reached.
pub fn render(data: &[u8], opts: &LogOptions, out: &mut Vec<u8>, limit: Option<u64>) -> bool {
    for line in data.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let Some(entry) = parse_line(line) else {
            continue;
        };
        if opts.since.is_some_and(|s| entry.time < s) {
            continue;
        }
        format_entry(&entry, opts.timestamps, out);
        if let Some(l) = limit {
            if out.len() as u64 >= l {
                out.truncate(l as usize);
                return true;
            }
        }
    }
    false
}

/// The byte offset where the last `n` lines of `data` begin.
pub fn tail_offset(data: &[u8], n: u64) -> usize {
    if n == 0 {
        return data.len();
    }
    let mut end = data.len();
    // A trailing newline ends the last line rather than starting another.
    if end > 0 && data[end - 1] == b'\n' {
        end -= 1;
    }
    let mut count = 0;
    for i in (0..end).rev() {
        if data[i] == b'\n' {
            count += 1;
            if count == n {
                return i + 1;
            }
        }
    }
    0
}

/// The log file of the attempt the options ask for, and the container ID to
/// watch while following (`None` for a previous attempt).
async fn log_file(
    server: &KubeletServer,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<(PathBuf, Option<String>), ResolveError> {
    let attempts = resolve::attempts(server.runtime().as_ref(), ns, pod, container).await?;
    let Some(current) = attempts.first() else {
        return Err(ResolveError::ContainerNotFound {
            pod: pod.to_string(),
            container: container.to_string(),
        });
    };
    if !previous {
        return Ok((current.log_path.clone(), Some(current.id.clone())));
    }
    if let Some(prev) = attempts.get(1) {
        return Ok((prev.log_path.clone(), None));
    }
    // The previous attempt may be gone from the runtime while its log stays:
    // `<dir>/<attempt>.log` with the highest attempt below the current one.
    previous_file(&current.log_path, current.metadata.attempt)
        .map(|p| (p, None))
        .ok_or_else(|| ResolveError::PreviousNotFound {
            pod: pod.to_string(),
            container: container.to_string(),
        })
}

fn previous_file(current: &Path, attempt: u32) -> Option<PathBuf> {
    let dir = current.parent()?;
    (0..attempt)
        .rev()
        .map(|a| dir.join(format!("{a}.log")))
        .find(|p| p.exists())
}

pub async fn serve(
    server: Arc<KubeletServer>,
    ns: &str,
    pod: &str,
    container: &str,
    query: Option<&str>,
) -> Response<Body> {
    let opts = match LogOptions::parse(query, Utc::now()) {
        Ok(o) => o,
        Err(e) => return status_error(StatusCode::BAD_REQUEST, "BadRequest", e),
    };
    let (path, follow_id) = match log_file(&server, ns, pod, container, opts.previous).await {
        Ok(f) => f,
        Err(
            e @ (ResolveError::ContainerNotFound { .. } | ResolveError::PreviousNotFound { .. }),
        ) => return status_error(StatusCode::BAD_REQUEST, "BadRequest", e.to_string()),
        Err(e) => {
            return status_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                e.to_string(),
            )
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let follow = if opts.follow { follow_id } else { None };
    tokio::spawn(stream_file(server, path, opts, follow, tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// Sends the file's lines to `tx`; with `follow`, keeps reading as the file
/// grows until container `follow` stops running (or the client goes).
async fn stream_file(
    server: Arc<KubeletServer>,
    path: PathBuf,
    opts: LogOptions,
    follow: Option<String>,
    tx: mpsc::Sender<Bytes>,
) {
    let mut sent: u64 = 0;
    let remaining = |sent: u64| opts.limit_bytes.map(|l| l.saturating_sub(sent));
    // The first pass: the whole file, or its last lines.
    let mut file = loop {
        match tokio::fs::File::open(&path).await {
            Ok(f) => break f,
            Err(_) if follow.is_some() => {
                // Not written yet: wait for it while the container runs.
                if !still_running(&server, follow.as_deref()).await || tx.is_closed() {
                    return;
                }
                tokio::time::sleep(server.follow_interval).await;
            }
            Err(_) => return,
        }
    };
    let mut data = Vec::new();
    if file.read_to_end(&mut data).await.is_err() {
        return;
    }
    // Only complete lines; a line being written is read with the next pass.
    let complete = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut offset = complete as u64;
    let start = match opts.tail_lines {
        Some(n) => tail_offset(&data[..complete], n),
        None => 0,
    };
    let mut out = Vec::new();
    let done = render(&data[start..complete], &opts, &mut out, remaining(sent));
    sent += out.len() as u64;
    if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
        return;
    }
    if done || follow.is_none() {
        return;
    }
    let mut pending = Vec::new();
    loop {
        let mut chunk = Vec::new();
        let read = async {
            file.seek(std::io::SeekFrom::Start(offset)).await?;
            file.read_to_end(&mut chunk).await
        }
        .await;
        let n = read.unwrap_or(0);
        if n == 0 {
            if !still_running(&server, follow.as_deref()).await {
                // One last read: the container may have written before it ended.
                let mut rest = Vec::new();
                if file.seek(std::io::SeekFrom::Start(offset)).await.is_ok()
                    && file.read_to_end(&mut rest).await.unwrap_or(0) > 0
                {
                    pending.extend_from_slice(&rest);
                    let mut out = Vec::new();
                    render(&pending, &opts, &mut out, remaining(sent));
                    let _ = tx.send(Bytes::from(out)).await;
                }
                return;
            }
            // Rotated (the runtime moved the file aside and started a new
            // one at the same path): go on with the new file.
            if rotated(&file, &path).await {
                if let Ok(f) = tokio::fs::File::open(&path).await {
                    file = f;
                    offset = 0;
                    continue;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(server.follow_interval) => {}
                _ = tx.closed() => return,
            }
            continue;
        }
        offset += n as u64;
        pending.extend_from_slice(&chunk);
        let Some(end) = pending.iter().rposition(|b| *b == b'\n') else {
            continue;
        };
        let lines: Vec<u8> = pending.drain(..=end).collect();
        let mut out = Vec::new();
        let done = render(&lines, &opts, &mut out, remaining(sent));
        sent += out.len() as u64;
        if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
            return;
        }
        if done {
            return;
        }
    }
}

/// Whether `path` now names another file than the open `file`.
async fn rotated(file: &tokio::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata().await, tokio::fs::metadata(path).await) {
        (Ok(open), Ok(named)) => open.ino() != named.ino() || open.dev() != named.dev(),
        _ => false,
    }
}

async fn still_running(server: &KubeletServer, id: Option<&str>) -> bool {
    let Some(id) = id else { return false };
    matches!(
        server.runtime().container_status(id).await,
        Ok(s) if matches!(s.state, ContainerState::Running | ContainerState::Created)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2024-05-01T10:00:00.123456789Z stdout F one\n\
                       2024-05-01T10:00:01.000000000Z stderr F two\n\
                       2024-05-01T10:00:02.000000000Z stdout P thr\n\
                       2024-05-01T10:00:02.500000000Z stdout F ee\n";

    fn rendered(opts: &LogOptions, limit: Option<u64>) -> String {
        let mut out = Vec::new();
        render(LOG.as_bytes(), opts, &mut out, limit);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn partial_lines_join_and_full_lines_end_with_a_newline() {
        assert_eq!(rendered(&LogOptions::default(), None), "one\ntwo\nthree\n");
    }

    #[test]
    fn timestamps_prefix_every_entry_with_nine_fraction_digits() {
        let opts = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        let out = rendered(&opts, None);
        assert!(
            out.starts_with(
                "2024-05-01T10:00:00.123456789Z one\n2024-05-01T10:00:01.000000000Z two\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn since_skips_older_entries_and_limit_bytes_truncates() {
        let opts = LogOptions {
            since: Some("2024-05-01T10:00:01Z".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(rendered(&opts, None), "two\nthree\n");
        assert_eq!(rendered(&LogOptions::default(), Some(6)), "one\ntw");
    }

    #[test]
    fn tail_counts_file_lines_from_the_end() {
        let data = LOG.as_bytes();
        assert_eq!(
            &data[tail_offset(data, 1)..],
            b"2024-05-01T10:00:02.500000000Z stdout F ee\n"
        );
        assert_eq!(tail_offset(data, 10), 0);
        assert_eq!(tail_offset(data, 0), data.len());
    }

    #[test]
    fn options_from_the_query() {
        let now: DateTime<Utc> = "2024-05-01T10:00:00Z".parse().unwrap();
        let o = LogOptions::parse(
            Some(
                "follow=true&previous=1&timestamps=true&tailLines=5&sinceSeconds=10&limitBytes=100",
            ),
            now,
        )
        .unwrap();
        assert!(o.follow && o.previous && o.timestamps);
        assert_eq!(o.tail_lines, Some(5));
        assert_eq!(o.limit_bytes, Some(100));
        assert_eq!(o.since, Some("2024-05-01T09:59:50Z".parse().unwrap()));
        assert!(LogOptions::parse(Some("tailLines=x"), now).is_err());
    }
}
