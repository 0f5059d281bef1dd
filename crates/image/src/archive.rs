//! Importing image archives: OCI image layouts (`index.json` + `blobs/`,
//! as `ctr export`, buildkit and `docker save` since 25 write them) and
//! docker archives (`manifest.json` with `RepoTags`, as `docker save`
//! writes them). Every file is staged and hashed first; nothing reaches the
//! store unless the whole archive checks out.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::layer::{self, Compression};
use crate::reference::Reference;
use crate::spec::{self, ManifestOrIndex};
use crate::store::{Image, LayerRecord, Prepared, Store};

/// One file of the archive, staged in the store's tmp dir.
struct Staged {
    path: tempfile::TempPath,
    digest: String,
    size: u64,
}

struct Archive {
    files: HashMap<String, Staged>,
    /// Symlinks (older `docker save` links repeated layers).
    links: HashMap<String, String>,
}

impl Archive {
    fn get(&self, name: &str) -> Option<&Staged> {
        let mut name = normalize(name);
        for _ in 0..16 {
            if let Some(f) = self.files.get(&name) {
                return Some(f);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let f = self
            .get(name)
            .ok_or_else(|| Error::malformed("archive", format!("{name} is missing")))?;
        fs::read(&f.path).map_err(Error::io(&*f.path))
    }

    fn blob(&self, digest: &str) -> Result<&Staged> {
        let hex = crate::digest::hex_of(digest)?;
        self.get(&format!("blobs/sha256/{hex}"))
            .ok_or_else(|| Error::malformed("archive", format!("blob {digest} is missing")))
    }
}

fn normalize(name: &str) -> String {
    layer::clean(Path::new(name))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One image found in the archive, before anything is stored.
struct Found {
    names: Vec<String>,
    manifest: Option<String>,
    config_digest: String,
    config: spec::ConfigFile,
    config_size: u64,
    /// (archive file name, diff ID)
    layers: Vec<(String, String)>,
}

pub(crate) fn import(store: &Store, path: &Path) -> Result<Vec<Image>> {
    let _gc = store.hold_off_gc()?;
    let archive = stage(store, path)?;
    let found = if archive.get("manifest.json").is_some() {
        docker_images(&archive)?
    } else if archive.get("index.json").is_some() {
        oci_images(&archive)?
    } else {
        return Err(Error::malformed(
            format!("archive {}", path.display()),
            "neither index.json (OCI layout) nor manifest.json (docker archive) found",
        ));
    };
    if found.is_empty() {
        return Err(Error::malformed(
            format!("archive {}", path.display()),
            "no images",
        ));
    }

    // Unpack (verifying diff IDs) before anything is kept, and undo the
    // layers made here when any of it fails.
    let mut created = Vec::new();
    let unpacked = (|| {
        for image in &found {
            for (file, diff_id) in &image.layers {
                let staged = archive.get(file).expect("looked up before");
                if store.ensure_layer(&staged.path, diff_id)? {
                    created.push(store.layer_dir(diff_id));
                }
            }
        }
        Ok::<_, Error>(())
    })();
    if let Err(e) = unpacked {
        for dir in created {
            let _ = fs::remove_dir_all(dir);
        }
        return Err(e);
    }

    let mut images = Vec::new();
    for image in found {
        let config = archive
            .get(&format!(
                "blobs/sha256/{}",
                crate::digest::hex_of(&image.config_digest)?
            ))
            .or_else(|| {
                archive
                    .files
                    .values()
                    .find(|f| f.digest == image.config_digest)
            })
            .expect("the config was read from the archive");
        keep(store, config)?;
        let mut layers = Vec::new();
        for (file, diff_id) in &image.layers {
            let staged = archive.get(file).expect("looked up before");
            keep(store, staged)?;
            layers.push((
                LayerRecord {
                    digest: staged.digest.clone(),
                    diff_id: diff_id.clone(),
                },
                staged.size,
            ));
        }
        if let Some(m) = &image.manifest {
            keep(store, archive.blob(m)?)?;
        }
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for name in &image.names {
            let r = Reference::parse(name)?;
            tags.extend(r.tagged());
            if let Some(m) = &image.manifest {
                digests.push(r.with_digest(m));
            }
        }
        digests.dedup();
        images.push(store.commit(
            Prepared {
                id: image.config_digest,
                config: image.config,
                config_size: image.config_size,
                layers,
                manifest: image.manifest,
            },
            tags,
            digests,
        )?);
    }
    Ok(images)
}

/// Copies a staged file into the blob store (the staged copy stays until
/// the whole import is done: several images may share it).
fn keep(store: &Store, staged: &Staged) -> Result<()> {
    let dest = store.blob_path(&staged.digest)?;
    if dest.exists() {
        return Ok(());
    }
    let tmp_dir = store.tmp_dir();
    let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(Error::io(&tmp_dir))?;
    // A hard link costs nothing; both are in the store's file system.
    let tmp_path = tmp.into_temp_path();
    fs::remove_file(&tmp_path).map_err(Error::io(&*tmp_path))?;
    fs::hard_link(&staged.path, &tmp_path).map_err(Error::io(&*tmp_path))?;
    fs::rename(&tmp_path, &dest).map_err(Error::io(&dest))?;
    Ok(())
}

/// Reads the whole archive into the store's tmp dir, hashing every file;
/// a file under `blobs/sha256/` must hash to its name.
fn stage(store: &Store, path: &Path) -> Result<Archive> {
    let what = || format!("archive {}", path.display());
    let file = fs::File::open(path).map_err(Error::io(path))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let head = reader.fill_buf().map_err(Error::io(path))?;
    let reader: Box<dyn Read> = match Compression::detect(head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(reader).map_err(Error::io(path))?)
        }
        Compression::None => Box::new(reader),
    };
    let mut tar = tar::Archive::new(reader);
    let mut archive = Archive {
        files: HashMap::new(),
        links: HashMap::new(),
    };
    for entry in tar.entries().map_err(|e| Error::malformed(what(), e))? {
        let entry = entry.map_err(|e| Error::malformed(what(), e))?;
        let raw = entry
            .path()
            .map_err(|e| Error::malformed(what(), e))?
            .into_owned();
        let name = layer::clean(&raw)?.to_string_lossy().into_owned();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let (staged, digest, size) = store.stage(entry).map_err(|e| match e {
                    Error::Io { source, .. } => {
                        Error::malformed(what(), format!("{name}: {source}"))
                    }
                    e => e,
                })?;
                if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                    let expected = format!("sha256:{hex}");
                    if expected != digest {
                        return Err(Error::DigestMismatch {
                            what: format!("{name} in {}", what()),
                            expected,
                            actual: digest,
                        });
                    }
                }
                archive.files.insert(
                    name,
                    Staged {
                        path: staged,
                        digest,
                        size,
                    },
                );
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let Ok(Some(target)) = entry.link_name() else {
                    continue;
                };
                let target = if entry.header().entry_type() == tar::EntryType::Symlink {
                    Path::new(&name)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(&*target)
                } else {
                    target.into_owned()
                };
                archive
                    .links
                    .insert(name, normalize(&target.to_string_lossy()));
            }
            _ => {}
        }
    }
    Ok(archive)
}

