//! Termination messages (upstream kuberuntime's `getTerminationMessage`):
//! what a container wrote to its `terminationMessagePath` (at most the last
//! 4096 bytes) becomes the message of its terminated state; with
//! `terminationMessagePolicy: FallbackToLogsOnError`, a container that
//! failed and wrote nothing there gets the tail of its log instead (the last
//! 80 lines, at most 2048 bytes). A message the runtime gave already comes
//! first, separated by `": "`.
//!
//! The path and policy travel with the container as upstream's annotations,
//! so the status of a container whose pod spec is gone still has them; the
//! file is found through the container's mounts.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use k8s_openapi::api::core::v1::Container;
use runtime::{ContainerState, ContainerStatus};

use crate::server::logs;

pub const PATH_ANNOTATION: &str = "io.kubernetes.container.terminationMessagePath";
pub const POLICY_ANNOTATION: &str = "io.kubernetes.container.terminationMessagePolicy";
const FALLBACK_TO_LOGS: &str = "FallbackToLogsOnError";

/// Upstream's MaxContainerTerminationMessageLength.
const MAX_MESSAGE_BYTES: u64 = 4096;
/// Upstream's MaxContainerTerminationMessageLogLines and ...LogLength.
const MAX_LOG_LINES: u64 = 80;
const MAX_LOG_BYTES: usize = 2048;
/// How much of the log's end is read to find its last lines.
const LOG_WINDOW: u64 = 256 * 1024;

/// The annotations a container is created with.
pub fn annotations(c: &Container) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(path) = c
        .termination_message_path
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        out.insert(PATH_ANNOTATION.to_string(), path.clone());
    }
    if let Some(policy) = c.termination_message_policy.as_ref() {
        out.insert(POLICY_ANNOTATION.to_string(), policy.clone());
    }
    out
}

/// Adds the termination message to an exited container's status message.
pub fn enrich(s: &mut ContainerStatus) {
    if s.state != ContainerState::Exited {
        return;
    }
    let code = s.exit_code.unwrap_or(0);
    let reason = s.reason.as_deref().unwrap_or_default();
    // A container that could not even start has no logs to fall back to.
    let fallback = s.annotations.get(POLICY_ANNOTATION).map(String::as_str)
        == Some(FALLBACK_TO_LOGS)
        && code != 0
        && reason != "ContainerCannotRun"
        && reason != runtime::shim::START_ERROR_REASON;
    let path = s.annotations.get(PATH_ANNOTATION).map(String::as_str);
    let (mut message, check_logs) = from_file(s, path, fallback);
    if check_logs {
        message = last_log_lines(&s.log_path);
    }
    if message.is_empty() {
        return;
    }
    let mut full = s.message.clone().unwrap_or_default();
    if !full.is_empty() {
        full.push_str(": ");
    }
    full.push_str(&message);
    s.message = Some(full);
}

/// The message file's content, and whether to read the logs instead.
fn from_file(s: &ContainerStatus, path: Option<&str>, fallback: bool) -> (String, bool) {
    let Some(path) = path else {
        return (String::new(), fallback);
    };
    let Some(mount) = s.mounts.iter().find(|m| m.container_path == path) else {
        return (String::new(), fallback);
    };
    match read_tail(&mount.host_path, MAX_MESSAGE_BYTES) {
        Ok(data) => {
            let text = String::from_utf8_lossy(&data).into_owned();
            let empty = text.is_empty();
            (text, fallback && empty)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), fallback),
        Err(e) => (
            format!(
                "Error on reading termination log {}: {e}",
                mount.host_path.display()
            ),
            false,
        ),
    }
}

/// At most the last `max` bytes of the file.
fn read_tail(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        f.seek(SeekFrom::Start(len - max))?;
    }
    let mut data = Vec::new();
    f.take(max).read_to_end(&mut data)?;
    Ok(data)
}

