//! `krate image import/ls/rm/pull` as a user runs them, on a data
//! directory of the test's own.

use std::path::Path;
use std::process::Command;

use image::testing::{self, TestRegistry};

fn krate_image(data_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_krate"))
        .arg("image")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn imported_images_are_listed_like_crictl_images_and_removed_by_tag() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let oci = dir.path().join("busybox.tar");
    let docker = dir.path().join("tools.tar");
    let busybox = testing::busybox_oci_archive(&oci, "busybox:1.36").unwrap();
    testing::busybox_docker_archive(&docker, "localhost:5000/tools:v1").unwrap();

    let (ok, out, err) = krate_image(
        &data,
        &["import", oci.to_str().unwrap(), docker.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "Imported docker.io/library/busybox:1.36 ({})",
            busybox.id()
        )),
        "{out}"
    );

    let (ok, out, err) = krate_image(&data, &["ls"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let columns = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(columns(lines[0]), ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]);
    let short_id = &busybox.id()[7..20];
    let row = columns(lines[1]);
    assert_eq!(&row[..3], ["docker.io/library/busybox", "1.36", short_id]);
    assert!(row[3].ends_with("MB"), "{out}");
    // Both archives hold the same image: one ID, two names.
    assert_eq!(
        &columns(lines[2])[..3],
        ["localhost:5000/tools", "v1", short_id]
    );

    let (ok, out, _) = krate_image(&data, &["ls", "-q"]);
    assert!(ok);
    assert_eq!(out.trim(), busybox.id());

    let (ok, out, err) = krate_image(&data, &["rm", "busybox:1.36"]);
    assert!(ok, "{err}");
    assert_eq!(out, "Untagged: docker.io/library/busybox:1.36\n");
    let (ok, out, err) = krate_image(&data, &["rm", "localhost:5000/tools:v1", "nope"]);
    assert!(!ok);
    assert!(out.contains(&format!("Deleted: {}", busybox.id())), "{out}");
    assert!(err.contains("image \"nope\" not found"), "{err}");
    let (_, out, _) = krate_image(&data, &["ls"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(
        std::fs::read_dir(data.join("images/layers/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn pull_fetches_from_a_loopback_registry_over_plain_http() {
    let registry = TestRegistry::start().unwrap();
    let built = testing::busybox_image("x").unwrap();
    registry.push("test/busybox", "v1", &built).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{}/test/busybox:v1", registry.host());

    let (ok, out, err) = krate_image(dir.path(), &["pull", &name]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("Image is up to date for {}\n", built.id()));

    let (ok, _, err) = krate_image(
        dir.path(),
        &["pull", &format!("{}/missing", registry.host())],
    );
    assert!(!ok);
    let missing = format!("{}/missing:latest", registry.host());
    assert!(
        err.contains(&format!(
            "failed to resolve reference \"{missing}\": {missing}: not found"
        )),
        "{err}"
    );
}
