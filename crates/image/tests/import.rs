//! Importing OCI and docker archives into a store on disk.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use image::layer::Compression;
use image::testing::{self, LayerBuilder, TestImage, TestLayer};
use image::{ImageConfig, Store};

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn image_of(name: &str, layers: Vec<TestLayer>) -> TestImage {
    TestImage::new(
        Some(name),
        layers,
        &ImageConfig {
            cmd: vec!["sh".into()],
            ..ImageConfig::default()
        },
    )
}

fn base_layer() -> TestLayer {
    TestLayer::new(
        LayerBuilder::new()
            .dir("etc", 0o755)
            .file("etc/base", b"base", 0o644)
            .finish(),
        Compression::Gzip,
    )
}

fn top_layer(content: &[u8]) -> TestLayer {
    TestLayer::new(
        LayerBuilder::new()
            .file("app", content, 0o755)
            .whiteout("etc/base")
            .finish(),
        Compression::Zstd,
    )
}

#[test]
fn busybox_oci_archive_imports_with_its_name_config_and_layers() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    let built = testing::busybox_oci_archive(&archive, "busybox:test").unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();

    let imported = store.import(&archive).unwrap();
    assert_eq!(imported.len(), 1);
    let image = store
        .resolve("busybox:test")
        .expect("found by its short name");
    assert_eq!(image, imported[0]);
    assert_eq!(image.id, built.id());
    assert_eq!(image.repo_tags, ["docker.io/library/busybox:test"]);
    assert_eq!(
        image.repo_digests,
        [format!(
            "docker.io/library/busybox@{}",
            built.manifest_digest
        )]
    );
    assert_eq!(image.config.cmd, ["sh"]);
    assert_eq!(image.config.env, [testing::DEFAULT_PATH]);
    assert_eq!(image.layers.len(), 1);
    let root = &image.layers[0];
    assert!(root.join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert!(fs::read_to_string(root.join("etc/passwd"))
        .unwrap()
        .contains("nobody:x:65534:65534"));
    assert!(image.size > 500_000, "{}", image.size);

    assert_eq!(store.resolve(&image.id), Some(image.clone()));
    assert_eq!(store.resolve(&image.id[7..19]), Some(image.clone()));
    assert_eq!(store.resolve(&image.repo_digests[0]), Some(image.clone()));
    assert_eq!(store.resolve("busybox"), None, "only the imported tag");
    assert_eq!(store.list().unwrap(), vec![image]);
    // A second store on the same directory (another process) sees it.
    assert!(Store::open(dir.path().join("images"))
        .unwrap()
        .resolve("busybox:test")
        .is_some());
}

#[test]
fn docker_archive_imports_with_its_repo_tags() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox-docker.tar");
    let built =
        testing::busybox_docker_archive(&archive, "localhost:5000/tools/busybox:1.0").unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let imported = store.import(&archive).unwrap();
    assert_eq!(imported.len(), 1);
    let image = store.resolve("localhost:5000/tools/busybox:1.0").unwrap();
    assert_eq!(image.id, built.id());
    assert_eq!(image.repo_tags, ["localhost:5000/tools/busybox:1.0"]);
    assert!(
        image.repo_digests.is_empty(),
        "a docker archive has no manifest"
    );
    assert!(image.layers[0].join("bin/busybox").is_file());
}

