//! The store on disk, under its root:
//!
//! ```text
//! images.json               image records (written whole: temp file + rename)
//! blobs/sha256/<hex>        manifests, configs and layer blobs, by digest
//! layers/sha256/<diff-id>   each layer unpacked once (overlayfs lower dirs)
//! tmp/                      work in progress: renamed into place when whole
//! index.lock, gc.lock       flock(2) locks shared with other processes
//! ```
//!
//! Pulls and imports hold `gc.lock` shared while they add blobs and layers
//! that no record names yet; garbage collection takes it exclusively (and
//! skips its run when it cannot), so it never removes work in progress.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use crate::digest::{self, Hashing};
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::spec;

/// How a container of the image runs unless the pod says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// Empty when the image sets none.
    pub working_dir: String,
    /// `uid`, `uid:gid`, `name` or `name:group`; empty when the image sets
    /// none.
    pub user: String,
    /// `80/tcp`, ...
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Empty when the image sets none.
    pub stop_signal: String,
}

impl From<&spec::RunConfig> for ImageConfig {
    fn from(c: &spec::RunConfig) -> Self {
        ImageConfig {
            entrypoint: c.entrypoint.clone().unwrap_or_default(),
            cmd: c.cmd.clone().unwrap_or_default(),
            env: c.env.clone().unwrap_or_default(),
            working_dir: c.working_dir.clone().unwrap_or_default(),
            user: c.user.clone().unwrap_or_default(),
            exposed_ports: c
                .exposed_ports
                .as_ref()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default(),
            labels: c.labels.clone().unwrap_or_default(),
            stop_signal: c.stop_signal.clone().unwrap_or_default(),
        }
    }
}

/// An image in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:<digest of the config blob>`.
    pub id: String,
    /// `docker.io/library/busybox:latest`, ...
    pub repo_tags: Vec<String>,
    /// `docker.io/library/busybox@sha256:<manifest digest>`, ...
    pub repo_digests: Vec<String>,
    /// Bytes of the config and the (compressed) layer blobs.
    pub size: u64,
    pub config: ImageConfig,
    /// Unpacked layer directories, lowest first.
    pub layers: Vec<PathBuf>,
}

/// What `Store::remove` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub untagged: Vec<String>,
    /// The image ID, when the image itself is gone.
    pub deleted: Option<String>,
}

/// What `Store::gc` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub images: Vec<String>,
    pub blobs: usize,
    pub layers: usize,
    /// The run was skipped because a pull or an import was in progress.
    pub skipped: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: String,
    #[serde(default)]
    pub repo_tags: Vec<String>,
    #[serde(default)]
    pub repo_digests: Vec<String>,
    pub size: u64,
    pub config: ImageConfig,
    pub layers: Vec<LayerRecord>,
    /// The manifest the image came from, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LayerRecord {
    /// Digest of the blob as stored (compressed or not).
    pub digest: String,
    /// Digest of the uncompressed tar: names the unpacked directory.
    pub diff_id: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    images: Vec<Record>,
}

/// An image ready to be recorded: its blobs are in the store and its layers
/// unpacked.
pub(crate) struct Prepared {
    pub id: String,
    pub config: spec::ConfigFile,
    pub config_size: u64,
    pub layers: Vec<(LayerRecord, u64)>,
    pub manifest: Option<String>,
}

/// The node's image store. Cheap to clone; clones share locks and caches.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub root: PathBuf,
    pub registries_config: PathBuf,
    cache: Mutex<Option<(CacheKey, Arc<IndexFile>)>>,
    layer_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    pub pull_locks: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub http: std::sync::OnceLock<crate::registry::HttpClient>,
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct CacheKey {
    ino: u64,
    mtime_ns: i128,
    len: u64,
}