/// The content of the log's last lines, as `kubectl logs --tail=80` shows
/// it, cut to its last 2048 bytes.
fn last_log_lines(path: &Path) -> String {
    let data = match read_tail(path, LOG_WINDOW) {
        Ok(data) => data,
        Err(e) => return format!("Error on reading termination message from logs: {e}"),
    };
    let mut out = Vec::new();
    let from = logs::tail_offset(&data, MAX_LOG_LINES);
    logs::render(&data[from..], &logs::LogOptions::default(), &mut out, None);
    let cut = out.len().saturating_sub(MAX_LOG_BYTES);
    String::from_utf8_lossy(&out[cut..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::{ContainerMetadata, Mount, MountPropagation};

    fn exited(dir: &Path, code: i32, policy: &str, message_file: Option<&str>) -> ContainerStatus {
        let host = dir.join("termination-log");
        if let Some(text) = message_file {
            std::fs::write(&host, text).unwrap();
        }
        let log = dir.join("0.log");
        let mut lines = String::new();
        for i in 0..100 {
            lines.push_str(&format!(
                "2026-01-01T00:00:00.000000000Z stdout F line {i}\n"
            ));
        }
        lines.push_str("2026-01-01T00:00:00.000000000Z stderr F it broke\n");
        std::fs::write(&log, lines).unwrap();
        ContainerStatus {
            id: "c1".into(),
            pod_sandbox_id: "s1".into(),
            metadata: ContainerMetadata {
                name: "app".into(),
                attempt: 0,
            },
            state: ContainerState::Exited,
            created_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
            exit_code: Some(code),
            image: String::new(),
            image_ref: String::new(),
            reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
            message: None,
            labels: BTreeMap::new(),
            annotations: [
                (
                    PATH_ANNOTATION.to_string(),
                    "/dev/termination-log".to_string(),
                ),
                (POLICY_ANNOTATION.to_string(), policy.to_string()),
            ]
            .into(),
            log_path: log,
            mounts: vec![Mount {
                container_path: "/dev/termination-log".into(),
                host_path: host,
                readonly: false,
                propagation: MountPropagation::Private,
            }],
        }
    }

    #[test]
    fn the_message_file_is_the_termination_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = exited(dir.path(), 1, "File", Some("disk full"));
        enrich(&mut s);
        assert_eq!(s.message.as_deref(), Some("disk full"));
    }

    #[test]
    fn only_the_last_4096_bytes_of_the_file_count() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{}end", "x".repeat(5000));
        let mut s = exited(dir.path(), 0, "File", Some(&text));
        enrich(&mut s);
        let m = s.message.unwrap();
        assert_eq!(m.len(), 4096);
        assert!(m.ends_with("xend"));
    }

    #[test]
    fn a_failed_container_falls_back_to_its_last_log_lines_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = exited(dir.path(), 2, FALLBACK_TO_LOGS, Some(""));
        enrich(&mut s);
        let m = s.message.unwrap();
        assert!(m.ends_with("line 99\nit broke\n"), "{m:?}");
        assert!(m.len() <= 2048);
        assert!(!m.contains("line 20\n"), "only the last 80 lines: {m:?}");

        // Not when it succeeded, nor with the File policy.
        let mut ok = exited(dir.path(), 0, FALLBACK_TO_LOGS, Some(""));
        enrich(&mut ok);
        assert_eq!(ok.message, None);
        let mut file = exited(dir.path(), 2, "File", Some(""));
        enrich(&mut file);
        assert_eq!(file.message, None);
    }

    #[test]
    fn a_runtime_message_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = exited(dir.path(), 137, "File", Some("bye"));
        s.message = Some("the container's shim is gone".into());
        enrich(&mut s);
        assert_eq!(
            s.message.as_deref(),
            Some("the container's shim is gone: bye")
        );
    }

    #[test]
    fn running_containers_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = exited(dir.path(), 1, "File", Some("not yet"));
        s.state = ContainerState::Running;
        enrich(&mut s);
        assert_eq!(s.message, None);
    }
}
