//! Test images built on this machine, for tests of the store and of
//! everything that runs containers: layers written entry by entry, images
//! and archives (OCI layout or docker archive) made from them, and a
//! busybox image made from Debian's static `/usr/bin/busybox`.
//!
//! ```no_run
//! # fn f(dir: &std::path::Path) -> std::io::Result<()> {
//! let image = image::testing::busybox_oci_archive(&dir.join("busybox.tar"), "busybox:test")?;
//! println!("import it, then run {}", image.id());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde_json::json;

use crate::digest::sha256;
use crate::layer::Compression;
use crate::reference::Reference;
use crate::spec;
use crate::ImageConfig;

/// The static busybox the test images are made of (Debian's
/// `busybox-static`).
pub const BUSYBOX: &str = "/usr/bin/busybox";

/// `PATH` in the busybox image's config.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Applets linked when `busybox --list` cannot be run.
const APPLETS: &[&str] = &[
    "sh", "ash", "ls", "cat", "echo", "sleep", "id", "ps", "hostname", "wget", "nc", "httpd",
    "env", "mount", "umount", "true", "false", "test", "[", "mkdir", "rm", "cp", "mv", "ln",
    "touch", "chmod", "chown", "grep", "sed", "awk", "head", "tail", "wc", "sort", "uniq", "tr",
    "cut", "printf", "kill", "killall", "pidof", "top", "ip", "ifconfig", "route", "ping",
    "nslookup", "netstat", "df", "du", "free", "uname", "whoami", "date", "find", "xargs", "tee",
    "stat", "readlink", "dd", "tar", "gzip", "gunzip", "vi", "more", "less", "which", "yes", "seq",
    "timeout", "nproc", "uptime", "dmesg", "sync", "mknod", "nsenter", "unshare", "chroot",
];

/// A layer tarball written entry by entry, with fixed times and owners so
/// that the same entries give the same digest.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h
}

impl LayerBuilder {
    pub fn new() -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Complete);
        LayerBuilder { tar }
    }

    pub fn dir(self, path: &str, mode: u32) -> Self {
        self.dir_owned(path, mode, 0, 0)
    }

    pub fn dir_owned(mut self, path: &str, mode: u32, uid: u64, gid: u64) -> Self {
        let mut h = header(tar::EntryType::Directory, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        self.tar
            .append_data(&mut h, path, io::empty())
            .expect("writing to memory");
        self
    }

    pub fn file(self, path: &str, contents: &[u8], mode: u32) -> Self {
        self.file_owned(path, contents, mode, 0, 0)
    }

    pub fn file_owned(
        mut self,
        path: &str,
        contents: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> Self {
        let mut h = header(tar::EntryType::Regular, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(contents.len() as u64);
        self.tar
            .append_data(&mut h, path, contents)
            .expect("writing to memory");
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Symlink, 0o777);
        self.tar
            .append_link(&mut h, path, target)
            .expect("writing to memory");
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Link, 0o644);
        self.tar
            .append_link(&mut h, path, target)
            .expect("writing to memory");
        self
    }

    pub fn char_device(mut self, path: &str, mode: u32, major: u32, minor: u32) -> Self {
        let mut h = header(tar::EntryType::Char, mode);
        h.set_device_major(major).expect("gnu header");
        h.set_device_minor(minor).expect("gnu header");
        self.tar
            .append_data(&mut h, path, io::empty())
            .expect("writing to memory");
        self
    }

    pub fn fifo(mut self, path: &str, mode: u32) -> Self {
        let mut h = header(tar::EntryType::Fifo, mode);
        self.tar
            .append_data(&mut h, path, io::empty())
            .expect("writing to memory");
        self
    }

    /// An OCI whiteout: `path` is deleted from the layers below.
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, base) = match path.rsplit_once('/') {
            Some((d, b)) => (format!("{d}/"), b),
            None => (String::new(), path),
        };
        self.file(&format!("{dir}.wh.{base}"), b"", 0o644)
    }

    /// An OCI opaque whiteout: what the layers below have in `dir` is hidden.
    pub fn opaque(self, dir: &str) -> Self {
        self.file(
            &format!("{}/.wh..wh..opq", dir.trim_end_matches('/')),
            b"",
            0o644,
        )
    }

    /// An entry whose name is written as given, unchecked (`../x`, `/x`):
    /// for tests of hostile layers.
    pub fn raw(
        mut self,
        kind: tar::EntryType,
        name: &str,
        link: Option<&str>,
        contents: &[u8],
    ) -> Self {
        let mut h = header(kind, 0o644);
        h.set_size(contents.len() as u64);
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_cksum();
        self.tar.append(&h, contents).expect("writing to memory");
        self
    }

    /// The uncompressed tarball.
    pub fn finish(self) -> Vec<u8> {
        self.tar.into_inner().expect("writing to memory")
    }
}

/// `tar` compressed as asked.
pub fn compress(tar: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).expect("writing to memory");
            e.finish().expect("writing to memory")
        }
        Compression::Zstd => zstd::stream::encode_all(tar, 3).expect("writing to memory"),
    }
}