fn parse_config(name: &str, bytes: &[u8]) -> Result<spec::ConfigFile> {
    serde_json::from_slice(bytes).map_err(|e| Error::malformed(format!("image config {name}"), e))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn docker_images(archive: &Archive) -> Result<Vec<Found>> {
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&archive.read("manifest.json")?)
        .map_err(|e| Error::malformed("docker archive manifest.json", e))?;
    let mut found = Vec::new();
    for entry in entries {
        let staged = archive.get(&entry.config).ok_or_else(|| {
            Error::malformed("docker archive", format!("{} is missing", entry.config))
        })?;
        let config = parse_config(&entry.config, &archive.read(&entry.config)?)?;
        let layers = match_layers(&config, &entry.config, entry.layers.clone())?;
        for (file, _) in &layers {
            archive.get(file).ok_or_else(|| {
                Error::malformed("docker archive", format!("layer {file} is missing"))
            })?;
        }
        found.push(Found {
            names: entry.repo_tags.unwrap_or_default(),
            manifest: None,
            config_digest: staged.digest.clone(),
            config_size: staged.size,
            config,
            layers,
        });
    }
    Ok(found)
}

fn match_layers(
    config: &spec::ConfigFile,
    what: &str,
    files: Vec<String>,
) -> Result<Vec<(String, String)>> {
    if config.rootfs.diff_ids.len() != files.len() {
        return Err(Error::malformed(
            format!("image config {what}"),
            format!(
                "{} layers but {} diff IDs",
                files.len(),
                config.rootfs.diff_ids.len()
            ),
        ));
    }
    for d in &config.rootfs.diff_ids {
        crate::digest::hex_of(d)?;
    }
    Ok(files
        .into_iter()
        .zip(config.rootfs.diff_ids.iter().cloned())
        .collect())
}

fn oci_images(archive: &Archive) -> Result<Vec<Found>> {
    let index: spec::Index = serde_json::from_slice(&archive.read("index.json")?)
        .map_err(|e| Error::malformed("OCI layout index.json", e))?;
    let mut found = Vec::new();
    for desc in &index.manifests {
        let names: Vec<String> = desc
            .annotations
            .get(spec::ANNOTATION_CONTAINERD_NAME)
            .or_else(|| {
                desc.annotations
                    .get(spec::ANNOTATION_REF_NAME)
                    // A bare tag (`latest`) names no repository.
                    .filter(|n| n.contains('/') || n.contains(':'))
            })
            .cloned()
            .into_iter()
            .collect();
        let mut desc = desc.clone();
        let mut depth = 0;
        let manifest = loop {
            let bytes =
                fs::read(&archive.blob(&desc.digest)?.path).map_err(|e| Error::io("blob")(e))?;
            match ManifestOrIndex::parse(&desc.media_type, &bytes)
                .map_err(|e| Error::malformed(format!("manifest {}", desc.digest), e))?
            {
                ManifestOrIndex::Manifest(m) => break m,
                ManifestOrIndex::Index(i) => {
                    depth += 1;
                    if depth > 4 {
                        return Err(Error::malformed("OCI layout", "indexes nested too deep"));
                    }
                    desc = spec::choose_platform(&i)
                        .ok_or_else(|| {
                            Error::malformed(
                                format!("index {}", desc.digest),
                                "no manifest for linux/amd64",
                            )
                        })?
                        .clone();
                }
            }
        };
        let config_blob = archive.blob(&manifest.config.digest)?;
        let config = parse_config(
            &manifest.config.digest,
            &fs::read(&config_blob.path).map_err(Error::io(&*config_blob.path))?,
        )?;
        let files = manifest
            .layers
            .iter()
            .map(|l| {
                Ok(format!(
                    "blobs/sha256/{}",
                    crate::digest::hex_of(&l.digest)?
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let layers = match_layers(&config, &manifest.config.digest, files)?;
        for l in &manifest.layers {
            archive.blob(&l.digest)?;
        }
        found.push(Found {
            names,
            manifest: Some(desc.digest.clone()),
            config_digest: config_blob.digest.clone(),
            config_size: config_blob.size,
            config,
            layers,
        });
    }
    Ok(found)
}
