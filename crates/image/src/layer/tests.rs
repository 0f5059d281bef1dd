use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::*;
use crate::testing::{compress, LayerBuilder};

/// Unpacks `tar` (compressed as asked) into a fresh directory.
fn unpack_layer(tar: &[u8], compression: Compression) -> (tempfile::TempDir, Result<String>) {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("blob");
    fs::write(&blob, compress(tar, compression)).unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let result = unpack(&blob, &root, None);
    (dir, result)
}

#[test]
fn oci_whiteouts_become_overlayfs_whiteouts() {
    let tar = LayerBuilder::new()
        .dir("etc", 0o755)
        .whiteout("etc/motd")
        .dir("var/cache", 0o755)
        .opaque("var/cache")
        .finish();
    let (dir, result) = unpack_layer(&tar, Compression::Gzip);
    result.unwrap();
    let root = dir.path().join("root");
    let motd = fs::symlink_metadata(root.join("etc/motd")).unwrap();
    assert!(motd.file_type().is_char_device());
    assert_eq!(motd.rdev(), 0);
    assert!(!root.join("etc/.wh.motd").exists());
    let mut value = [0u8; 8];
    let n = rustix::fs::lgetxattr(root.join("var/cache"), OPAQUE_XATTR, &mut value).unwrap();
    assert_eq!(&value[..n], b"y");
    assert!(!root.join("var/cache/.wh..wh..opq").exists());
}

#[test]
fn ownership_modes_links_and_device_nodes_are_kept() {
    let tar = LayerBuilder::new()
        .dir_owned("home/app", 0o750, 1000, 1001)
        .file_owned("home/app/run", b"#!/bin/sh\n", 0o4755, 1000, 1001)
        .symlink("home/app/link", "/etc/passwd")
        .hardlink("home/app/again", "home/app/run")
        .char_device("dev/null", 0o666, 1, 3)
        .fifo("run/fifo", 0o600)
        .dir("tmp", 0o1777)
        .finish();
    let (dir, result) = unpack_layer(&tar, Compression::Zstd);
    result.unwrap();
    let root = dir.path().join("root");
    let app = fs::metadata(root.join("home/app")).unwrap();
    assert_eq!(
        (app.uid(), app.gid(), app.mode() & 0o7777),
        (1000, 1001, 0o750)
    );
    let run = fs::metadata(root.join("home/app/run")).unwrap();
    assert_eq!((run.uid(), run.mode() & 0o7777), (1000, 0o4755));
    assert_eq!(
        fs::read_link(root.join("home/app/link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::metadata(root.join("home/app/again")).unwrap().ino(),
        run.ino()
    );
    let null = fs::metadata(root.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert!(fs::metadata(root.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    assert_eq!(fs::metadata(&root).unwrap().mode() & 0o777, 0o755);
}

#[test]
fn entries_climbing_out_with_dot_dot_are_refused() {
    let tar = LayerBuilder::new()
        .raw(tar::EntryType::Regular, "../../escaped", None, b"x")
        .finish();
    let (dir, result) = unpack_layer(&tar, Compression::None);
    let err = result.unwrap_err();
    assert!(err.is_malformed(), "{err}");
    assert!(!dir.path().join("escaped").exists());
}

#[test]
fn writes_through_symlinks_stay_inside_the_layer() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    let tar = LayerBuilder::new()
        .symlink("abs", &target)
        .file("abs/planted", b"x", 0o644)
        .symlink("rel", "../../../../../../../..")
        .file("rel/tmp/planted2", b"y", 0o644)
        .finish();
    let (dir, result) = unpack_layer(&tar, Compression::None);
    result.unwrap();
    let root = dir.path().join("root");
    assert!(!outside.path().join("planted").exists());
    assert!(root
        .join(target.trim_start_matches('/'))
        .join("planted")
        .exists());
    assert!(root.join("tmp/planted2").exists());
}

#[test]
fn hard_links_to_outside_the_layer_are_refused() {
    let tar = LayerBuilder::new()
        .raw(
            tar::EntryType::Link,
            "passwd",
            Some("../../../../etc/passwd"),
            b"",
        )
        .finish();
    let (_dir, result) = unpack_layer(&tar, Compression::None);
    assert!(result.unwrap_err().is_malformed());
}

#[test]
fn the_diff_id_is_the_digest_of_the_uncompressed_tar() {
    let tar = LayerBuilder::new().file("a", b"hello", 0o644).finish();
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let (_dir, result) = unpack_layer(&tar, compression);
        assert_eq!(result.unwrap(), crate::digest::sha256(&tar));
    }
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("blob");
    fs::write(&blob, compress(&tar, Compression::Gzip)).unwrap();
    let wrong = crate::digest::sha256(b"other");
    let err = unpack(&blob, dir.path(), Some(&wrong)).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

#[test]
fn a_later_entry_replaces_an_earlier_one() {
    let tar = LayerBuilder::new()
        .file("x", b"old", 0o644)
        .symlink("x", "y")
        .dir("d", 0o700)
        .file("d/f", b"1", 0o644)
        .dir("d", 0o755)
        .finish();
    let (dir, result) = unpack_layer(&tar, Compression::None);
    result.unwrap();
    let root = dir.path().join("root");
    assert_eq!(fs::read_link(root.join("x")).unwrap(), Path::new("y"));
    assert!(root.join("d/f").exists());
    assert_eq!(fs::metadata(root.join("d")).unwrap().mode() & 0o777, 0o755);
}
