//! `krate image`: the node's image store from the command line, with the
//! output of `crictl images` / `crictl rmi` / `crictl pull` and the import
//! of `ctr images import` for air-gapped nodes.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::server::DEFAULT_DATA_DIR;

#[derive(Args)]
pub struct ImageArgs {
    /// The node's data directory; images live in `<data-dir>/images`, the
    /// registries config (mirrors, credentials) is
    /// `<data-dir>/registries.yaml`.
    #[arg(long, global = true, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Import the images of OCI image layout or docker archive tarballs
    /// (`docker save`, `ctr export`), compressed or not.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List images.
    #[command(visible_alias = "list")]
    Ls {
        /// Only show image IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Show digests.
        #[arg(long)]
        digests: bool,
        /// Show full image IDs.
        #[arg(long)]
        no_trunc: bool,
    },
    /// Remove images by name or ID: a name loses its tag, an ID removes
    /// the image; layers no image uses are deleted.
    #[command(visible_alias = "rmi")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Pull an image from its registry (or a mirror in registries.yaml).
    Pull {
        name: String,
        /// Registry credentials, `USERNAME[:PASSWORD]`.
        #[arg(long)]
        creds: Option<String>,
    },
}

pub async fn run(args: ImageArgs) -> Result<()> {
    let root = args.data_dir.join("images");
    let store = ::image::Store::open(&root)
        .with_context(|| format!("opening the image store in {}", root.display()))?;
    match args.command {
        ImageCommand::Import { files } => {
            for file in files {
                let s = store.clone();
                let f = file.clone();
                let images = tokio::task::spawn_blocking(move || s.import(&f))
                    .await?
                    .with_context(|| format!("importing {}", file.display()))?;
                for image in images {
                    if image.repo_tags.is_empty() {
                        println!("Imported {}", image.id);
                    }
                    for tag in &image.repo_tags {
                        println!("Imported {tag} ({})", image.id);
                    }
                }
            }
            Ok(())
        }
        ImageCommand::Ls {
            quiet,
            digests,
            no_trunc,
        } => {
            let images = store.list()?;
            if quiet {
                for image in images {
                    println!("{}", image.id);
                }
                return Ok(());
            }
            print!("{}", table(&images, digests, no_trunc));
            Ok(())
        }
        ImageCommand::Rm { names } => {
            let mut failed = false;
            for name in names {
                match store.remove(&name, &HashSet::new()) {
                    Ok(removed) => {
                        for untagged in removed.untagged {
                            println!("Untagged: {untagged}");
                        }
                        if let Some(id) = removed.deleted {
                            println!("Deleted: {id}");
                        }
                    }
                    Err(e) => {
                        eprintln!("error: removing {name}: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                bail!("some images were not removed");
            }
            Ok(())
        }
        ImageCommand::Pull { name, creds } => {
            let credentials = creds.map(|c| {
                let (username, password) = c.split_once(':').unwrap_or((&c, ""));
                ::image::Credentials {
                    username: username.to_string(),
                    password: password.to_string(),
                }
            });
            let image = store
                .pull(&name, credentials.as_ref())
                .await
                .with_context(|| format!("pulling image {name:?}"))?;
            println!("Image is up to date for {}", image.id);
            Ok(())
        }
    }
}

/// `crictl images`: one row per tag, `<none>` for an untagged image.
fn table(images: &[::image::Image], digests: bool, no_trunc: bool) -> String {
    let mut rows = vec![{
        let mut h = vec!["IMAGE", "TAG"];
        if digests {
            h.push("DIGEST");
        }
        h.extend(["IMAGE ID", "SIZE"]);
        h.into_iter().map(String::from).collect::<Vec<_>>()
    }];
    for image in images {
        let hex = image.id.strip_prefix("sha256:").unwrap_or(&image.id);
        let id = if no_trunc {
            image.id.clone()
        } else {
            hex[..hex.len().min(13)].to_string()
        };
        let digest = image
            .repo_digests
            .first()
            .and_then(|d| d.split_once("@sha256:"))
            .map(|(_, d)| {
                if no_trunc {
                    format!("sha256:{d}")
                } else {
                    d[..d.len().min(13)].to_string()
                }
            })
            .unwrap_or_else(|| "<none>".into());
        let mut names: Vec<(String, String)> = image
            .repo_tags
            .iter()
            .map(|t| {
                let (repo, tag) = t.rsplit_once(':').unwrap_or((t, "<none>"));
                (repo.to_string(), tag.to_string())
            })
            .collect();
        if names.is_empty() {
            let repo = image
                .repo_digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map(|(r, _)| r.to_string())
                .unwrap_or_else(|| "<none>".into());
            names.push((repo, "<none>".into()));
        }
        for (repo, tag) in names {
            let mut row = vec![repo, tag];
            if digests {
                row.push(digest.clone());
            }
            row.extend([id.clone(), human_size(image.size)]);
            rows.push(row);
        }
    }
    // text/tabwriter as crictl sets it up: min width 20, padding 3.
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len() + 3)
                .max()
                .unwrap_or(0)
                .max(20)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

/// go-units' `HumanSizeWithPrecision(size, 3)`: decimal units, three
/// significant digits (`2.16MB`, `747kB`).
fn human_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let mut text = format!("{value:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_crictl() {
        assert_eq!(human_size(747), "747B");
        assert_eq!(human_size(2_164_000), "2.16MB");
        assert_eq!(human_size(2_000_000), "2MB");
        assert_eq!(human_size(74_700), "74.7kB");
        assert_eq!(human_size(312_345_678), "312MB");
    }

    #[test]
    fn images_list_one_row_per_tag_like_crictl() {
        let image = ::image::Image {
            id: format!("sha256:{}", "ab".repeat(32)),
            repo_tags: vec![
                "docker.io/library/busybox:latest".into(),
                "localhost:5000/bb:v1".into(),
            ],
            repo_digests: vec![],
            size: 2_164_000,
            config: Default::default(),
            layers: vec![],
        };
        let untagged = ::image::Image {
            repo_tags: vec![],
            ..image.clone()
        };
        assert_eq!(
            table(&[image, untagged], false, false),
            "IMAGE                       TAG                 IMAGE ID            SIZE\n\
             docker.io/library/busybox   latest              ababababababa       2.16MB\n\
             localhost:5000/bb           v1                  ababababababa       2.16MB\n\
             <none>                      <none>              ababababababa       2.16MB\n"
        );
    }
}