/// A layer as a registry or an archive holds it.
#[derive(Clone)]
pub struct TestLayer {
    /// The uncompressed tarball.
    pub tar: Vec<u8>,
    /// The blob: `tar` compressed.
    pub blob: Vec<u8>,
    pub digest: String,
    pub diff_id: String,
    pub media_type: &'static str,
}

impl TestLayer {
    pub fn new(tar: Vec<u8>, compression: Compression) -> TestLayer {
        let blob = compress(&tar, compression);
        TestLayer {
            digest: sha256(&blob),
            diff_id: sha256(&tar),
            media_type: match compression {
                Compression::None => spec::OCI_LAYER,
                Compression::Gzip => spec::OCI_LAYER_GZIP,
                Compression::Zstd => spec::OCI_LAYER_ZSTD,
            },
            tar,
            blob,
        }
    }
}

/// An image: config, OCI manifest and layers, with their digests.
#[derive(Clone)]
pub struct TestImage {
    /// Normalized (`docker.io/library/busybox:latest`), when named.
    pub name: Option<String>,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub layers: Vec<TestLayer>,
}

impl TestImage {
    /// Builds an image of `layers` (lowest first) that runs as `config`
    /// says. `name` is normalized (`busybox` -> `docker.io/library/busybox:latest`).
    pub fn new(name: Option<&str>, layers: Vec<TestLayer>, config: &ImageConfig) -> TestImage {
        let name = name.map(|n| Reference::parse(n).expect("a valid image name").to_string());
        let mut run = serde_json::Map::new();
        let mut put = |k: &str, v: serde_json::Value| {
            run.insert(k.to_string(), v);
        };
        if !config.entrypoint.is_empty() {
            put("Entrypoint", json!(config.entrypoint));
        }
        if !config.cmd.is_empty() {
            put("Cmd", json!(config.cmd));
        }
        if !config.env.is_empty() {
            put("Env", json!(config.env));
        }
        if !config.working_dir.is_empty() {
            put("WorkingDir", json!(config.working_dir));
        }
        if !config.user.is_empty() {
            put("User", json!(config.user));
        }
        if !config.exposed_ports.is_empty() {
            let ports: BTreeMap<_, _> = config
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            put("ExposedPorts", json!(ports));
        }
        if !config.labels.is_empty() {
            put("Labels", json!(config.labels));
        }
        if !config.stop_signal.is_empty() {
            put("StopSignal", json!(config.stop_signal));
        }
        let config_json = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": run,
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
            },
        }))
        .expect("json");
        let config_digest = sha256(&config_json);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": spec::OCI_MANIFEST,
            "config": {
                "mediaType": spec::OCI_CONFIG,
                "digest": config_digest,
                "size": config_json.len(),
            },
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type,
                "digest": l.digest,
                "size": l.blob.len(),
            })).collect::<Vec<_>>(),
        }))
        .expect("json");
        TestImage {
            name,
            manifest_digest: sha256(&manifest),
            manifest,
            config: config_json,
            config_digest,
            layers,
        }
    }

    /// The image ID the store gives it (the config digest).
    pub fn id(&self) -> &str {
        &self.config_digest
    }
}

fn append_file(tar: &mut tar::Builder<fs::File>, path: &str, bytes: &[u8]) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, 0o644);
    h.set_size(bytes.len() as u64);
    tar.append_data(&mut h, path, bytes)
}

/// Writes an OCI image layout tarball holding `images` (as `ctr export`
/// does: `io.containerd.image.name` and `org.opencontainers.image.ref.name`
/// annotations).
pub fn write_oci_archive(path: &Path, images: &[TestImage]) -> io::Result<()> {
    let mut tar = tar::Builder::new(fs::File::create(path)?);
    append_file(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let manifests: Vec<_> = images
        .iter()
        .map(|i| {
            let mut d = json!({
                "mediaType": spec::OCI_MANIFEST,
                "digest": i.manifest_digest,
                "size": i.manifest.len(),
            });
            if let Some(name) = &i.name {
                let tag = Reference::parse(name)
                    .ok()
                    .and_then(|r| r.tag)
                    .unwrap_or_default();
                d["annotations"] = json!({
                    spec::ANNOTATION_CONTAINERD_NAME: name,
                    spec::ANNOTATION_REF_NAME: tag,
                });
            }
            d
        })
        .collect();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": spec::OCI_INDEX,
        "manifests": manifests,
    }))
    .expect("json");
    append_file(&mut tar, "index.json", &index)?;
    let mut written = std::collections::HashSet::new();
    for image in images {
        let blobs = [
            (&image.manifest_digest, &image.manifest),
            (&image.config_digest, &image.config),
        ]
        .into_iter()
        .chain(image.layers.iter().map(|l| (&l.digest, &l.blob)));
        for (digest, bytes) in blobs {
            if written.insert(digest.clone()) {
                append_file(&mut tar, &format!("blobs/sha256/{}", &digest[7..]), bytes)?;
            }
        }
    }
    tar.into_inner()?.sync_all()
}

