//! Key arithmetic shared by the backends: prefix ranges and paging.

/// The smallest key greater than every key that starts with `prefix`, or
/// `None` when no such key exists (empty prefix or all `0xff`), meaning "no
/// upper bound". This is etcd's `range_end` for a prefix read.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The smallest key greater than `key`: where the next page of a range
/// starts.
pub fn next_key(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(
            prefix_end(b"/registry/pods/"),
            Some(b"/registry/pods0".to_vec())
        );
    }

    #[test]
    fn prefix_end_carries_over_ff_bytes() {
        assert_eq!(prefix_end(&[b'a', 0xff, 0xff]), Some(vec![b'b']));
        assert_eq!(prefix_end(&[0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn next_key_sorts_right_after_key() {
        let k = b"abc".to_vec();
        let n = next_key(&k);
        assert!(n > k);
        assert!(n < b"abc\x00\x00".to_vec());
        assert!(n < b"abd".to_vec());
    }
}
