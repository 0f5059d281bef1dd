//! Network configurations as libcni reads them: the first `.conf`,
//! `.conflist` or `.json` file of the config directory in lexical order; a
//! single-plugin `.conf` is wrapped into a list of one.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::Error;

/// Extensions of the files libcni (and containerd's CRI plugin) load.
pub const EXTENSIONS: &[&str] = &["conf", "conflist", "json"];

/// A network configuration list: a network name, a spec version and the
/// plugins run in order (reverse order for DEL).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkList {
    pub name: String,
    pub cni_version: String,
    pub disable_check: bool,
    pub plugins: Vec<Map<String, Value>>,
    /// The list as JSON, as cached for DEL and CHECK.
    pub bytes: Vec<u8>,
}

impl NetworkList {
    /// Parses a `.conflist` document.
    pub fn from_list_bytes(bytes: &[u8]) -> Result<NetworkList, String> {
        let raw: Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|err| format!("error parsing configuration list: {err}"))?;
        let name = match raw.get("name") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => return Err("error parsing configuration list: no name".into()),
        };
        let cni_version = match raw.get("cniVersion") {
            Some(Value::String(v)) => v.clone(),
            None => String::new(),
            Some(_) => {
                return Err("error parsing configuration list: invalid cniVersion type".into())
            }
        };
        let disable_check = match raw.get("disableCheck") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        let plugins = match raw.get("plugins") {
            Some(Value::Array(plugins)) => plugins,
            Some(_) => {
                return Err("error parsing configuration list: invalid 'plugins' type".into())
            }
            None => return Err("error parsing configuration list: no 'plugins' key".into()),
        };
        let plugins = plugins
            .iter()
            .enumerate()
            .map(|(i, plugin)| match plugin {
                Value::Object(map)
                    if map
                        .get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| !t.is_empty()) =>
                {
                    Ok(map.clone())
                }
                Value::Object(_) => Err(format!(
                    "error parsing configuration list: plugin {i} has no type"
                )),
                _ => Err(format!("failed to parse plugin config {i}: not an object")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetworkList {
            name,
            cni_version,
            disable_check,
            plugins,
            bytes: bytes.to_vec(),
        })
    }

    /// Parses a single-plugin `.conf` document into a list of one, as
    /// libcni's ConfListFromConf does.
    pub fn from_conf_bytes(bytes: &[u8]) -> Result<NetworkList, String> {
        let raw: Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|err| format!("error parsing configuration: {err}"))?;
        if raw
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            // Also catches a list put into a .conf file.
            return Err("network type not found".into());
        }
        let name = raw
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let cni_version = raw
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let list = serde_json::json!({
            "name": name,
            "cniVersion": cni_version,
            "plugins": [Value::Object(raw)],
        });
        NetworkList::from_list_bytes(&serde_json::to_vec(&list).expect("JSON values serialize"))
    }

    /// Parses a file by its extension.
    pub fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<NetworkList, String> {
        if path.extension().is_some_and(|e| e == "conflist") {
            NetworkList::from_list_bytes(bytes)
        } else {
            NetworkList::from_conf_bytes(bytes)
        }
    }
}

/// The config files of `dir` that libcni would consider, in lexical order.
pub fn conf_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(err) => return Err(err),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e));
        if wanted && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads the first network configuration of `dir`, or `None` when it has
/// none.
pub fn load_first(dir: &Path) -> Result<Option<(PathBuf, NetworkList)>, Error> {
    let files = conf_files(dir).map_err(|source| Error::Io {
        op: "read CNI config directory",
        path: dir.to_owned(),
        source,
    })?;
    let Some(path) = files.into_iter().next() else {
        return Ok(None);
    };
    let bytes = std::fs::read(&path).map_err(|source| Error::Io {
        op: "read CNI config",
        path: path.clone(),
        source,
    })?;
    let list =
        NetworkList::from_file_bytes(&path, &bytes).map_err(|message| Error::InvalidConfig {
            path: path.clone(),
            message,
        })?;
    if list.plugins.is_empty() {
        return Err(Error::InvalidConfig {
            path,
            message: "CNI config list has no networks".into(),
        });
    }
    Ok(Some((path, list)))
}

/// Compares dotted spec versions ("0.4.0" >= "0.4.0"); an empty version is
/// the oldest one, 0.1.0.
pub fn version_at_least(version: &str, min: &str) -> bool {
    fn parse(v: &str) -> (u32, u32, u32) {
        let v = if v.is_empty() { "0.1.0" } else { v };
        let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
        (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        )
    }
    parse(version) >= parse(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_plugin_conf_becomes_a_list_of_one() {
        let list = NetworkList::from_conf_bytes(
            br#"{"cniVersion":"0.4.0","name":"mynet","type":"bridge","bridge":"br0"}"#,
        )
        .unwrap();
        assert_eq!(list.name, "mynet");
        assert_eq!(list.cni_version, "0.4.0");
        assert_eq!(list.plugins.len(), 1);
        assert_eq!(list.plugins[0]["bridge"], "br0");
    }

    #[test]
    fn a_list_in_a_conf_file_is_rejected() {
        let err = NetworkList::from_conf_bytes(br#"{"name":"x","plugins":[{"type":"bridge"}]}"#)
            .unwrap_err();
        assert_eq!(err, "network type not found");
    }

    #[test]
    fn a_list_needs_a_name_and_plugins() {
        assert_eq!(
            NetworkList::from_list_bytes(br#"{"plugins":[]}"#).unwrap_err(),
            "error parsing configuration list: no name"
        );
        assert_eq!(
            NetworkList::from_list_bytes(br#"{"name":"x"}"#).unwrap_err(),
            "error parsing configuration list: no 'plugins' key"
        );
    }

    #[test]
    fn the_first_file_in_lexical_order_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("20-b.conflist"),
            br#"{"name":"b","cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("10-a.conf"),
            br#"{"name":"a","cniVersion":"1.0.0","type":"ptp"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("00-ignored.txt"), b"not a config").unwrap();
        let (path, list) = load_first(dir.path()).unwrap().unwrap();
        assert_eq!(path, dir.path().join("10-a.conf"));
        assert_eq!(list.name, "a");
        assert!(load_first(&dir.path().join("missing")).unwrap().is_none());
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("1.0.0", "0.4.0"));
        assert!(version_at_least("0.4.0", "0.4.0"));
        assert!(!version_at_least("0.3.1", "0.4.0"));
        assert!(!version_at_least("", "0.4.0"));
        assert!(version_at_least("0.10.0", "0.4.0"));
    }
}