/// Writes a docker archive (`docker save` before docker 25: manifest.json,
/// `<config hex>.json`, uncompressed `<diff id hex>/layer.tar`).
pub fn write_docker_archive(path: &Path, images: &[TestImage]) -> io::Result<()> {
    let mut tar = tar::Builder::new(fs::File::create(path)?);
    let manifest: Vec<_> = images
        .iter()
        .map(|i| {
            json!({
                "Config": format!("{}.json", &i.config_digest[7..]),
                "RepoTags": i.name.iter().map(|n| docker_short_name(n)).collect::<Vec<_>>(),
                "Layers": i.layers.iter().map(|l| format!("{}/layer.tar", &l.diff_id[7..])).collect::<Vec<_>>(),
            })
        })
        .collect();
    append_file(
        &mut tar,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    )?;
    let mut written = std::collections::HashSet::new();
    for image in images {
        append_file(
            &mut tar,
            &format!("{}.json", &image.config_digest[7..]),
            &image.config,
        )?;
        for l in &image.layers {
            if written.insert(l.diff_id.clone()) {
                append_file(&mut tar, &format!("{}/layer.tar", &l.diff_id[7..]), &l.tar)?;
            }
        }
    }
    tar.into_inner()?.sync_all()
}

/// `busybox:latest` for `docker.io/library/busybox:latest`, as `docker
/// save` writes RepoTags.
fn docker_short_name(name: &str) -> String {
    name.strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name)
        .to_string()
}

/// The root file system of the busybox image: `/bin/busybox` with a
/// symlink per applet in `/bin`, `/etc/passwd` and `/etc/group` with root
/// and nobody (65534), `/tmp` (1777), `/root`, and the mount points.
pub fn busybox_layer() -> io::Result<Vec<u8>> {
    let busybox = fs::read(BUSYBOX)?;
    let listed = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .ok();
    let mut applets: Vec<String> = match listed {
        Some(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .collect(),
        _ => APPLETS.iter().map(|a| a.to_string()).collect(),
    };
    applets.retain(|a| a != "busybox");
    applets.sort();
    applets.dedup();
    let mut layer = LayerBuilder::new()
        .dir("bin", 0o755)
        .file("bin/busybox", &busybox, 0o755);
    for applet in &applets {
        layer = layer.symlink(&format!("bin/{applet}"), "busybox");
    }
    Ok(layer
        .dir("dev", 0o755)
        .dir("etc", 0o755)
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
            0o644,
        )
        .file("etc/group", b"root:x:0:\nnobody:x:65534:\n", 0o644)
        .dir("home", 0o755)
        .dir("proc", 0o555)
        .dir("root", 0o700)
        .dir("sys", 0o555)
        .dir("tmp", 0o1777)
        .dir("usr", 0o755)
        .dir("var", 0o755)
        .finish())
}

/// The busybox image (one gzip layer, `Cmd ["sh"]`), named `name`.
pub fn busybox_image(name: &str) -> io::Result<TestImage> {
    let layer = TestLayer::new(busybox_layer()?, Compression::Gzip);
    Ok(TestImage::new(
        Some(name),
        vec![layer],
        &ImageConfig {
            cmd: vec!["sh".into()],
            env: vec![DEFAULT_PATH.into()],
            ..ImageConfig::default()
        },
    ))
}

/// An image a registry accepts but no runtime can use: its config blob is
/// not JSON. Pulling it fails as a malformed image.
pub fn malformed_image() -> TestImage {
    let layer = TestLayer::new(
        LayerBuilder::new().file("x", b"x", 0o644).finish(),
        Compression::Gzip,
    );
    let mut image = TestImage::new(None, vec![layer], &ImageConfig::default());
    image.config = b"{this is not json".to_vec();
    image.config_digest = sha256(&image.config);
    let mut manifest: serde_json::Value = serde_json::from_slice(&image.manifest).expect("json");
    manifest["config"]["digest"] = json!(image.config_digest);
    manifest["config"]["size"] = json!(image.config.len());
    image.manifest = serde_json::to_vec(&manifest).expect("json");
    image.manifest_digest = sha256(&image.manifest);
    image
}

/// Writes the busybox image as an OCI archive at `path`, for `Store::import`
/// or `krate image import`.
pub fn busybox_oci_archive(path: &Path, name: &str) -> io::Result<TestImage> {
    let image = busybox_image(name)?;
    write_oci_archive(path, std::slice::from_ref(&image))?;
    Ok(image)
}

/// Writes the busybox image as a docker archive (`docker save` format).
pub fn busybox_docker_archive(path: &Path, name: &str) -> io::Result<TestImage> {
    let image = busybox_image(name)?;
    write_docker_archive(path, std::slice::from_ref(&image))?;
    Ok(image)
}

mod registry;
pub use registry::{HttpResponse, TestRegistry, REGISTRY_BINARY};
