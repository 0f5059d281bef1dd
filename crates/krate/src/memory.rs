//! The resident memory of a long-running `krate server`: how the allocator
//! hands freed memory back, and which of the binary's pages stay mapped.
//!
//! An idle server measured 58 MB RSS: 31 MB of the binary's text, 20 MB of
//! mimalloc's arena, the rest libraries and read-only data. The text is
//! clean file-backed memory: the kernel maps it 64 KB at a time around each
//! page fault ("fault-around"), and start-up runs a lot of code (TLS set-up,
//! bootstrap objects, every controller's first list) that an idle or a busy
//! server never runs again. Only 6 MB of text is used by an idle server at
//! 4 KB granularity.

use runtime::sys::{advise_memory, MemoryAdvice};

/// mimalloc gives a freed page back to the kernel at once, not after its
/// default delay of 1 s: the delay only runs out when the same thread
/// next allocates, so the free pages of a burst of requests stayed
/// resident in threads that then went idle. Idle server: anonymous
/// memory 20 → 12-14 MB (with the `no_thp` build feature, which keeps
/// mimalloc from asking for huge pages before `main` runs); server CPU per
/// create and get unchanged within the benchmark's noise. Before the
/// runtime starts other threads.
pub fn purge_freed_pages_at_once() {
    runtime::sys::set_allocator_purge_delay(0);
}

/// Mappings of this binary's read-only segments (text, read-only data):
/// `(start, end)` addresses.
fn binary_read_only_mappings() -> Vec<(usize, usize)> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let here = binary_read_only_mappings as fn() -> Vec<(usize, usize)> as usize;
    let parse = |line: &str| -> Option<(usize, usize, String, String)> {
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?.to_string();
        let path = fields.nth(3)?.to_string();
        Some((
            usize::from_str_radix(start, 16).ok()?,
            usize::from_str_radix(end, 16).ok()?,
            perms,
            path,
        ))
    };
    let mappings: Vec<_> = maps.lines().filter_map(parse).collect();
    let Some(binary) = mappings
        .iter()
        .find(|(start, end, _, _)| (*start..*end).contains(&here))
        .map(|m| m.3.clone())
    else {
        return Vec::new();
    };
    mappings
        .into_iter()
        .filter(|(_, _, perms, path)| *path == binary && !perms.contains('w'))
        .map(|(start, end, _, _)| (start, end))
        .collect()
}

/// Size of the pieces `split_binary_mappings` cuts the binary's read-only
/// mappings into, for a binary of `total` read-only bytes: 16 KB, more
/// when that would make over 4,096 mappings (a debug build).
fn split_size(total: usize) -> usize {
    let mut size = 16 << 10;
    while total / size > 4096 {
        size *= 2;
    }
    size
}

/// Cuts the binary's read-only mappings into 16 KB mappings, so that a
/// page fault in them maps 16 KB instead of the kernel's 64 KB
/// fault-around window (which stops at a mapping's end; madvise(RANDOM)
/// does not turn it off, nor, on recent kernels such as 6.18, read-ahead
/// for executable mappings). Alternate pieces get MADV_NOHUGEPAGE, which
/// changes nothing else for file-backed text in a process without
/// transparent huge pages, but keeps the kernel from merging neighbours.
/// About 3,600 mappings for a release binary: 0.7 MB of kernel memory for
/// their vm_area_structs against the 13 MB of text the idle server no
/// longer maps (31 → 5-7 MB after `page_out_binary`, 19 MB without the
/// split).
pub fn split_binary_mappings() {
    let mappings = binary_read_only_mappings();
    let total = mappings.iter().map(|(s, e)| e - s).sum();
    let size = split_size(total);
    for (start, end) in mappings {
        let mut at = start;
        while at < end {
            let len = size.min(end - at);
            let _ = advise_memory(at, len, MemoryAdvice::NoHugePage);
            at += 2 * size;
        }
    }
}

/// Drops the binary's read-only pages from this process's memory, once
/// start-up is over: code that runs again faults back in (from the page
/// cache or the file), start-up's code stays out. The pages are clean
/// copies of the file, so nothing is lost; pages another process maps too
/// (a shim of the same binary) are left alone by the kernel, and so are
/// pages of a binary written so recently that they are not on disk yet.
pub fn page_out_binary() {
    for (start, end) in binary_read_only_mappings() {
        let _ = advise_memory(start, end - start, MemoryAdvice::PageOut);
    }
}

/// `page_out_binary` once the server's start-up work has settled: the
/// controllers' and scheduler's first lists and the garbage collector's
/// sync finish within about 0.2 s of the API server being ready.
pub fn page_out_binary_after_start_up() {
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        tokio::task::spawn_blocking(page_out_binary);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_binarys_text_and_read_only_data() {
        let mappings = binary_read_only_mappings();
        let here = binary_read_only_mappings as fn() -> Vec<(usize, usize)> as usize;
        assert!(mappings.iter().any(|(s, e)| (*s..*e).contains(&here)));
        assert!(mappings.len() >= 2, "{mappings:x?}");
    }

    #[test]
    fn split_size_keeps_mappings_under_4096() {
        assert_eq!(split_size(57 << 20), 16 << 10);
        assert_eq!(split_size(70 << 20), 32 << 10);
        assert!((300 << 20) / split_size(300 << 20) <= 4096);
    }

    #[test]
    fn split_and_page_out_leave_the_code_running() {
        let before = binary_read_only_mappings();
        split_binary_mappings();
        page_out_binary();
        let after = binary_read_only_mappings();
        assert!(
            after.len() > before.len() * 100,
            "{} → {}",
            before.len(),
            after.len()
        );
    }
}