/// An flock(2) held until dropped.
pub(crate) struct FileLock(#[allow(dead_code)] File);

impl Store {
    /// Opens (creating when missing) the store at `root`. The registries
    /// config is `<root>/../registries.yaml` (when present).
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        let registries = root
            .parent()
            .map(|p| p.join("registries.yaml"))
            .unwrap_or_else(|| PathBuf::from("registries.yaml"));
        Store::open_with_registries(root, registries)
    }

    /// Opens the store at `root` with mirrors and credentials per registry
    /// host from `registries_config` (k3s's `registries.yaml`; a missing
    /// file means none).
    pub fn open_with_registries(
        root: impl Into<PathBuf>,
        registries_config: impl Into<PathBuf>,
    ) -> Result<Store> {
        let root = root.into();
        for dir in ["blobs/sha256", "layers/sha256", "tmp"] {
            let d = root.join(dir);
            fs::create_dir_all(&d).map_err(Error::io(&d))?;
        }
        // Layers hold images' set-user-ID files owned by root: no user of
        // the host may reach them (containers see them through overlay
        // mounts, which root made).
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).map_err(Error::io(&root))?;
        Ok(Store {
            inner: Arc::new(Inner {
                root,
                registries_config: registries_config.into(),
                cache: Mutex::new(None),
                layer_locks: Mutex::new(HashMap::new()),
                pull_locks: tokio::sync::Mutex::new(HashMap::new()),
                http: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Every image, in the order they were first stored.
    pub fn list(&self) -> Result<Vec<Image>> {
        Ok(self
            .index()?
            .images
            .iter()
            .map(|r| self.image_of(r))
            .collect())
    }

    /// The image that `name` names: a tag (`busybox`, `busybox:1.36`,
    /// `localhost:5000/x:v1`), a digest (`busybox@sha256:...`), or an image
    /// ID (`sha256:<hex>`, `<hex>` or a unique prefix of at least 12 hex
    /// digits).
    pub fn resolve(&self, name: &str) -> Option<Image> {
        let index = self.index().ok()?;
        find(&index.images, name).map(|i| self.image_of(&index.images[i]))
    }

    /// Imports the images of an OCI image layout tarball or a docker-archive
    /// tarball (`docker save`), gzip or zstd compressed or not.
    pub fn import(&self, path: &Path) -> Result<Vec<Image>> {
        crate::archive::import(self, path)
    }

    /// Imports every archive (`*.tar`, `*.tar.gz`, `*.tgz`, `*.tar.zst`)
    /// in `dir`, in name order, as k3s does with its agent images
    /// directory at start; a missing directory holds none. One archive's
    /// failure does not stop the others.
    pub fn import_dir(&self, dir: &Path) -> Vec<(PathBuf, Result<Vec<Image>>)> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                p.is_file()
                    && [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd"]
                        .iter()
                        .any(|s| name.ends_with(s))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|f| {
                let result = self.import(&f);
                (f, result)
            })
            .collect()
    }

    /// Removes `name_or_id`: a tag or digest loses that reference, an ID
    /// loses all of them; an image left without references is deleted
    /// unless a container uses it (its ID in `in_use`), and what no image
    /// references any more is garbage-collected.
    pub fn remove(&self, name_or_id: &str, in_use: &HashSet<String>) -> Result<Removed> {
        let removed = self.update_index(|index| {
            let i = find(&index.images, name_or_id)
                .ok_or_else(|| Error::ImageNotFound(name_or_id.to_string()))?;
            let record = &mut index.images[i];
            let mut removed = Removed::default();
            let by_id = is_id_of(name_or_id, &record.id);
            if by_id {
                removed.untagged.append(&mut record.repo_tags);
                removed.untagged.append(&mut record.repo_digests);
            } else {
                let r = Reference::parse(name_or_id)?;
                if let Some(digest) = &r.digest {
                    let name = r.with_digest(digest);
                    record.repo_digests.retain(|d| *d != name);
                    removed.untagged.push(name);
                }
                if let Some(tagged) = r.tagged() {
                    record.repo_tags.retain(|t| *t != tagged);
                    removed.untagged.push(tagged);
                }
                if record.repo_tags.is_empty() {
                    removed.untagged.append(&mut record.repo_digests);
                }
            }
            if record.repo_tags.is_empty()
                && record.repo_digests.is_empty()
                && !in_use.contains(&record.id)
            {
                removed.deleted = Some(record.id.clone());
                index.images.remove(i);
            }
            Ok(removed)
        })?;
        self.gc(in_use)?;
        Ok(removed)
    }

    /// Deletes images that have no tag or digest left and are not in
    /// `in_use`, then blobs and layer directories no image references.
    /// Layers that a mounted overlay uses are kept whatever `in_use` says.
    /// Skipped (`skipped: true`) while a pull or import is in progress.
    pub fn gc(&self, in_use: &HashSet<String>) -> Result<GcReport> {
        let Some(_gc) = self.lock_file("gc.lock", FlockOperation::NonBlockingLockExclusive)? else {
            return Ok(GcReport {
                skipped: true,
                ..GcReport::default()
            });
        };
        let mut report = GcReport::default();
        let (blobs, layers) = self.update_index(|index| {
            index.images.retain(|r| {
                let keep =
                    !r.repo_tags.is_empty() || !r.repo_digests.is_empty() || in_use.contains(&r.id);
                if !keep {
                    report.images.push(r.id.clone());
                }
                keep
            });
            let mut blobs = HashSet::new();
            let mut layers = HashSet::new();
            for r in &index.images {
                blobs.insert(r.id.clone());
                blobs.extend(r.manifest.iter().cloned());
                for l in &r.layers {
                    blobs.insert(l.digest.clone());
                    layers.insert(l.diff_id.clone());
                }
            }
            Ok((blobs, layers))
        })?;
        let mounted = mounted_lower_dirs();
        let tmp = self.inner.root.join("tmp");
        for (dir, keep) in [("blobs/sha256", &blobs), ("layers/sha256", &layers)] {
            let dir = self.inner.root.join(dir);
            for entry in fs::read_dir(&dir).map_err(Error::io(&dir))? {
                let entry = entry.map_err(Error::io(&dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if keep.contains(&format!("sha256:{name}")) {
                    continue;
                }
                let path = entry.path();
                if path.is_dir() {
                    if mounted.iter().any(|m| m.starts_with(&path)) {
                        continue;
                    }
                    // Out of the way first: a half-deleted layer must never
                    // look like a whole one.
                    let trash = tmp.join(format!("gc-{name}"));
                    fs::rename(&path, &trash).map_err(Error::io(&path))?;
                    fs::remove_dir_all(&trash).map_err(Error::io(&trash))?;
                    report.layers += 1;
                } else {
                    fs::remove_file(&path).map_err(Error::io(&path))?;
                    report.blobs += 1;
                }
            }
        }
        // Nothing is in progress: what is left in tmp/ is from a crash.
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let p = entry.path();
                let _ = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
        Ok(report)
    }

    /// Removes blobs and layers that a failed pull added, unless an image
    /// references them by now.
    pub(crate) fn discard(&self, blobs: &[String], layers: &[String]) {
        let Ok(index) = self.index() else { return };
        let referenced = |d: &String| {
            index.images.iter().any(|r| {
                r.id == *d
                    || r.manifest.as_ref() == Some(d)
                    || r.layers.iter().any(|l| l.digest == *d || l.diff_id == *d)
            })
        };
        for digest in blobs.iter().filter(|d| !referenced(d)) {
            if let Ok(path) = self.blob_path(digest) {
                let _ = fs::remove_file(path);
            }
        }
        for diff_id in layers.iter().filter(|d| !referenced(d)) {
            let path = self.layer_dir(diff_id);
            let trash = self
                .tmp_dir()
                .join(format!("discard-{}", diff_id.trim_start_matches("sha256:")));
            if fs::rename(&path, &trash).is_ok() {
                let _ = fs::remove_dir_all(&trash);
            }
        }
    }

    pub(crate) fn image_of(&self, r: &Record) -> Image {
        Image {
            id: r.id.clone(),
            repo_tags: r.repo_tags.clone(),
            repo_digests: r.repo_digests.clone(),
            size: r.size,
            config: r.config.clone(),
            layers: lower_dirs(r.layers.iter().map(|l| self.layer_dir(&l.diff_id))),
        }
    }

    pub(crate) fn layer_dir(&self, diff_id: &str) -> PathBuf {
        let hex = diff_id.strip_prefix("sha256:").unwrap_or(diff_id);
        self.inner.root.join("layers/sha256").join(hex)
    }

    pub(crate) fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self
            .inner
            .root
            .join("blobs/sha256")
            .join(digest::hex_of(digest)?))
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.inner.root.join("tmp")
    }

    /// Takes `gc.lock` shared for the life of a pull or an import.
    pub(crate) fn hold_off_gc(&self) -> Result<FileLock> {
        Ok(self
            .lock_file("gc.lock", FlockOperation::LockShared)?
            .expect("a blocking lock is always taken"))
    }

    fn lock_file(&self, name: &str, op: FlockOperation) -> Result<Option<FileLock>> {
        let path = self.inner.root.join(name);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io(&path))?;
        match rustix::fs::flock(&file, op) {
            Ok(()) => Ok(Some(FileLock(file))),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(Error::io(&path)(e.into())),
        }
    }

    /// Moves the verified file `tmp` into the blob store as `digest`.
    pub(crate) fn adopt_blob(&self, tmp: &Path, digest: &str) -> Result<PathBuf> {
        let dest = self.blob_path(digest)?;
        if dest.exists() {
            let _ = fs::remove_file(tmp);
        } else {
            fs::rename(tmp, &dest).map_err(Error::io(&dest))?;
        }
        Ok(dest)
    }

    /// Stores `bytes` as a blob, checking them against `expected`.
    pub(crate) fn put_blob(&self, bytes: &[u8], expected: &str, what: &str) -> Result<PathBuf> {
        let actual = digest::sha256(bytes);
        if actual != expected {
            return Err(Error::DigestMismatch {
                what: what.to_string(),
                expected: expected.to_string(),
                actual,
            });
        }
        let dest = self.blob_path(expected)?;
        if dest.exists() {
            return Ok(dest);
        }
        let tmp_dir = self.tmp_dir();
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(Error::io(&tmp_dir))?;
        tmp.write_all(bytes).map_err(Error::io(tmp.path()))?;
        tmp.as_file().sync_all().map_err(Error::io(tmp.path()))?;
        tmp.persist(&dest).map_err(|e| Error::io(&dest)(e.error))?;
        Ok(dest)
    }

    /// Unpacks the layer in `blob` once, verifying its diff ID. Returns
    /// whether this call created the directory.
    pub(crate) fn ensure_layer(&self, blob: &Path, diff_id: &str) -> Result<bool> {
        let hex = digest::hex_of(diff_id)?.to_string();
        let dest = self.layer_dir(diff_id);
        if dest.exists() {
            return Ok(false);
        }
        let lock = {
            let mut locks = self
                .inner
                .layer_locks
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            locks.entry(hex.clone()).or_default().clone()
        };
        let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
        if dest.exists() {
            return Ok(false);
        }
        let tmp_root = self.tmp_dir();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("layer-{}-", &hex[..12]))
            .tempdir_in(&tmp_root)
            .map_err(Error::io(&tmp_root))?;
        crate::layer::unpack(blob, tmp.path(), Some(diff_id))?;
        // Whole on disk before it gets its name: after a crash a layer
        // directory is complete or absent.
        let dir = File::open(tmp.path()).map_err(Error::io(tmp.path()))?;
        rustix::fs::syncfs(&dir).map_err(|e| Error::io(tmp.path())(e.into()))?;
        let created = match fs::rename(tmp.path(), &dest) {
            Ok(()) => {
                // Renamed away: nothing for the guard to delete.
                let _ = tmp.keep();
                true
            }
            // Another process won the race with the same content.
            Err(_) if dest.exists() => false,
            Err(e) => return Err(Error::io(&dest)(e)),
        };
        self.inner
            .layer_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&hex);
        Ok(created)
    }

    /// Streams `reader` into a temp file in the store, returning it with
    /// its digest and size.
    pub(crate) fn stage<R: io::Read>(
        &self,
        reader: R,
    ) -> Result<(tempfile::TempPath, String, u64)> {
        let tmp_dir = self.tmp_dir();
        let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(Error::io(&tmp_dir))?;
        let (file, path) = tmp.into_parts();
        let mut writer = Hashing::new(io::BufWriter::new(file));
        let mut reader = reader;
        io::copy(&mut reader, &mut writer).map_err(Error::io(&*path))?;
        let (digest, size, w) = writer.finish();
        let file = w
            .into_inner()
            .map_err(|e| Error::io(&*path)(e.into_error()))?;
        file.sync_all().map_err(Error::io(&*path))?;
        Ok((path, digest, size))
    }

    /// Records an image whose blobs and layers are in place, under `tags`
    /// and `digests` (full names); a tag that named another image moves.
    pub(crate) fn commit(
        &self,
        prepared: Prepared,
        tags: Vec<String>,
        digests: Vec<String>,
    ) -> Result<Image> {
        let size = prepared.config_size + prepared.layers.iter().map(|(_, s)| s).sum::<u64>();
        let config = prepared
            .config
            .config
            .as_ref()
            .map(ImageConfig::from)
            .unwrap_or_default();
        let record = self.update_index(move |index| {
            for r in index.images.iter_mut() {
                if r.id != prepared.id {
                    r.repo_tags.retain(|t| !tags.contains(t));
                }
            }
            let i = match index.images.iter().position(|r| r.id == prepared.id) {
                Some(i) => i,
                None => {
                    index.images.push(Record {
                        id: prepared.id.clone(),
                        repo_tags: vec![],
                        repo_digests: vec![],
                        size,
                        config,
                        layers: prepared.layers.into_iter().map(|(l, _)| l).collect(),
                        manifest: prepared.manifest.clone(),
                    });
                    index.images.len() - 1
                }
            };
            let r = &mut index.images[i];
            if r.manifest.is_none() {
                r.manifest = prepared.manifest;
            }
            for t in tags {
                if !r.repo_tags.contains(&t) {
                    r.repo_tags.push(t);
                }
            }
            for d in digests {
                if !r.repo_digests.contains(&d) {
                    r.repo_digests.push(d);
                }
            }
            Ok(r.clone())
        })?;
        Ok(self.image_of(&record))
    }

    fn index(&self) -> Result<Arc<IndexFile>> {
        let path = self.inner.root.join("images.json");
        let key = match fs::metadata(&path) {
            Ok(m) => CacheKey {
                ino: m.ino(),
                mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
                len: m.len(),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Arc::new(IndexFile::default()))
            }
            Err(e) => return Err(Error::io(&path)(e)),
        };
        let mut cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, index)) = cache.as_ref() {
            if *k == key {
                return Ok(index.clone());
            }
        }
        let index = Arc::new(read_index(&path)?);
        *cache = Some((key, index.clone()));
        Ok(index)
    }

    /// Read-modify-write of the index under `index.lock`; the new index
    /// replaces the old one whole (temp file, fsync, rename).
    fn update_index<T>(&self, f: impl FnOnce(&mut IndexFile) -> Result<T>) -> Result<T> {
        let _lock = self.lock_file("index.lock", FlockOperation::LockExclusive)?;
        let path = self.inner.root.join("images.json");
        let (mut index, before) = match fs::read(&path) {
            Ok(bytes) => (parse_index(&path, &bytes)?, bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (IndexFile::default(), Vec::new()),
            Err(e) => return Err(Error::io(&path)(e)),
        };
        let out = f(&mut index)?;
        let bytes = serde_json::to_vec_pretty(&index).expect("the index serializes");
        if bytes == before {
            // Pulling an image that is already here changes nothing.
            return Ok(out);
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&self.inner.root)
            .map_err(Error::io(&self.inner.root))?;
        tmp.write_all(&bytes).map_err(Error::io(tmp.path()))?;
        tmp.as_file().sync_all().map_err(Error::io(tmp.path()))?;
        tmp.persist(&path).map_err(|e| Error::io(&path)(e.error))?;
        if let Ok(dir) = File::open(&self.inner.root) {
            let _ = dir.sync_all();
        }
        *self.inner.cache.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(out)
    }
}

