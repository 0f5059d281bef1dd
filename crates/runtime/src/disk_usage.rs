//! Disk usage of a directory tree as `du -x` counts it (allocated blocks,
//! one filesystem, hard links once): the measure the kubelet's eviction
//! manager compares with ephemeral-storage limits and emptyDir size limits.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes and inodes used under `path` (0 and 0 if it does not exist).
pub fn disk_usage(path: &Path) -> (u64, u64) {
    let Ok(root) = std::fs::symlink_metadata(path) else {
        return (0, 0);
    };
    let dev = root.dev();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut bytes = root.blocks() * 512;
    let mut inodes = 1;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.dev() != dev {
                continue;
            }
            if meta.nlink() > 1 && !meta.is_dir() && !seen.insert(meta.ino()) {
                continue;
            }
            bytes += meta.blocks() * 512;
            inodes += 1;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    (bytes, inodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_written_files_and_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        let (empty, _) = disk_usage(dir.path());
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), vec![1u8; 1 << 20]).unwrap();
        std::fs::hard_link(dir.path().join("d/f"), dir.path().join("g")).unwrap();
        let (bytes, inodes) = disk_usage(dir.path());
        assert!(bytes >= empty + (1 << 20), "{bytes}");
        assert!(bytes < empty + (1 << 20) + 64 * 1024, "{bytes}");
        assert_eq!(inodes, 3);
        assert_eq!(disk_usage(&dir.path().join("missing")), (0, 0));
    }
}