#[test]
fn a_layer_shared_by_two_images_is_unpacked_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let a = image_of("a:1", vec![base_layer(), top_layer(b"a")]);
    let b = image_of("b:1", vec![base_layer(), top_layer(b"b")]);
    let (pa, pb) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    testing::write_oci_archive(&pa, &[a]).unwrap();
    testing::write_docker_archive(&pb, &[b]).unwrap();

    let ia = store.import(&pa).unwrap().remove(0);
    // Marks the unpacked base layer: unpacking it again would lose the mark.
    fs::write(ia.layers[0].join("mark"), b"").unwrap();
    let ib = store.import(&pb).unwrap().remove(0);
    assert_eq!(ia.layers[0], ib.layers[0]);
    assert!(ib.layers[0].join("mark").exists());
    assert_ne!(ia.layers[1], ib.layers[1]);
    assert_eq!(entries(&dir.path().join("images/layers/sha256")).len(), 3);
    // The whiteout of the top layer hides the base layer's file.
    let wh = fs::symlink_metadata(ib.layers[1].join("etc/base")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &wh.file_type()
    ));

    // Removing one image keeps the layer the other uses.
    let removed = store.remove("a:1", &HashSet::new()).unwrap();
    assert_eq!(removed.deleted.as_deref(), Some(ia.id.as_str()));
    assert!(ib.layers.iter().all(|l| l.is_dir()));
    assert!(!ia.layers[1].exists());
    assert_eq!(store.list().unwrap(), vec![ib]);
}

#[test]
fn a_blob_whose_digest_does_not_match_is_rejected_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let mut bad = image_of("bad:1", vec![base_layer()]);
    bad.layers[0].blob = testing::compress(b"not the layer", Compression::Gzip);
    let archive = dir.path().join("bad.tar");
    testing::write_oci_archive(&archive, &[bad]).unwrap();

    let err = store.import(&archive).unwrap_err();
    assert!(err.is_malformed(), "{err}");
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert_nothing_stored(dir.path());
}

#[test]
fn a_layer_whose_diff_id_does_not_match_is_rejected_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let mut layer = base_layer();
    layer.diff_id = image::sha256_digest(b"something else");
    let archive = dir.path().join("bad.tar");
    testing::write_oci_archive(&archive, &[image_of("bad:2", vec![layer])]).unwrap();

    let err = store.import(&archive).unwrap_err();
    assert!(err.is_malformed(), "{err}");
    assert_nothing_stored(dir.path());
}

#[test]
fn an_archive_that_is_no_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let archive = dir.path().join("junk.tar");
    fs::write(
        &archive,
        LayerBuilder::new().file("hello", b"x", 0o644).finish(),
    )
    .unwrap();
    assert!(store.import(&archive).unwrap_err().is_malformed());
    fs::write(
        &archive,
        b"not a tar at all, just some bytes that go on for a while",
    )
    .unwrap();
    assert!(store.import(&archive).is_err());
    assert_nothing_stored(dir.path());
}

fn assert_nothing_stored(dir: &Path) {
    let root = dir.join("images");
    assert_eq!(entries(&root.join("blobs/sha256")), Vec::<String>::new());
    assert_eq!(entries(&root.join("layers/sha256")), Vec::<String>::new());
    assert_eq!(entries(&root.join("tmp")), Vec::<String>::new());
    assert!(Store::open(&root).unwrap().list().unwrap().is_empty());
}

#[test]
fn removing_the_last_tag_of_an_image_in_use_keeps_it_until_gc_finds_it_unused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let archive = dir.path().join("a.tar");
    let img = image_of("app:v1", vec![base_layer(), top_layer(b"x")]);
    testing::write_oci_archive(&archive, std::slice::from_ref(&img)).unwrap();
    let imported = store.import(&archive).unwrap().remove(0);
    let in_use: HashSet<String> = [imported.id.clone()].into();

    let removed = store.remove("app:v1", &in_use).unwrap();
    assert_eq!(removed.deleted, None);
    assert!(removed
        .untagged
        .contains(&"docker.io/library/app:v1".to_string()));
    let kept = store.resolve(&imported.id).expect("kept while in use");
    assert!(kept.repo_tags.is_empty());
    assert!(kept.layers.iter().all(|l| l.is_dir()));
    assert!(store.resolve("app:v1").is_none());

    let report = store.gc(&HashSet::new()).unwrap();
    assert_eq!(report.images, std::slice::from_ref(&imported.id));
    assert_eq!(report.layers, 2);
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        entries(&dir.path().join("images/blobs/sha256")),
        Vec::<String>::new()
    );

    assert!(store.remove("app:v1", &HashSet::new()).is_err());
}