/// The layer directories to stack, lowest first, each once: overlayfs
/// refuses a directory twice (ELOOP), and a layer that comes again (empty
/// layers often do) only needs its last place, as everything between its
/// two places lies below its content either way.
fn lower_dirs(dirs: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = dirs.collect();
    let mut out = Vec::with_capacity(dirs.len());
    for (i, d) in dirs.iter().enumerate() {
        if !dirs[i + 1..].contains(d) {
            out.push(d.clone());
        }
    }
    out
}

fn read_index(path: &Path) -> Result<IndexFile> {
    let bytes = fs::read(path).map_err(Error::io(path))?;
    parse_index(path, &bytes)
}

fn parse_index(path: &Path, bytes: &[u8]) -> Result<IndexFile> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::malformed(format!("store index {}", path.display()), e))
}

/// Whether `name` is `id` written as an ID: `sha256:<hex>`, `<hex>`, or a
/// prefix of at least 12 hex digits.
fn is_id_of(name: &str, id: &str) -> bool {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    let name = name.strip_prefix("sha256:").unwrap_or(name);
    name.len() >= 12 && name.bytes().all(|b| b.is_ascii_hexdigit()) && hex.starts_with(name)
}

fn find(images: &[Record], name: &str) -> Option<usize> {
    if let Ok(r) = Reference::parse(name) {
        let found = match &r.digest {
            Some(d) => {
                let full = r.with_digest(d);
                images.iter().position(|i| i.repo_digests.contains(&full))
            }
            None => {
                let tagged = r.tagged()?;
                images.iter().position(|i| i.repo_tags.contains(&tagged))
            }
        };
        if found.is_some() {
            return found;
        }
    }
    let mut by_id = images
        .iter()
        .enumerate()
        .filter(|(_, i)| is_id_of(name, &i.id));
    match (by_id.next(), by_id.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

/// Directories that mounted overlays use as lower layers, read from
/// `/proc/self/mountinfo`.
fn mounted_lower_dirs() -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    for line in info.lines() {
        let Some((_, rest)) = line.split_once(" - ") else {
            continue;
        };
        let mut fields = rest.split(' ');
        if fields.next() != Some("overlay") {
            continue;
        }
        let options = fields.nth(1).unwrap_or("");
        for opt in options.split(',') {
            if let Some(lower) = opt.strip_prefix("lowerdir=") {
                dirs.extend(lower.split(':').map(PathBuf::from));
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, tags: &[&str]) -> Record {
        Record {
            id: id.to_string(),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: vec![],
            size: 0,
            config: ImageConfig::default(),
            layers: vec![],
            manifest: None,
        }
    }

    #[test]
    fn a_layer_that_comes_again_is_stacked_once_at_its_last_place() {
        let p = |s: &str| PathBuf::from(s);
        let dirs = [p("empty"), p("a"), p("empty"), p("b")];
        assert_eq!(lower_dirs(dirs.into_iter()), [p("a"), p("empty"), p("b")]);
    }

    #[test]
    fn images_are_found_by_tag_or_by_id_or_unique_id_prefix() {
        let a = format!("sha256:{}", "ab".repeat(32));
        let b = format!("sha256:{}", "ac".repeat(32));
        let images = vec![
            record(&a, &["docker.io/library/busybox:latest"]),
            record(&b, &["localhost:5000/x:v1"]),
        ];
        assert_eq!(find(&images, "busybox"), Some(0));
        assert_eq!(find(&images, "docker.io/library/busybox:latest"), Some(0));
        assert_eq!(find(&images, "localhost:5000/x:v1"), Some(1));
        assert_eq!(find(&images, "localhost:5000/x"), None);
        assert_eq!(find(&images, &a), Some(0));
        assert_eq!(find(&images, &b[7..]), Some(1));
        assert_eq!(find(&images, &b[7..20]), Some(1));
        // Too short to be taken for an ID.
        assert_eq!(find(&images, "acac"), None);
    }
}