#[test]
fn importing_again_moves_a_tag_to_the_new_image() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let (p1, p2) = (dir.path().join("1.tar"), dir.path().join("2.tar"));
    testing::write_oci_archive(&p1, &[image_of("app", vec![top_layer(b"1")])]).unwrap();
    testing::write_oci_archive(&p2, &[image_of("app", vec![top_layer(b"2")])]).unwrap();
    let first = store.import(&p1).unwrap().remove(0);
    let second = store.import(&p2).unwrap().remove(0);
    assert_eq!(store.resolve("app").unwrap().id, second.id);
    let old = store.resolve(&first.id).unwrap();
    assert!(old.repo_tags.is_empty());
    // Its repo digest still names it.
    assert_eq!(old.repo_digests.len(), 1);
}

#[test]
fn concurrent_imports_of_one_archive_store_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let archive = dir.path().join("busybox.tar");
    testing::busybox_oci_archive(&archive, "busybox:conc").unwrap();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (store, archive) = (store.clone(), archive.clone());
            std::thread::spawn(move || store.import(&archive).unwrap())
        })
        .collect();
    let ids: HashSet<String> = threads
        .into_iter()
        .map(|t| t.join().unwrap().remove(0).id)
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(store.list().unwrap().len(), 1);
    assert_eq!(entries(&dir.path().join("images/layers/sha256")).len(), 1);
}

/// The runtime's contract: the layer directories, top first, are the lower
/// dirs of an overlay mount, and whiteouts hide what is below them.
#[test]
fn unpacked_layers_stack_as_overlayfs_lower_dirs_with_whiteouts_applied() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let base = TestLayer::new(
        LayerBuilder::new()
            .file("etc/gone", b"", 0o644)
            .file("etc/kept", b"", 0o644)
            .file("var/cache/old", b"", 0o644)
            .finish(),
        Compression::Gzip,
    );
    let top = TestLayer::new(
        LayerBuilder::new()
            .whiteout("etc/gone")
            .dir("var/cache", 0o755)
            .opaque("var/cache")
            .file("var/cache/new", b"", 0o644)
            .finish(),
        Compression::Zstd,
    );
    let archive = dir.path().join("layers.tar");
    testing::write_oci_archive(&archive, &[image_of("stack", vec![base, top])]).unwrap();
    let image = store.import(&archive).unwrap().remove(0);

    let lower: Vec<String> = image
        .layers
        .iter()
        .rev()
        .map(|l| l.display().to_string())
        .collect();
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    // In a mount namespace of its own: the mount goes with the process.
    let script = format!(
        "mount -t overlay overlay -o lowerdir={lower} {m} && ls -A {m}/etc {m}/var/cache",
        lower = lower.join(":"),
        m = mnt.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = listing
        .lines()
        .filter(|l| !l.is_empty() && !l.ends_with(':'))
        .collect();
    assert_eq!(names, ["kept", "new"], "{listing}");
}

/// The store's root is 0700, yet a container running as nobody reads its
/// root file system through the overlay mount.
#[test]
fn a_non_root_process_reads_the_image_through_an_overlay_of_its_layers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let archive = dir.path().join("busybox.tar");
    testing::busybox_oci_archive(&archive, "busybox:nobody").unwrap();
    let image = store.import(&archive).unwrap().remove(0);
    let (mnt, upper, work) = (
        dir.path().join("mnt"),
        dir.path().join("upper"),
        dir.path().join("work"),
    );
    for d in [&mnt, &upper, &work] {
        fs::create_dir(d).unwrap();
    }
    let script = format!(
        "mount -t overlay overlay -o lowerdir={lower},upperdir={u},workdir={w} {m} && chroot --userspec=65534:65534 {m} /bin/sh -c 'id -u; cat /etc/passwd >/dev/null; ls /bin/busybox'",
        lower = image.layers[0].display(),
        u = upper.display(),
        w = work.display(),
        m = mnt.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "65534\n/bin/busybox\n"
    );
}
