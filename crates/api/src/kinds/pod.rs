//! Pods, pod templates and everything a `PodSpec` holds (containers,
//! volumes, probes, resources, security contexts, affinity...), after
//! upstream's `pkg/apis/core/validation` (`ValidatePodSpec`,
//! `ValidatePodTemplateSpec`, `ValidatePodCreate`, `ValidatePodUpdate`).

use super::common::{self, *};
use super::json::{self, *};
use crate::quantity::Quantity;
use crate::validation::field::{BadValue, ErrorList, FieldError, Path};
use crate::validation::{
    inclusive_range_error, is_valid_label_value, is_valid_port_num, name_is_dns_subdomain,
    validate_annotations, validate_label_name, validate_labels, validate_namespace_name,
    validate_nonnegative_field,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Upstream's `PodValidationOptions`, reduced to what differs between the
/// contexts a `PodSpec` is validated in.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PodOptions {
    /// The spec is a Pod's own (not a template embedded in a workload).
    pub resource_is_pod: bool,
}

const FILE_MODE_ERROR_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

// ---------------------------------------------------------------- volumes

/// `ValidateVolumes`: returns the valid volumes by name (their sources) and
/// the errors.
pub(crate) fn validate_volumes<'a>(
    volumes: &'a [Value],
    pod_name: Option<&str>,
    path: &Path,
) -> (HashMap<String, &'a Value>, ErrorList) {
    let mut errs = ErrorList::new();
    let mut all_names = HashSet::new();
    let mut created_pvcs = HashSet::new();
    if let Some(pod) = pod_name.filter(|n| !n.is_empty()) {
        for v in volumes {
            if get(v, "ephemeral").is_some() {
                created_pvcs.insert(format!("{pod}-{}", str_of(v, "name")));
            }
        }
    }
    let mut vols = HashMap::new();
    for (i, vol) in volumes.iter().enumerate() {
        let idx = path.index(i);
        let name_path = idx.child("name");
        let name = str_of(vol, "name");
        let mut el = validate_volume_source(vol, &idx, name, pod_name);
        if name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            el.extend(dns1123_label(name, &name_path));
        }
        if all_names.contains(name) {
            el.push(FieldError::duplicate(&name_path, name));
        }
        if el.is_empty() {
            all_names.insert(name.to_string());
            vols.insert(name.to_string(), vol);
        } else {
            errs.extend(el);
        }
        if let Some(pvc) = obj(vol, "persistentVolumeClaim") {
            let claim = str_of(pvc, "claimName");
            if created_pvcs.contains(claim) {
                errs.push(FieldError::invalid(
                    &idx.child("persistentVolumeClaim").child("claimName"),
                    claim,
                    "must not reference a PVC that gets created for an ephemeral volume",
                ));
            }
        }
    }
    (vols, errs)
}

type SourceValidator = fn(&Value, &Path) -> ErrorList;

/// The volume sources in the order `validateVolumeSource` checks them:
/// (JSON field, path used for "more than 1 volume type", path used for the
/// source's own errors, validator).
const VOLUME_SOURCES: &[(&str, &str, &str, SourceValidator)] = &[
    ("emptyDir", "emptyDir", "emptyDir", validate_empty_dir),
    ("hostPath", "hostPath", "hostPath", validate_host_path),
    ("gitRepo", "gitRepo", "gitRepo", validate_git_repo),
    (
        "gcePersistentDisk",
        "gcePersistentDisk",
        "persistentDisk",
        validate_gce_pd,
    ),
    (
        "awsElasticBlockStore",
        "awsElasticBlockStore",
        "awsElasticBlockStore",
        validate_aws_ebs,
    ),
    ("secret", "secret", "secret", validate_secret_volume),
    ("nfs", "nfs", "nfs", validate_nfs),
    ("iscsi", "iscsi", "iscsi", validate_iscsi),
    ("glusterfs", "glusterfs", "glusterfs", validate_glusterfs),
    ("flocker", "flocker", "flocker", validate_flocker),
    (
        "persistentVolumeClaim",
        "persistentVolumeClaim",
        "persistentVolumeClaim",
        validate_pvc_source,
    ),
    ("rbd", "rbd", "rbd", validate_rbd),
    ("cinder", "cinder", "cinder", validate_cinder),
    ("cephfs", "cephFS", "cephfs", validate_cephfs),
    ("quobyte", "quobyte", "quobyte", validate_quobyte),
    (
        "downwardAPI",
        "downwarAPI",
        "downwardAPI",
        validate_downward_api_volume,
    ),
    ("fc", "fc", "fc", validate_fc),
    ("flexVolume", "flexVolume", "flexVolume", validate_flex),
    (
        "configMap",
        "configMap",
        "configMap",
        validate_config_map_volume,
    ),
    ("azureFile", "azureFile", "azureFile", validate_azure_file),
    (
        "vsphereVolume",
        "vsphereVolume",
        "vsphereVolume",
        validate_vsphere,
    ),
    (
        "photonPersistentDisk",
        "photonPersistentDisk",
        "photonPersistentDisk",
        validate_photon,
    ),
    (
        "portworxVolume",
        "portworxVolume",
        "portworxVolume",
        validate_portworx,
    ),
    ("azureDisk", "azureDisk", "azureDisk", validate_azure_disk),
    ("storageos", "storageos", "storageos", validate_storageos),
    ("projected", "projected", "projected", validate_projected),
    ("scaleIO", "scaleIO", "scaleIO", validate_scaleio),
    ("csi", "csi", "csi", validate_csi_volume),
    ("ephemeral", "ephemeral", "ephemeral", validate_ephemeral),
    ("image", "image", "image", validate_image_volume),
];

/// `validateVolumeSource`.
fn validate_volume_source(
    vol: &Value,
    path: &Path,
    vol_name: &str,
    pod_name: Option<&str>,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut num = 0;
    for (key, forbidden_name, child_name, validator) in VOLUME_SOURCES {
        let Some(src) = get(vol, key) else { continue };
        if num > 0 {
            errs.push(FieldError::forbidden(
                &path.child(*forbidden_name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        num += 1;
        errs.extend(validator(src, &path.child(*child_name)));
        if *key == "iscsi" && get(src, "initiatorName").is_some() {
            let portal = str_of(src, "targetPortal");
            if vol_name.len() + 1 + portal.len() > 64 {
                errs.push(FieldError::invalid(
                    &path.child("name"),
                    vol_name,
                    "Total length of <volume name>:<iscsi.targetPortal> must be under 64 characters if iscsi.initiatorName is specified.",
                ));
            }
        }
        if *key == "ephemeral" {
            if let Some(pod) = pod_name.filter(|p| !p.is_empty()) {
                if !vol_name.is_empty() {
                    let pvc_name = format!("{pod}-{vol_name}");
                    for msg in name_is_dns_subdomain(&pvc_name, false) {
                        errs.push(FieldError::invalid(
                            &path.child("name"),
                            vol_name,
                            format!("PVC name {}: {msg}", crate::gofmt::quote(&pvc_name)),
                        ));
                    }
                }
            }
        }
    }
    if num == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

fn required_str(v: &Value, key: &str, path: &Path, errs: &mut ErrorList) {
    if str_of(v, key).is_empty() {
        errs.push(FieldError::required(&path.child(key), ""));
    }
}

fn validate_empty_dir(src: &Value, path: &Path) -> ErrorList {
    match common::quantity(src, "sizeLimit") {
        Some(q) if q.sign() < 0 => FieldError::forbidden(
            &path.child("sizeLimit"),
            "SizeLimit field must be a valid resource quantity",
        )
        .into(),
        _ => ErrorList::new(),
    }
}

const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

pub(crate) fn validate_host_path(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let p = str_of(src, "path");
    if p.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
        return errs;
    }
    errs.extend(path_no_backsteps(p, &path.child("path")));
    if let Some(t) = opt_str(src, "type") {
        if !HOST_PATH_TYPES.contains(&t) {
            errs.push(FieldError::not_supported(
                &path.child("type"),
                t,
                HOST_PATH_TYPES,
            ));
        }
    }
    errs
}

fn validate_git_repo(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "repository", path, &mut errs);
    errs.extend(local_descending_path(
        str_of(src, "directory"),
        &path.child("directory"),
    ));
    errs
}

fn validate_gce_pd(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "pdName", path, &mut errs);
    let part = int_of(src, "partition");
    if !(0..=255).contains(&part) {
        errs.push(FieldError::invalid(
            &path.child("partition"),
            part,
            inclusive_range_error(1, 255),
        ));
    }
    errs
}

fn validate_aws_ebs(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "volumeID", path, &mut errs);
    let part = int_of(src, "partition");
    if !(0..=255).contains(&part) {
        errs.push(FieldError::invalid(
            &path.child("partition"),
            part,
            inclusive_range_error(1, 255),
        ));
    }
    errs
}

fn file_mode(v: &Value, key: &str, path: &Path, errs: &mut ErrorList) {
    if let Some(mode) = opt_int(v, key) {
        if !(0..=0o777).contains(&mode) {
            errs.push(FieldError::invalid(
                &path.child(key),
                mode,
                FILE_MODE_ERROR_MSG,
            ));
        }
    }
}

/// `validateKeyToPath`.
fn validate_key_to_path(kp: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(kp, "key", path, &mut errs);
    required_str(kp, "path", path, &mut errs);
    errs.extend(local_non_reserved_path(
        str_of(kp, "path"),
        &path.child("path"),
    ));
    file_mode(kp, "mode", path, &mut errs);
    errs
}

fn validate_secret_volume(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "secretName", path, &mut errs);
    file_mode(src, "defaultMode", path, &mut errs);
    for (i, kp) in arr(src, "items").iter().enumerate() {
        errs.extend(validate_key_to_path(kp, &path.child("items").index(i)));
    }
    errs
}

fn validate_config_map_volume(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "name", path, &mut errs);
    file_mode(src, "defaultMode", path, &mut errs);
    for (i, kp) in arr(src, "items").iter().enumerate() {
        errs.extend(validate_key_to_path(kp, &path.child("items").index(i)));
    }
    errs
}

fn validate_nfs(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "server", path, &mut errs);
    required_str(src, "path", path, &mut errs);
    let p = str_of(src, "path");
    if !p.starts_with('/') {
        errs.push(FieldError::invalid(
            &path.child("path"),
            p,
            "must be an absolute path",
        ));
    }
    errs
}

fn iqn_format(value: &str, path: &Path, errs: &mut ErrorList, prefix_msg: &str) {
    use regex::Regex;
    use std::sync::LazyLock;
    static IQN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"iqn\.\d{4}-\d{2}\.([[:alnum:]-.]+)(:[^,;*&$|\s]+)$").expect("static regex")
    });
    static EUI: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^eui.[[:alnum:]]{16}$").expect("static regex"));
    static NAA: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^naa.[[:alnum:]]{32}$").expect("static regex"));
    if !value.starts_with("iqn") && !value.starts_with("eui") && !value.starts_with("naa") {
        errs.push(FieldError::invalid(path, value, prefix_msg));
    } else if (value.starts_with("iqn") && !IQN.is_match(value))
        || (value.starts_with("eui") && !EUI.is_match(value))
        || (value.starts_with("naa") && !NAA.is_match(value))
    {
        errs.push(FieldError::invalid(path, value, "must be valid format"));
    }
}

fn validate_iscsi(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "targetPortal", path, &mut errs);
    let iqn = str_of(src, "iqn");
    if iqn.is_empty() {
        errs.push(FieldError::required(&path.child("iqn"), ""));
    } else {
        iqn_format(
            iqn,
            &path.child("iqn"),
            &mut errs,
            "must be valid format starting with iqn, eui, or naa",
        );
    }
    let lun = int_of(src, "lun");
    if !(0..=255).contains(&lun) {
        errs.push(FieldError::invalid(
            &path.child("lun"),
            lun,
            inclusive_range_error(0, 255),
        ));
    }
    if (bool_of(src, "chapAuthDiscovery") || bool_of(src, "chapAuthSession"))
        && get(src, "secretRef").is_none()
    {
        errs.push(FieldError::required(&path.child("secretRef"), ""));
    }
    if let Some(init) = opt_str(src, "initiatorName") {
        iqn_format(
            init,
            &path.child("initiatorname"),
            &mut errs,
            "must be valid format starting with iqn, eui, or naa",
        );
    }
    errs
}

fn validate_glusterfs(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "endpoints", path, &mut errs);
    required_str(src, "path", path, &mut errs);
    errs
}

fn validate_flocker(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = str_of(src, "datasetName");
    let uuid = str_of(src, "datasetUUID");
    if name.is_empty() && uuid.is_empty() {
        errs.push(FieldError::required(
            path,
            "one of datasetName and datasetUUID is required",
        ));
    }
    if !name.is_empty() && !uuid.is_empty() {
        errs.push(FieldError::invalid(
            path,
            "resource",
            "datasetName and datasetUUID can not be specified simultaneously",
        ));
    }
    if name.contains('/') {
        errs.push(FieldError::invalid(
            &path.child("datasetName"),
            name,
            "must not contain '/'",
        ));
    }
    errs
}

fn validate_pvc_source(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "claimName", path, &mut errs);
    errs
}

fn validate_rbd(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if arr(src, "monitors").is_empty() {
        errs.push(FieldError::required(&path.child("monitors"), ""));
    }
    required_str(src, "image", path, &mut errs);
    errs
}

fn validate_cinder(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "volumeID", path, &mut errs);
    if let Some(r) = obj(src, "secretRef") {
        if str_of(r, "name").is_empty() {
            errs.push(FieldError::required(
                &path.child("secretRef").child("name"),
                "",
            ));
        }
    }
    errs
}

fn validate_cephfs(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if arr(src, "monitors").is_empty() {
        errs.push(FieldError::required(&path.child("monitors"), ""));
    }
    errs
}

fn validate_quobyte(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let registry = str_of(src, "registry");
    let msg = "must be a host:port pair or multiple pairs separated by commas";
    if registry.is_empty() {
        errs.push(FieldError::required(&path.child("registry"), msg));
    } else if str_of(src, "tenant").len() >= 65 {
        errs.push(FieldError::required(
            &path.child("tenant"),
            "must be a UUID and may not exceed a length of 64 characters",
        ));
    } else {
        for pair in registry.split(',') {
            let ok = pair
                .rsplit_once(':')
                .is_some_and(|(h, _)| !h.contains(':') || h.starts_with('['));
            if !ok {
                errs.push(FieldError::invalid(&path.child("registry"), registry, msg));
            }
        }
    }
    required_str(src, "volume", path, &mut errs);
    errs
}

const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

const CONTAINER_RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn validate_downward_api_file(file: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(file, "path", path, &mut errs);
    errs.extend(local_non_reserved_path(
        str_of(file, "path"),
        &path.child("path"),
    ));
    if let Some(fr) = obj(file, "fieldRef") {
        errs.extend(validate_object_field_selector(
            fr,
            VOLUME_FIELD_PATHS,
            &path.child("fieldRef"),
        ));
        if get(file, "resourceFieldRef").is_some() {
            errs.push(FieldError::invalid(
                path,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if let Some(rf) = obj(file, "resourceFieldRef") {
        errs.extend(validate_resource_field_selector(
            rf,
            &path.child("resourceFieldRef"),
            true,
        ));
    } else {
        errs.push(FieldError::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    file_mode(file, "mode", path, &mut errs);
    errs
}

fn validate_downward_api_volume(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    file_mode(src, "defaultMode", path, &mut errs);
    for file in arr(src, "items") {
        errs.extend(validate_downward_api_file(file, path));
    }
    errs
}

/// `SplitMaybeSubscriptedPath`: `metadata.labels['key']`.
fn split_subscripted(field_path: &str) -> Option<(&str, &str)> {
    let s = field_path.strip_suffix("']")?;
    let (p, sub) = s.split_once("['")?;
    (!p.is_empty()).then_some((p, sub))
}

/// `ConvertDownwardAPIFieldLabel` for `v1`.
fn convert_downward_api_field_label(version: &str, label: &str) -> Result<String, String> {
    if version != "v1" {
        return Err(format!("unsupported pod version: {version}"));
    }
    if let Some((p, _)) = split_subscripted(label) {
        return match p {
            "metadata.annotations" | "metadata.labels" => Ok(label.to_string()),
            _ => Err(format!("field label does not support subscript: {label}")),
        };
    }
    match label {
        "metadata.annotations"
        | "metadata.labels"
        | "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.nodeName"
        | "spec.restartPolicy"
        | "spec.serviceAccountName"
        | "spec.schedulerName"
        | "status.phase"
        | "status.hostIP"
        | "status.hostIPs"
        | "status.podIP"
        | "status.podIPs" => Ok(label.to_string()),
        "spec.host" => Ok("spec.nodeName".to_string()),
        _ => Err(format!("field label not supported: {label}")),
    }
}

/// `validateObjectFieldSelector`.
fn validate_object_field_selector(fs: &Value, expressions: &[&str], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let api_version = str_of(fs, "apiVersion");
    if api_version.is_empty() {
        errs.push(FieldError::required(&path.child("apiVersion"), ""));
        return errs;
    }
    let field_path = str_of(fs, "fieldPath");
    if field_path.is_empty() {
        errs.push(FieldError::required(&path.child("fieldPath"), ""));
        return errs;
    }
    let internal = match convert_downward_api_field_label(api_version, field_path) {
        Ok(p) => p,
        Err(e) => {
            errs.push(FieldError::invalid(
                &path.child("fieldPath"),
                field_path,
                format!("error converting fieldPath: {e}"),
            ));
            return errs;
        }
    };
    if let Some((p, sub)) = split_subscripted(&internal) {
        match p {
            "metadata.annotations" => errs.extend(qualified_name(&sub.to_lowercase(), path)),
            "metadata.labels" => errs.extend(qualified_name(sub, path)),
            _ => errs.push(FieldError::invalid(path, p, "does not support subscript")),
        }
    } else if !expressions.contains(&internal.as_str()) {
        errs.push(FieldError::not_supported(
            &path.child("fieldPath"),
            internal.as_str(),
            expressions,
        ));
    }
    errs
}

/// `validateContainerResourceFieldSelector`.
fn validate_resource_field_selector(fs: &Value, path: &Path, volume: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let resource = str_of(fs, "resource");
    if volume && str_of(fs, "containerName").is_empty() {
        errs.push(FieldError::required(&path.child("containerName"), ""));
    } else if resource.is_empty() {
        errs.push(FieldError::required(&path.child("resource"), ""));
    } else if !CONTAINER_RESOURCE_FIELD_PATHS.contains(&resource)
        && !resource.starts_with("requests.hugepages-")
        && !resource.starts_with("limits.hugepages-")
    {
        errs.push(FieldError::not_supported(
            &path.child("resource"),
            resource,
            CONTAINER_RESOURCE_FIELD_PATHS,
        ));
    }
    if let Some(div) = common::quantity(fs, "divisor").filter(|d| !d.is_zero()) {
        let d = div.to_string();
        let memory_like = [
            "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
        ];
        let bad =
            |msg: &str| FieldError::invalid(&path.child("divisor"), resource, msg.to_string());
        match resource {
            "limits.cpu" | "requests.cpu" if !["1m", "1"].contains(&d.as_str()) => {
                errs.push(bad("only divisor's values 1m and 1 are supported with the cpu resource"));
            }
            "limits.memory" | "requests.memory" if !memory_like.contains(&d.as_str()) => errs.push(bad(
                "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource",
            )),
            "limits.ephemeral-storage" | "requests.ephemeral-storage" if !memory_like.contains(&d.as_str()) => errs.push(bad(
                "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource",
            )),
            _ => {}
        }
    }
    errs
}

fn validate_fc(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let wwns = strings(src, "targetWWNs").unwrap_or_default();
    let wwids = strings(src, "wwids").unwrap_or_default();
    if wwns.is_empty() && wwids.is_empty() {
        errs.push(FieldError::required(
            &path.child("targetWWNs"),
            "must specify either targetWWNs or wwids, but not both",
        ));
    }
    if !wwns.is_empty() && !wwids.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("targetWWNs"),
            wwns.clone(),
            "targetWWNs and wwids can not be specified simultaneously",
        ));
    }
    if !wwns.is_empty() {
        match opt_int(src, "lun") {
            None => errs.push(FieldError::required(
                &path.child("lun"),
                "lun is required if targetWWNs is specified",
            )),
            Some(l) if !(0..=255).contains(&l) => errs.push(FieldError::invalid(
                &path.child("lun"),
                l,
                inclusive_range_error(0, 255),
            )),
            _ => {}
        }
    }
    errs
}

fn validate_flex(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "driver", path, &mut errs);
    for k in string_map(src, "options").unwrap_or_default().keys() {
        let ns = k.split_once('/').map_or(k.as_str(), |(n, _)| n);
        let normalized = format!(".{}", ns.to_lowercase());
        if normalized.ends_with(".kubernetes.io") || normalized.ends_with(".k8s.io") {
            errs.push(FieldError::invalid(
                &path.child("options").key(k.clone()),
                k.as_str(),
                "kubernetes.io and k8s.io namespaces are reserved",
            ));
        }
    }
    errs
}

fn validate_azure_file(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "secretName", path, &mut errs);
    required_str(src, "shareName", path, &mut errs);
    errs
}

fn validate_vsphere(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "volumePath", path, &mut errs);
    errs
}

fn validate_photon(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "pdID", path, &mut errs);
    errs
}

fn validate_portworx(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "volumeID", path, &mut errs);
    errs
}

fn validate_azure_disk(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "diskName", path, &mut errs);
    required_str(src, "diskURI", path, &mut errs);
    let caching = ["None", "ReadOnly", "ReadWrite"];
    if let Some(c) = opt_str(src, "cachingMode") {
        if !caching.contains(&c) {
            errs.push(FieldError::not_supported(
                &path.child("cachingMode"),
                c,
                &caching,
            ));
        }
    }
    let kinds = ["Dedicated", "Managed", "Shared"];
    let uri = str_of(src, "diskURI");
    if let Some(k) = opt_str(src, "kind") {
        if !kinds.contains(&k) {
            errs.push(FieldError::not_supported(&path.child("kind"), k, &kinds));
        }
        if k == "Managed" && !uri.starts_with("/subscriptions/") {
            errs.push(FieldError::not_supported(
                &path.child("diskURI"),
                uri,
                &["/subscriptions/{sub-id}/resourcegroups/{group-name}/providers/microsoft.compute/disks/{disk-id}"],
            ));
        }
        if k != "Managed" && !uri.starts_with("https://") {
            errs.push(FieldError::not_supported(
                &path.child("diskURI"),
                uri,
                &["https://{account-name}.blob.core.windows.net/{container-name}/{disk-name}.vhd"],
            ));
        }
    }
    errs
}

fn validate_storageos(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = str_of(src, "volumeName");
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("volumeName"), ""));
    } else {
        errs.extend(dns1123_label(name, &path.child("volumeName")));
    }
    let ns = str_of(src, "volumeNamespace");
    if !ns.is_empty() {
        errs.extend(dns1123_label(ns, &path.child("volumeNamespace")));
    }
    if let Some(r) = obj(src, "secretRef") {
        if str_of(r, "name").is_empty() {
            errs.push(FieldError::required(
                &path.child("secretRef").child("name"),
                "",
            ));
        }
    }
    errs
}

fn validate_projected(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    file_mode(src, "defaultMode", path, &mut errs);
    let mut all_paths = HashSet::new();
    for (i, source) in arr(src, "sources").iter().enumerate() {
        let mut num = 0;
        let src_path = path.child("sources").index(i);
        for kind in ["secret", "configMap"] {
            let Some(s) = obj(source, kind) else { continue };
            num += 1;
            let proj = src_path.child(kind);
            let name = str_of(s, "name");
            if name.is_empty() {
                errs.push(FieldError::required(&proj.child("name"), ""));
            }
            for (j, kp) in arr(s, "items").iter().enumerate() {
                errs.extend(validate_key_to_path(kp, &proj.child("items").index(j)));
                let p = str_of(kp, "path");
                if !p.is_empty() && !all_paths.insert(p.to_string()) {
                    errs.push(FieldError::invalid(
                        path,
                        name,
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(d) = obj(source, "downwardAPI") {
            num += 1;
            let proj = src_path.child("downwardAPI");
            for file in arr(d, "items") {
                errs.extend(validate_downward_api_file(file, &proj));
                let p = str_of(file, "path");
                if !p.is_empty() && !all_paths.insert(p.to_string()) {
                    errs.push(FieldError::invalid(path, p, "conflicting duplicate paths"));
                }
            }
        }
        if let Some(t) = obj(source, "serviceAccountToken") {
            num += 1;
            let proj = src_path.child("serviceAccountToken");
            let exp = int_of(t, "expirationSeconds");
            if exp < 600 {
                errs.push(FieldError::invalid(
                    &proj.child("expirationSeconds"),
                    exp,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(FieldError::invalid(
                    &proj.child("expirationSeconds"),
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            let p = str_of(t, "path");
            if p.is_empty() {
                errs.push(FieldError::required(&path.child("path"), ""));
            } else {
                errs.extend(local_non_reserved_path(p, &path.child("path")));
            }
        }
        if let Some(b) = obj(source, "clusterTrustBundle") {
            num += 1;
            let proj = src_path.child("clusterTrustBundle");
            let p = str_of(b, "path");
            if p.is_empty() {
                errs.push(FieldError::required(&proj.child("path"), ""));
            }
            errs.extend(local_non_reserved_path(p, &proj.child("path")));
        }
        if num > 1 {
            errs.push(FieldError::forbidden(
                &src_path,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    errs
}

fn validate_scaleio(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "gateway", path, &mut errs);
    required_str(src, "system", path, &mut errs);
    required_str(src, "volumeName", path, &mut errs);
    errs
}

/// `ValidateCSIDriverName`.
pub(crate) fn validate_csi_driver_name(name: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    if name.len() > 63 {
        errs.push(FieldError::too_long(path, "", 63));
    }
    for m in crate::validation::is_dns1123_subdomain(&name.to_lowercase()) {
        errs.push(FieldError::invalid(path, name, m));
    }
    errs
}

fn validate_csi_volume(src: &Value, path: &Path) -> ErrorList {
    let mut errs = validate_csi_driver_name(str_of(src, "driver"), &path.child("driver"));
    if let Some(r) = obj(src, "nodePublishSecretRef") {
        let name = str_of(r, "name");
        if name.is_empty() {
            errs.push(FieldError::required(
                &path.child("nodePublishSecretRef").child("name"),
                "",
            ));
        } else {
            errs.extend(name_errors(
                name_is_dns_subdomain(name, false),
                name,
                &path.child("name"),
            ));
        }
    }
    errs
}

fn validate_ephemeral(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(tmpl) = obj(src, "volumeClaimTemplate") else {
        errs.push(FieldError::required(&path.child("volumeClaimTemplate"), ""));
        return errs;
    };
    let tpath = path.child("volumeClaimTemplate");
    errs.extend(validate_template_object_meta(
        child(tmpl, "metadata"),
        &tpath.child("metadata"),
    ));
    errs.extend(super::core::validate_pvc_spec(
        child(tmpl, "spec"),
        &tpath.child("spec"),
    ));
    errs
}

/// `ValidateTemplateObjectMeta`: only labels and annotations may be set.
pub(crate) fn validate_template_object_meta(meta: &Value, path: &Path) -> ErrorList {
    let mut errs = validate_annotations(
        &string_map(meta, "annotations").unwrap_or_default(),
        &path.child("annotations"),
    );
    errs.extend(validate_labels(
        &string_map(meta, "labels").unwrap_or_default(),
        &path.child("labels"),
    ));
    // ObjectMeta's fields in Go declaration order.
    const FIELDS: &[(&str, &str)] = &[
        ("name", "name"),
        ("generateName", "generateName"),
        ("namespace", "namespace"),
        ("selfLink", "selfLink"),
        ("uid", "uID"),
        ("resourceVersion", "resourceVersion"),
        ("generation", "generation"),
        ("creationTimestamp", "creationTimestamp"),
        ("deletionTimestamp", "deletionTimestamp"),
        ("deletionGracePeriodSeconds", "deletionGracePeriodSeconds"),
        ("ownerReferences", "ownerReferences"),
        ("finalizers", "finalizers"),
        ("managedFields", "managedFields"),
    ];
    for (key, go_name) in FIELDS {
        if let Some(v) = get(meta, key) {
            if !json::semantic_eq(Some(v), None) {
                errs.push(FieldError::forbidden(
                    &path.child(*go_name),
                    "cannot be set",
                ));
            }
        }
    }
    errs
}

fn validate_image_volume(src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    required_str(src, "reference", path, &mut errs);
    if let Some(p) = opt_str(src, "pullPolicy") {
        if !["Always", "IfNotPresent", "Never"].contains(&p) {
            errs.push(FieldError::not_supported(
                &path.child("pullPolicy"),
                p,
                &["Always", "IfNotPresent", "Never"],
            ));
        }
    }
    errs
}

// ------------------------------------------------------------- containers

const PORT_PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// `validateContainerPorts`.
fn validate_container_ports(ports: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let idx = path.index(i);
        let name = str_of(port, "name");
        if !name.is_empty() {
            let msgs = crate::validation::is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(&idx.child("name"), name, m));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(&idx.child("name"), name));
            }
        }
        let cp = int_of(port, "containerPort");
        if cp == 0 {
            errs.push(FieldError::required(&idx.child("containerPort"), ""));
        } else {
            for m in is_valid_port_num(cp) {
                errs.push(FieldError::invalid(&idx.child("containerPort"), cp, m));
            }
        }
        let hp = int_of(port, "hostPort");
        if hp != 0 {
            for m in is_valid_port_num(hp) {
                errs.push(FieldError::invalid(&idx.child("hostPort"), hp, m));
            }
        }
        let proto = str_of(port, "protocol");
        if proto.is_empty() {
            errs.push(FieldError::required(&idx.child("protocol"), ""));
        } else if !PORT_PROTOCOLS.contains(&proto) {
            errs.push(FieldError::not_supported(
                &idx.child("protocol"),
                proto,
                PORT_PROTOCOLS,
            ));
        }
    }
    errs
}

/// `ValidateEnv`.
fn validate_env(vars: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in vars.iter().enumerate() {
        let idx = path.index(i);
        let name = str_of(ev, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&idx.child("name"), ""));
        } else {
            for m in is_relaxed_env_var_name(name) {
                errs.push(FieldError::invalid(&idx.child("name"), name, m));
            }
        }
        errs.extend(validate_env_var_value_from(ev, &idx.child("valueFrom")));
    }
    errs
}

fn validate_env_var_value_from(ev: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(vf) = obj(ev, "valueFrom") else {
        return errs;
    };
    let mut num = 0;
    if let Some(fr) = obj(vf, "fieldRef") {
        num += 1;
        errs.extend(validate_object_field_selector(
            fr,
            ENV_FIELD_PATHS,
            &path.child("fieldRef"),
        ));
    }
    if let Some(rf) = obj(vf, "resourceFieldRef") {
        num += 1;
        errs.extend(validate_resource_field_selector(
            rf,
            &path.child("resourceFieldRef"),
            false,
        ));
    }
    if let Some(r) = obj(vf, "configMapKeyRef") {
        num += 1;
        errs.extend(validate_key_selector(r, &path.child("configMapKeyRef")));
    }
    if let Some(r) = obj(vf, "secretKeyRef") {
        num += 1;
        errs.extend(validate_key_selector(r, &path.child("secretKeyRef")));
    }
    if num == 0 {
        errs.push(FieldError::invalid(
            path,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if !str_of(ev, "value").is_empty() {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if num > 1 {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not have more than one field specified at a time",
        ));
    }
    errs
}

/// `validateConfigMapKeySelector` / `validateSecretKeySelector`.
fn validate_key_selector(s: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = str_of(s, "name");
    errs.extend(name_errors(
        name_is_dns_subdomain(name, false),
        name,
        &path.child("name"),
    ));
    let key = str_of(s, "key");
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        for m in is_config_map_key(key) {
            errs.push(FieldError::invalid(&path.child("key"), key, m));
        }
    }
    errs
}

/// `ValidateEnvFrom`.
fn validate_env_from(vars: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in vars.iter().enumerate() {
        let idx = path.index(i);
        let prefix = str_of(ev, "prefix");
        if !prefix.is_empty() {
            for m in is_relaxed_env_var_name(prefix) {
                errs.push(FieldError::invalid(&idx.child("prefix"), prefix, m));
            }
        }
        let mut num = 0;
        for key in ["configMapRef", "secretRef"] {
            if let Some(r) = obj(ev, key) {
                num += 1;
                let name = str_of(r, "name");
                if name.is_empty() {
                    errs.push(FieldError::required(&idx.child(key).child("name"), ""));
                } else {
                    errs.extend(name_errors(
                        name_is_dns_subdomain(name, true),
                        name,
                        &idx.child(key).child("name"),
                    ));
                }
            }
        }
        if num == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if num > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

/// `ValidateVolumeMounts`.
fn validate_volume_mounts(
    ctr: &Value,
    devices: &HashMap<&str, &str>,
    volumes: &HashMap<String, &Value>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut mountpoints = HashSet::new();
    for (i, mnt) in arr(ctr, "volumeMounts").iter().enumerate() {
        let idx = path.index(i);
        let name = str_of(mnt, "name");
        let mount_path = str_of(mnt, "mountPath");
        if name.is_empty() {
            errs.push(FieldError::required(&idx.child("name"), ""));
        }
        if !volumes.contains_key(name) {
            errs.push(FieldError::not_found(&idx.child("name"), name));
        }
        if mount_path.is_empty() {
            errs.push(FieldError::required(&idx.child("mountPath"), ""));
        }
        if !mountpoints.insert(mount_path) {
            errs.push(FieldError::invalid(
                &idx.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        if devices.contains_key(name) {
            errs.push(FieldError::invalid(
                &idx.child("name"),
                name,
                "must not already exist in volumeDevices",
            ));
        }
        if devices.values().any(|p| *p == mount_path) {
            errs.push(FieldError::invalid(
                &idx.child("mountPath"),
                mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = str_of(mnt, "subPath");
        let sub_path_expr = str_of(mnt, "subPathExpr");
        if volumes.get(name).is_some_and(|v| get(v, "image").is_some()) {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    &idx.child("subPath"),
                    sub_path,
                    "not allowed in image volume sources",
                ));
            }
            if !sub_path_expr.is_empty() {
                errs.push(FieldError::invalid(
                    &idx.child("subPathExpr"),
                    sub_path_expr,
                    "not allowed in image volume sources",
                ));
            }
        }
        // Upstream reports these two at the list's path, not the item's.
        if !sub_path.is_empty() {
            errs.extend(local_descending_path(sub_path, &path.child("subPath")));
        }
        if !sub_path_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    &idx.child("subPathExpr"),
                    sub_path_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(local_descending_path(
                sub_path_expr,
                &path.child("subPathExpr"),
            ));
        }
        if let Some(prop) = opt_str(mnt, "mountPropagation") {
            let p = path.child("mountPropagation");
            let supported = ["Bidirectional", "HostToContainer", "None"];
            if !supported.contains(&prop) {
                errs.push(FieldError::not_supported(&p, prop, &supported));
            }
            let privileged =
                obj(ctr, "securityContext").is_some_and(|sc| bool_of(sc, "privileged"));
            if prop == "Bidirectional" && !privileged {
                errs.push(FieldError::forbidden(
                    &p,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
        if let Some(rro) = opt_str(mnt, "recursiveReadOnly") {
            let p = path.child("recursiveReadOnly");
            match rro {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if !bool_of(mnt, "readOnly") {
                        errs.push(FieldError::forbidden(
                            &p,
                            "may only be specified when readOnly is true",
                        ));
                    }
                    if opt_str(mnt, "mountPropagation").is_some_and(|m| m != "None") {
                        errs.push(FieldError::forbidden(
                            &p,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(FieldError::not_supported(
                    &p,
                    other,
                    &["Disabled", "Enabled", "IfPossible"],
                )),
            }
        }
    }
    errs
}

/// `ValidateVolumeDevices`.
fn validate_volume_devices(
    ctr: &Value,
    mounts: &HashMap<&str, &str>,
    volumes: &HashMap<String, &Value>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut device_paths = HashSet::new();
    let mut device_names = HashSet::new();
    for (i, dev) in arr(ctr, "volumeDevices").iter().enumerate() {
        let idx = path.index(i);
        let name = str_of(dev, "name");
        let dpath = str_of(dev, "devicePath");
        let (matched, is_pvc) = match volumes.get(name) {
            Some(v) => (
                true,
                get(v, "persistentVolumeClaim").is_some() || get(v, "ephemeral").is_some(),
            ),
            None => (false, false),
        };
        if name.is_empty() {
            errs.push(FieldError::required(&idx.child("name"), ""));
        }
        if device_names.contains(name) {
            errs.push(FieldError::invalid(
                &idx.child("name"),
                name,
                "must be unique",
            ));
        }
        if matched && !is_pvc {
            errs.push(FieldError::invalid(
                &idx.child("name"),
                name,
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            ));
        }
        if !matched {
            errs.push(FieldError::not_found(&idx.child("name"), name));
        }
        if dpath.is_empty() {
            errs.push(FieldError::required(&idx.child("devicePath"), ""));
        }
        if device_paths.contains(dpath) {
            errs.push(FieldError::invalid(
                &idx.child("devicePath"),
                dpath,
                "must be unique",
            ));
        }
        if !dpath.is_empty() && !path_no_backsteps(dpath, &path.child("devicePath")).is_empty() {
            errs.push(FieldError::invalid(
                &idx.child("devicePath"),
                dpath,
                "can not contain backsteps ('..')",
            ));
        } else {
            device_paths.insert(dpath);
        }
        if mounts.contains_key(name) {
            errs.push(FieldError::invalid(
                &idx.child("name"),
                name,
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.values().any(|p| *p == dpath) {
            errs.push(FieldError::invalid(
                &idx.child("devicePath"),
                dpath,
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !name.is_empty() {
            device_names.insert(name);
        }
    }
    errs
}

/// `ValidateContainerResourceRequirements`.
pub(crate) fn validate_resource_requirements(
    res: &Value,
    pod_claims: &BTreeSet<String>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let limits = resource_list(res, "limits");
    let requests = resource_list(res, "requests");
    let qos = ["cpu", "memory"];
    let (mut lim_cpu_mem, mut req_cpu_mem, mut lim_huge, mut req_huge) =
        (false, false, false, false);
    for (name, q) in &limits {
        let p = lim_path.key(name.clone());
        errs.extend(container_resource_name(name, &p));
        errs.extend(resource_quantity_value(name, q, &p));
        if is_huge_page_resource_name(name) {
            lim_huge = true;
            if let Some(e) = huge_page_value_error(name, q) {
                errs.push(FieldError::invalid(&p, q.to_string(), e));
            }
        }
        if qos.contains(&name.as_str()) {
            lim_cpu_mem = true;
        }
    }
    for (name, q) in &requests {
        let p = req_path.key(name.clone());
        errs.extend(container_resource_name(name, &p));
        errs.extend(resource_quantity_value(name, q, &p));
        if let Some(limit) = limits.get(name) {
            if q != limit && !is_overcommit_allowed(name) {
                errs.push(FieldError::invalid(
                    &req_path,
                    q.to_string(),
                    format!("must be equal to {name} limit of {limit}"),
                ));
            } else if q > limit {
                errs.push(FieldError::invalid(
                    &req_path,
                    q.to_string(),
                    format!("must be less than or equal to {name} limit of {limit}"),
                ));
            }
        } else if !is_overcommit_allowed(name) {
            errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            ));
        }
        if is_huge_page_resource_name(name) {
            req_huge = true;
            if let Some(e) = huge_page_value_error(name, q) {
                errs.push(FieldError::invalid(&p, q.to_string(), e));
            }
        }
        if qos.contains(&name.as_str()) {
            req_cpu_mem = true;
        }
    }
    if !lim_cpu_mem && !req_cpu_mem && (req_huge || lim_huge) {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    errs.extend(validate_resource_claim_names(
        arr(res, "claims"),
        pod_claims,
        &path.child("claims"),
    ));
    errs
}

/// A `ResourceList` field as parsed quantities, by name (unparseable values
/// are left to the decoder, which rejects them).
pub(crate) fn resource_list(v: &Value, key: &str) -> BTreeMap<String, Quantity> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| Quantity::from_json(q).ok().map(|q| (k.clone(), q)))
                .collect()
        })
        .unwrap_or_default()
}

fn huge_page_value_error(name: &str, q: &Quantity) -> Option<String> {
    let size = name
        .strip_prefix("hugepages-")
        .and_then(|s| Quantity::parse(s).ok());
    let divisible = match &size {
        Some(size) if size.sign() > 0 && size.milli_value() % 1000 == 0 => {
            size.value() != 0 && q.value() % size.value() == 0
        }
        _ => false,
    };
    (!divisible).then(|| format!("{q} is not positive integer multiple of {name}"))
}

fn validate_resource_claim_names(
    claims: &[Value],
    pod_claims: &BTreeSet<String>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names: HashSet<String> = HashSet::new();
    for (i, claim) in claims.iter().enumerate() {
        let name = str_of(claim, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&path.index(i), ""));
            continue;
        }
        if names.contains(name) {
            errs.push(FieldError::duplicate(&path.index(i), name));
        } else {
            let request = str_of(claim, "request");
            let mut key = name.to_string();
            if !request.is_empty() {
                errs.extend(dns1123_label(request, &path.index(i).child("request")));
                key = format!("{name}/{request}");
            }
            if names.contains(&key) {
                errs.push(FieldError::duplicate(&path.index(i), key.as_str()));
            } else if request.is_empty() {
                for k in &names {
                    if k.split_once('/').is_some_and(|(n, _)| n == name) {
                        errs.push(FieldError::duplicate(&path.index(i), name));
                    }
                }
            }
            names.insert(key);
        }
        if !pod_claims.contains(name) {
            let mut e = FieldError::not_found(&path.index(i), name);
            e.detail = "must be one of the names in pod.spec.resourceClaims".to_string();
            if pod_claims.is_empty() {
                e.detail.push_str(" which is empty");
            } else {
                e.detail.push_str(": ");
                e.detail
                    .push_str(&pod_claims.iter().cloned().collect::<Vec<_>>().join(", "));
            }
            errs.push(e);
        }
    }
    errs
}

fn validate_resize_policy(policies: &[Value], path: &Path, pod_restart_policy: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = HashSet::new();
    for (i, p) in policies.iter().enumerate() {
        let name = str_of(p, "resourceName");
        if !seen.insert(name) {
            errs.push(FieldError::duplicate(&path.index(i), name));
        }
        match name {
            "cpu" | "memory" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(path, other, &["cpu", "memory"])),
        }
        let policy = str_of(p, "restartPolicy");
        match policy {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(
                path,
                other,
                &["NotRequired", "RestartContainer"],
            )),
        }
        if pod_restart_policy == "Never" && policy != "NotRequired" {
            errs.push(FieldError::invalid(
                path,
                policy,
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
    errs
}

/// `validateContainerCommon`.
fn validate_container_common(
    ctr: &Value,
    volumes: &HashMap<String, &Value>,
    pod_claims: &BTreeSet<String>,
    path: &Path,
    pod_restart_policy: &str,
    host_users: bool,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = str_of(ctr, "name");
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        errs.extend(dns1123_label(name, &path.child("name")));
    }
    if str_of(ctr, "image").is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    match str_of(ctr, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            &path.child("terminationMessagePolicy"),
            "",
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    let mounts: HashMap<&str, &str> = arr(ctr, "volumeMounts")
        .iter()
        .map(|m| (str_of(m, "name"), str_of(m, "mountPath")))
        .collect();
    let devices: HashMap<&str, &str> = arr(ctr, "volumeDevices")
        .iter()
        .map(|d| (str_of(d, "name"), str_of(d, "devicePath")))
        .collect();
    errs.extend(validate_container_ports(
        arr(ctr, "ports"),
        &path.child("ports"),
    ));
    errs.extend(validate_env(arr(ctr, "env"), &path.child("env")));
    errs.extend(validate_env_from(
        arr(ctr, "envFrom"),
        &path.child("envFrom"),
    ));
    errs.extend(validate_volume_mounts(
        ctr,
        &devices,
        volumes,
        &path.child("volumeMounts"),
    ));
    errs.extend(validate_volume_devices(
        ctr,
        &mounts,
        volumes,
        &path.child("volumeDevices"),
    ));
    let pull = path.child("imagePullPolicy");
    match str_of(ctr, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(&pull, "")),
        other => errs.push(FieldError::not_supported(
            &pull,
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    errs.extend(validate_resource_requirements(
        child(ctr, "resources"),
        pod_claims,
        &path.child("resources"),
    ));
    errs.extend(validate_resize_policy(
        arr(ctr, "resizePolicy"),
        &path.child("resizePolicy"),
        pod_restart_policy,
    ));
    if let Some(sc) = obj(ctr, "securityContext") {
        errs.extend(validate_security_context(
            sc,
            &path.child("securityContext"),
            host_users,
        ));
    }
    errs
}

// ---------------------------------------------------------------- probes

fn validate_handler(h: &Value, grace: Option<i64>, path: &Path, lifecycle: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut num = 0;
    let kinds: &[&str] = if lifecycle {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    for kind in kinds {
        let Some(action) = get(h, kind) else { continue };
        let p = path.child(*kind);
        if num > 0 {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        num += 1;
        match *kind {
            "exec" if arr(action, "command").is_empty() => {
                errs.push(FieldError::required(&p.child("command"), ""));
            }
            "httpGet" => {
                if str_of(action, "path").is_empty() {
                    errs.push(FieldError::required(&p.child("path"), ""));
                }
                errs.extend(port_num_or_name(get(action, "port"), &p.child("port")));
                let scheme = str_of(action, "scheme");
                if !["HTTP", "HTTPS"].contains(&scheme) {
                    errs.push(FieldError::not_supported(
                        &p.child("scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
                for header in arr(action, "httpHeaders") {
                    let name = str_of(header, "name");
                    for m in is_http_header_name(name) {
                        errs.push(FieldError::invalid(&p.child("httpHeaders"), name, m));
                    }
                }
            }
            "tcpSocket" => errs.extend(port_num_or_name(get(action, "port"), &p.child("port"))),
            "grpc" => {
                let port = int_of(action, "port");
                for m in is_valid_port_num(port) {
                    errs.push(FieldError::invalid(&p.child("port"), port, m));
                }
            }
            "sleep" => {
                let secs = int_of(action, "seconds");
                if let Some(g) = grace {
                    if secs <= 0 || secs > g {
                        errs.push(FieldError::invalid(
                            &p,
                            secs,
                            format!("must be greater than 0 and less than terminationGracePeriodSeconds ({g}). Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep."),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if num == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

fn validate_lifecycle(lc: &Value, grace: Option<i64>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for hook in ["postStart", "preStop"] {
        if let Some(h) = obj(lc, hook) {
            errs.extend(validate_handler(h, grace, &path.child(hook), true));
        }
    }
    errs
}

fn validate_probe(probe: &Value, grace: Option<i64>, path: &Path) -> ErrorList {
    let mut errs = validate_handler(probe, grace, path, false);
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        errs.extend(validate_nonnegative_field(int_of(probe, f), &path.child(f)));
    }
    if let Some(t) = opt_int(probe, "terminationGracePeriodSeconds") {
        if t <= 0 {
            errs.push(FieldError::invalid(
                &path.child("terminationGracePeriodSeconds"),
                t,
                "must be greater than 0",
            ));
        }
    }
    errs
}

fn validate_probes(ctr: &Value, grace: Option<i64>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (key, success_must_be_one) in [
        ("livenessProbe", true),
        ("readinessProbe", false),
        ("startupProbe", true),
    ] {
        let Some(probe) = obj(ctr, key) else { continue };
        let p = path.child(key);
        errs.extend(validate_probe(probe, grace, &p));
        if success_must_be_one {
            let st = int_of(probe, "successThreshold");
            if st != 1 {
                errs.push(FieldError::invalid(
                    &p.child("successThreshold"),
                    st,
                    "must be 1",
                ));
            }
        } else if let Some(t) = opt_int(probe, "terminationGracePeriodSeconds") {
            errs.push(FieldError::invalid(
                &p.child("terminationGracePeriodSeconds"),
                t,
                "must not be set for readinessProbes",
            ));
        }
    }
    errs
}

// ------------------------------------------------------ security contexts

fn validate_seccomp_profile(sp: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(sp) = sp else { return errs };
    let t = str_of(sp, "type");
    match t {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(FieldError::required(
            &path.child("type"),
            "type is required when seccompProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    if t == "Localhost" {
        match opt_str(sp, "localhostProfile") {
            None => errs.push(FieldError::required(
                &path.child("localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(p) => errs.extend(local_descending_path(p, &path.child("localhostProfile"))),
        }
    } else if get(sp, "localhostProfile").is_some() {
        errs.push(FieldError::invalid(
            &path.child("localhostProfile"),
            json_value(Some(sp)),
            "can only be set when seccomp type is Localhost",
        ));
    }
    errs
}

fn validate_apparmor_profile(p: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(p) = p else { return errs };
    match str_of(p, "type") {
        "Localhost" => match opt_str(p, "localhostProfile") {
            None => errs.push(FieldError::required(
                &path.child("localhostProfile"),
                "must be set when AppArmor type is Localhost",
            )),
            Some(lp) => {
                let trimmed = lp.trim();
                if trimmed != lp {
                    errs.push(FieldError::invalid(
                        &path.child("localhostProfile"),
                        lp,
                        "must not be padded with whitespace",
                    ));
                } else if trimmed.is_empty() {
                    errs.push(FieldError::required(
                        &path.child("localhostProfile"),
                        "must be set when AppArmor type is Localhost",
                    ));
                }
                if lp.len() > 4095 {
                    errs.push(FieldError::too_long(
                        &path.child("localhostProfile"),
                        "",
                        4095,
                    ));
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(lp) = opt_str(p, "localhostProfile") {
                errs.push(FieldError::invalid(
                    &path.child("localhostProfile"),
                    lp,
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => errs.push(FieldError::required(
            &path.child("type"),
            "type is required when appArmorProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    errs
}

/// `ValidateSecurityContext` (a container's).
fn validate_security_context(sc: &Value, path: &Path, host_users: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    for key in ["runAsUser", "runAsGroup"] {
        if let Some(id) = opt_int(sc, key) {
            for m in is_valid_id(id) {
                errs.push(FieldError::invalid(&path.child(key), id, m));
            }
        }
    }
    if let Some(pm) = opt_str(sc, "procMount") {
        if !["Default", "Unmasked"].contains(&pm) {
            errs.push(FieldError::not_supported(
                &path.child("procMount"),
                pm,
                &["Default", "Unmasked"],
            ));
        }
        if host_users && pm == "Unmasked" {
            errs.push(FieldError::invalid(
                &path.child("procMount"),
                pm,
                "`hostUsers` must be false to use `Unmasked`",
            ));
        }
    }
    errs.extend(validate_seccomp_profile(
        obj(sc, "seccompProfile"),
        &path.child("seccompProfile"),
    ));
    if opt_bool(sc, "allowPrivilegeEscalation") == Some(false) {
        if opt_bool(sc, "privileged") == Some(true) {
            errs.push(FieldError::invalid(
                path,
                json_value(Some(sc)),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let adds = obj(sc, "capabilities")
            .map(|c| strings(c, "add").unwrap_or_default())
            .unwrap_or_default();
        for cap in adds {
            if cap == "CAP_SYS_ADMIN" {
                errs.push(FieldError::invalid(
                    path,
                    json_value(Some(sc)),
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                ));
            }
        }
    }
    errs.extend(validate_apparmor_profile(
        obj(sc, "appArmorProfile"),
        &path.child("appArmorProfile"),
    ));
    errs
}

const SYSCTL_FMT: &str = "^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$";

/// The pod-level security context (`validatePodSpecSecurityContext`). In the
/// v1 JSON the host namespace flags live on the spec itself.
fn validate_pod_security_context(spec: &Value, path: &Path) -> ErrorList {
    use regex::Regex;
    use std::sync::LazyLock;
    static SYSCTL_RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(SYSCTL_FMT).expect("static regex"));
    let mut errs = ErrorList::new();
    let Some(sc) = obj(spec, "securityContext") else {
        return errs;
    };
    for key in ["fsGroup", "runAsUser", "runAsGroup"] {
        if let Some(id) = opt_int(sc, key) {
            for m in is_valid_id(id) {
                errs.push(FieldError::invalid(&path.child(key), id, m));
            }
        }
    }
    for (i, g) in arr(sc, "supplementalGroups").iter().enumerate() {
        if let Some(id) = g.as_i64() {
            for m in is_valid_id(id) {
                errs.push(FieldError::invalid(
                    &path.child("supplementalGroups").index(i),
                    id,
                    m,
                ));
            }
        }
    }
    if opt_bool(spec, "shareProcessNamespace") == Some(true) && bool_of(spec, "hostPID") {
        errs.push(FieldError::invalid(
            &path.child("shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let sysctls_path = path.child("sysctls");
    let mut names = HashSet::new();
    for (i, s) in arr(sc, "sysctls").iter().enumerate() {
        let name = str_of(s, "name");
        let np = sysctls_path.index(i).child("name");
        if name.is_empty() {
            errs.push(FieldError::required(&np, ""));
        } else if name.len() > 253 || !SYSCTL_RE.is_match(name) {
            errs.push(FieldError::invalid(
                &np,
                name,
                format!("must have at most 253 characters and match regex {SYSCTL_FMT}"),
            ));
        } else if names.contains(name) {
            errs.push(FieldError::duplicate(&np, name));
        }
        let normalized = name.replace('/', ".");
        let is_net = normalized.starts_with("net.");
        let is_ipc = normalized.starts_with("kernel.shm")
            || normalized.starts_with("kernel.msg")
            || normalized == "kernel.sem"
            || normalized.starts_with("fs.mqueue.");
        if bool_of(spec, "hostNetwork") && is_net {
            errs.push(FieldError::invalid(
                &np,
                name,
                "may not be specified when 'hostNetwork' is true",
            ));
        } else if bool_of(spec, "hostIPC") && is_ipc {
            errs.push(FieldError::invalid(
                &np,
                name,
                "may not be specified when 'hostIPC' is true",
            ));
        }
        names.insert(name);
    }
    if let Some(p) = opt_str(sc, "fsGroupChangePolicy") {
        if !["Always", "OnRootMismatch"].contains(&p) {
            errs.push(FieldError::not_supported(
                &path.child("fsGroupChangePolicy"),
                p,
                &["Always", "OnRootMismatch"],
            ));
        }
    }
    errs.extend(validate_seccomp_profile(
        obj(sc, "seccompProfile"),
        &path.child("seccompProfile"),
    ));
    errs.extend(validate_apparmor_profile(
        obj(sc, "appArmorProfile"),
        &path.child("appArmorProfile"),
    ));
    if let Some(p) = opt_str(sc, "supplementalGroupsPolicy") {
        if !["Merge", "Strict"].contains(&p) {
            errs.push(FieldError::not_supported(
                &path.child("supplementalGroupsPolicy"),
                p,
                &["Merge", "Strict"],
            ));
        }
    }
    if let Some(p) = opt_str(sc, "seLinuxChangePolicy") {
        if !["MountOption", "Recursive"].contains(&p) {
            errs.push(FieldError::not_supported(
                &path.child("seLinuxChangePolicy"),
                p,
                &["MountOption", "Recursive"],
            ));
        }
    }
    errs
}

// ------------------------------------------------------------- scheduling

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(tols: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, t) in tols.iter().enumerate() {
        let idx = path.index(i);
        let key = str_of(t, "key");
        let op = str_of(t, "operator");
        let effect = str_of(t, "effect");
        let value = str_of(t, "value");
        if !key.is_empty() {
            errs.extend(validate_label_name(key, &idx.child("key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &idx.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &idx.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &idx.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        &idx.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &idx.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            errs.extend(validate_taint_effect(effect, &idx.child("effect")));
        }
    }
    errs
}

/// `validateTaintEffect` for a non-empty effect.
pub(crate) fn validate_taint_effect(effect: &str, path: &Path) -> ErrorList {
    match effect {
        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => ErrorList::new(),
        other => FieldError::not_supported(
            path,
            other,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        )
        .into(),
    }
}

/// `ValidateNodeSelectorRequirement`.
fn validate_node_selector_requirement(
    rq: &Value,
    allow_invalid_values: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = strings(rq, "values").unwrap_or_default();
    match str_of(rq, "operator") {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(
                    &path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            &path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_label_name(str_of(rq, "key"), &path.child("key")));
    if !allow_invalid_values {
        for (i, v) in values.iter().enumerate() {
            for m in is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    &path.child("values").index(i),
                    v.as_str(),
                    m,
                ));
            }
        }
    }
    errs
}

fn validate_node_field_selector_requirement(rq: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = strings(rq, "values").unwrap_or_default();
    match str_of(rq, "operator") {
        "In" | "NotIn" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            &path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    let key = str_of(rq, "key");
    if key != "metadata.name" {
        errs.push(FieldError::invalid(
            &path.child("key"),
            key,
            "not a valid field selector key",
        ));
    } else {
        for (i, v) in values.iter().enumerate() {
            errs.extend(name_errors(
                name_is_dns_subdomain(v, false),
                v,
                &path.child("values").index(i),
            ));
        }
    }
    errs
}

fn validate_node_selector_term(term: &Value, allow_invalid_values: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (j, rq) in arr(term, "matchExpressions").iter().enumerate() {
        errs.extend(validate_node_selector_requirement(
            rq,
            allow_invalid_values,
            &path.child("matchExpressions").index(j),
        ));
    }
    for (j, rq) in arr(term, "matchFields").iter().enumerate() {
        errs.extend(validate_node_field_selector_requirement(
            rq,
            &path.child("matchFields").index(j),
        ));
    }
    errs
}

/// `ValidateNodeSelector`.
pub(crate) fn validate_node_selector(
    ns: &Value,
    allow_invalid_values: bool,
    path: &Path,
) -> ErrorList {
    let terms = arr(ns, "nodeSelectorTerms");
    let tp = path.child("nodeSelectorTerms");
    if terms.is_empty() {
        return FieldError::required(&tp, "must have at least one node selector term").into();
    }
    let mut errs = ErrorList::new();
    for (i, term) in terms.iter().enumerate() {
        errs.extend(validate_node_selector_term(
            term,
            allow_invalid_values,
            &tp.index(i),
        ));
    }
    errs
}

fn validate_pod_affinity_term(term: &Value, path: &Path) -> ErrorList {
    let mut errs = label_selector_errs(term, "labelSelector", false, &path.child("labelSelector"));
    errs.extend(label_selector_errs(
        term,
        "namespaceSelector",
        false,
        &path.child("namespaceSelector"),
    ));
    for ns in strings(term, "namespaces").unwrap_or_default() {
        errs.extend(name_errors(
            validate_namespace_name(&ns, false),
            &ns,
            &path.child("namespace"),
        ));
    }
    let tk = str_of(term, "topologyKey");
    if tk.is_empty() {
        errs.push(FieldError::required(
            &path.child("topologyKey"),
            "can not be empty",
        ));
    }
    errs.extend(validate_label_name(tk, &path.child("topologyKey")));
    errs
}

fn validate_pod_affinity(pa: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let req = path.child("requiredDuringSchedulingIgnoredDuringExecution");
    for (i, t) in arr(pa, "requiredDuringSchedulingIgnoredDuringExecution")
        .iter()
        .enumerate()
    {
        errs.extend(validate_pod_affinity_term(t, &req.index(i)));
    }
    let pref = path.child("preferredDuringSchedulingIgnoredDuringExecution");
    for (j, wt) in arr(pa, "preferredDuringSchedulingIgnoredDuringExecution")
        .iter()
        .enumerate()
    {
        let w = int_of(wt, "weight");
        if w <= 0 || w > 100 {
            errs.push(FieldError::invalid(
                &pref.index(j).child("weight"),
                w,
                "must be in the range 1-100",
            ));
        }
        errs.extend(validate_pod_affinity_term(
            child(wt, "podAffinityTerm"),
            &pref.index(j).child("podAffinityTerm"),
        ));
    }
    errs
}

fn validate_affinity(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(aff) = obj(spec, "affinity") else {
        return errs;
    };
    if let Some(na) = obj(aff, "nodeAffinity") {
        let p = path.child("nodeAffinity");
        if let Some(req) = obj(na, "requiredDuringSchedulingIgnoredDuringExecution") {
            errs.extend(validate_node_selector(
                req,
                false,
                &p.child("requiredDuringSchedulingIgnoredDuringExecution"),
            ));
        }
        let pp = p.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, term) in arr(na, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let w = int_of(term, "weight");
            if w <= 0 || w > 100 {
                errs.push(FieldError::invalid(
                    &pp.index(i).child("weight"),
                    w,
                    "must be in the range 1-100",
                ));
            }
            errs.extend(validate_node_selector_term(
                child(term, "preference"),
                true,
                &pp.index(i).child("preference"),
            ));
        }
    }
    if let Some(pa) = obj(aff, "podAffinity") {
        errs.extend(validate_pod_affinity(pa, &path.child("podAffinity")));
    }
    if let Some(pa) = obj(aff, "podAntiAffinity") {
        errs.extend(validate_pod_affinity(pa, &path.child("podAntiAffinity")));
    }
    errs
}

fn validate_topology_spread(constraints: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, c) in constraints.iter().enumerate() {
        let p = path.index(i);
        let skew = int_of(c, "maxSkew");
        if skew <= 0 {
            errs.push(FieldError::invalid(
                &p.child("maxSkew"),
                skew,
                "must be greater than zero",
            ));
        }
        let key = str_of(c, "topologyKey");
        if key.is_empty() {
            errs.push(FieldError::required(
                &p.child("topologyKey"),
                "can not be empty",
            ));
        }
        let when = str_of(c, "whenUnsatisfiable");
        if !["DoNotSchedule", "ScheduleAnyway"].contains(&when) {
            errs.push(FieldError::not_supported(
                &p.child("whenUnsatisfiable"),
                when,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if constraints[i + 1..]
            .iter()
            .any(|o| str_of(o, "topologyKey") == key && str_of(o, "whenUnsatisfiable") == when)
        {
            errs.push(FieldError::duplicate(
                &p.child("{topologyKey, whenUnsatisfiable}"),
                format!("{{{key}, {when}}}"),
            ));
        }
        if let Some(md) = opt_int(c, "minDomains") {
            if md <= 0 {
                errs.push(FieldError::invalid(
                    &p.child("minDomains"),
                    md,
                    "must be greater than zero",
                ));
            }
            if when != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    &p.child("minDomains"),
                    md,
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {when}"
                    ),
                ));
            }
        }
        for key in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(pol) = opt_str(c, key) {
                if !["Honor", "Ignore"].contains(&pol) {
                    errs.push(FieldError::not_supported(
                        &p.child(key),
                        pol,
                        &["Honor", "Ignore"],
                    ));
                }
            }
        }
        errs.extend(label_selector_errs(
            c,
            "labelSelector",
            false,
            &p.child("labelSelector"),
        ));
    }
    errs
}

fn validate_dns_config(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let cfg = obj(spec, "dnsConfig");
    if str_of(spec, "dnsPolicy") == "None" {
        let Some(cfg) = cfg else {
            return FieldError::required(path, "must provide `dnsConfig` when `dnsPolicy` is None")
                .into();
        };
        if arr(cfg, "nameservers").is_empty() {
            return FieldError::required(
                &path.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )
            .into();
        }
    }
    let Some(cfg) = cfg else { return errs };
    let nameservers = strings(cfg, "nameservers").unwrap_or_default();
    if nameservers.len() > 3 {
        errs.push(FieldError::invalid(
            &path.child("nameservers"),
            nameservers.clone(),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        errs.extend(valid_ip(ns, &path.child("nameservers").index(i)));
    }
    let searches = strings(cfg, "searches").unwrap_or_default();
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            searches.clone(),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            searches.clone(),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, s) in searches.iter().enumerate() {
        let s = s.strip_suffix('.').unwrap_or(s);
        errs.extend(dns1123_subdomain(s, &path.child("searches").index(i)));
    }
    for (i, o) in arr(cfg, "options").iter().enumerate() {
        if str_of(o, "name").is_empty() {
            errs.push(FieldError::required(
                &path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
    errs
}

// ---------------------------------------------------------------- PodSpec

/// `ValidatePodSpec`. `pod_meta` is the Pod's metadata (only for Pods).
pub(crate) fn validate_pod_spec(
    spec: &Value,
    pod_meta: Option<&Value>,
    path: &Path,
    opts: PodOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let grace = opt_int(spec, "terminationGracePeriodSeconds");
    if grace.is_none() {
        errs.push(FieldError::required(
            &path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    // v1 keeps hostUsers on the spec; unset means true.
    let host_users = opt_bool(spec, "hostUsers").unwrap_or(true);
    let restart_policy = str_of(spec, "restartPolicy");
    let pod_name = pod_meta.map(|m| str_of(m, "name"));
    let (vols, verrs) = validate_volumes(arr(spec, "volumes"), pod_name, &path.child("volumes"));
    errs.extend(verrs);

    // Resource claims.
    let mut pod_claims = BTreeSet::new();
    for c in arr(spec, "resourceClaims") {
        let n = str_of(c, "name");
        if !n.is_empty() {
            pod_claims.insert(n.to_string());
        }
    }
    let mut seen_claims = HashSet::new();
    for (i, c) in arr(spec, "resourceClaims").iter().enumerate() {
        let p = path.child("resourceClaims").index(i);
        let n = str_of(c, "name");
        if n.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else if !seen_claims.insert(n) {
            errs.push(FieldError::duplicate(&p.child("name"), n));
        } else {
            errs.extend(dns1123_label(n, &p.child("name")));
        }
        let rcn = opt_str(c, "resourceClaimName");
        let rctn = opt_str(c, "resourceClaimTemplateName");
        if rcn.is_some() && rctn.is_some() {
            errs.push(FieldError::invalid(
                &p,
                json_value(Some(c)),
                "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified",
            ));
        }
        if rcn.is_none() && rctn.is_none() {
            errs.push(FieldError::invalid(
                &p,
                json_value(Some(c)),
                "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`",
            ));
        }
        if let Some(n) = rcn {
            errs.extend(name_errors(
                name_is_dns_subdomain(n, false),
                n,
                &p.child("resourceClaimName"),
            ));
        }
        if let Some(n) = rctn {
            errs.extend(name_errors(
                name_is_dns_subdomain(n, false),
                n,
                &p.child("resourceClaimTemplateName"),
            ));
        }
    }

    // Regular containers.
    let containers = arr(spec, "containers");
    let cpath = path.child("containers");
    if containers.is_empty() {
        errs.push(FieldError::required(&cpath, ""));
    } else {
        let mut names = HashSet::new();
        for (i, ctr) in containers.iter().enumerate() {
            let p = cpath.index(i);
            errs.extend(validate_container_common(
                ctr,
                &vols,
                &pod_claims,
                &p,
                restart_policy,
                host_users,
            ));
            let name = str_of(ctr, "name");
            if !names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
            if let Some(lc) = obj(ctr, "lifecycle") {
                errs.extend(validate_lifecycle(lc, grace, &p.child("lifecycle")));
            }
            errs.extend(validate_probes(ctr, grace, &p));
            if get(ctr, "restartPolicy").is_some() {
                errs.push(FieldError::forbidden(
                    &p.child("restartPolicy"),
                    "may not be set for non-init containers",
                ));
            }
        }
        errs.extend(check_host_port_conflicts(containers, &cpath));
    }

    // Init containers.
    let ipath = path.child("initContainers");
    let mut all_names: HashSet<&str> = containers.iter().map(|c| str_of(c, "name")).collect();
    for (i, ctr) in arr(spec, "initContainers").iter().enumerate() {
        let p = ipath.index(i);
        errs.extend(validate_container_common(
            ctr,
            &vols,
            &pod_claims,
            &p,
            restart_policy,
            host_users,
        ));
        let mut restart_always = false;
        if let Some(rp) = opt_str(ctr, "restartPolicy") {
            if rp != "Always" {
                errs.push(FieldError::not_supported(
                    &p.child("restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
            restart_always = rp == "Always";
        }
        let name = str_of(ctr, "name");
        if all_names.contains(name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        } else if !name.is_empty() {
            all_names.insert(name);
        }
        errs.extend(check_host_port_conflicts(std::slice::from_ref(ctr), &ipath));
        if restart_always {
            if let Some(lc) = obj(ctr, "lifecycle") {
                errs.extend(validate_lifecycle(lc, grace, &p.child("lifecycle")));
            }
            errs.extend(validate_probes(ctr, grace, &p));
        } else {
            for key in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if get(ctr, key).is_some() {
                    errs.push(FieldError::forbidden(
                        &p.child(key),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }

    // Ephemeral containers.
    let epath = path.child("ephemeralContainers");
    let ephemeral = arr(spec, "ephemeralContainers");
    if !ephemeral.is_empty() {
        let other_names: HashSet<&str> = containers
            .iter()
            .chain(arr(spec, "initContainers"))
            .map(|c| str_of(c, "name"))
            .collect();
        let mut all = other_names.clone();
        for (i, ec) in ephemeral.iter().enumerate() {
            let p = epath.index(i);
            errs.extend(validate_container_common(
                ec,
                &vols,
                &pod_claims,
                &p,
                restart_policy,
                host_users,
            ));
            errs.extend(container_only_for_pod(ec, &p));
            let name = str_of(ec, "name");
            if !all.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
            let target = str_of(ec, "targetContainerName");
            if !target.is_empty() && !other_names.contains(target) {
                errs.push(FieldError::not_found(
                    &p.child("targetContainerName"),
                    target,
                ));
            }
            for key in [
                "ports",
                "resources",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
                "lifecycle",
                "resizePolicy",
                "restartPolicy",
            ] {
                if get(ec, key).is_some_and(|v| !json::semantic_eq(Some(v), None)) {
                    errs.push(FieldError::forbidden(
                        &p.child(key),
                        "cannot be set for an Ephemeral Container",
                    ));
                }
            }
            for (j, vm) in arr(ec, "volumeMounts").iter().enumerate() {
                for key in ["subPath", "subPathExpr"] {
                    if !str_of(vm, key).is_empty() {
                        errs.push(FieldError::forbidden(
                            &p.child("volumeMounts").index(j).child(key),
                            "cannot be set for an Ephemeral Container",
                        ));
                    }
                }
            }
        }
    }

    // Host network: host ports must match container ports.
    if bool_of(spec, "hostNetwork") {
        for (i, ctr) in containers.iter().enumerate() {
            for (j, port) in arr(ctr, "ports").iter().enumerate() {
                let hp = int_of(port, "hostPort");
                let cp = int_of(port, "containerPort");
                if (opts.resource_is_pod || hp != 0) && hp != cp {
                    errs.push(FieldError::invalid(
                        &cpath.index(i).child("ports").index(j).child("hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }

    let rp = path.child("restartPolicy");
    match restart_policy {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required(&rp, "")),
        other => errs.push(FieldError::not_supported(
            &rp,
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dp = path.child("dnsPolicy");
    match str_of(spec, "dnsPolicy") {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(&dp, "")),
        other => errs.push(FieldError::not_supported(
            &dp,
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    errs.extend(validate_labels(
        &string_map(spec, "nodeSelector").unwrap_or_default(),
        &path.child("nodeSelector"),
    ));
    errs.extend(validate_pod_security_context(
        spec,
        &path.child("securityContext"),
    ));
    errs.extend(validate_affinity(spec, &path.child("affinity")));
    errs.extend(validate_dns_config(spec, &path.child("dnsConfig")));
    for (i, g) in arr(spec, "readinessGates").iter().enumerate() {
        errs.extend(qualified_name(
            str_of(g, "conditionType"),
            &path.child("readinessGates").index(i).child("conditionType"),
        ));
    }
    let mut gates = HashSet::new();
    for (i, g) in arr(spec, "schedulingGates").iter().enumerate() {
        let p = path.child("schedulingGates").index(i);
        let name = str_of(g, "name");
        errs.extend(qualified_name(name, &p));
        if !gates.insert(name) {
            errs.push(FieldError::duplicate(&p, name));
        }
    }
    errs.extend(validate_topology_spread(
        arr(spec, "topologySpreadConstraints"),
        &path.child("topologySpreadConstraints"),
    ));
    if !host_users {
        for (key, child_name) in [
            ("hostNetwork", "hostNetwork"),
            ("hostPID", "HostPID"),
            ("hostIPC", "HostIPC"),
        ] {
            if bool_of(spec, key) {
                errs.push(FieldError::forbidden(
                    &path.child(child_name),
                    "when `pod.Spec.HostUsers` is false",
                ));
            }
        }
    }
    let sa = str_of(spec, "serviceAccountName");
    if !sa.is_empty() {
        errs.extend(name_errors(
            name_is_dns_subdomain(sa, false),
            sa,
            &path.child("serviceAccountName"),
        ));
    }
    let node = str_of(spec, "nodeName");
    if !node.is_empty() {
        errs.extend(name_errors(
            name_is_dns_subdomain(node, false),
            node,
            &path.child("nodeName"),
        ));
    }
    if let Some(ads) = opt_int(spec, "activeDeadlineSeconds") {
        if ads < 1 || ads > i64::from(i32::MAX) {
            errs.push(FieldError::invalid(
                &path.child("activeDeadlineSeconds"),
                ads,
                inclusive_range_error(1, i64::from(i32::MAX)),
            ));
        }
    }
    for key in ["hostname", "subdomain"] {
        let v = str_of(spec, key);
        if !v.is_empty() {
            errs.extend(dns1123_label(v, &path.child(key)));
        }
    }
    errs.extend(validate_tolerations(
        arr(spec, "tolerations"),
        &path.child("tolerations"),
    ));
    for (i, ha) in arr(spec, "hostAliases").iter().enumerate() {
        let p = path.child("hostAliases").index(i);
        errs.extend(valid_ip(str_of(ha, "ip"), &p.child("ip")));
        for (j, h) in strings(ha, "hostnames")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            errs.extend(dns1123_subdomain(h, &p.child("hostnames").index(j)));
        }
    }
    let pc = str_of(spec, "priorityClassName");
    if !pc.is_empty() {
        errs.extend(name_errors(
            name_is_dns_subdomain(pc, false),
            pc,
            &path.child("priorityClassName"),
        ));
    }
    if let Some(rc) = opt_str(spec, "runtimeClassName") {
        errs.extend(name_errors(
            name_is_dns_subdomain(rc, false),
            rc,
            &path.child("runtimeClassName"),
        ));
    }
    if let Some(pp) = opt_str(spec, "preemptionPolicy") {
        errs.extend(validate_preemption_policy(
            pp,
            &path.child("preemptionPolicy"),
        ));
    }
    if obj(spec, "overhead").is_some() {
        let res = serde_json::json!({ "limits": child(spec, "overhead") });
        errs.extend(validate_resource_requirements(
            &res,
            &BTreeSet::new(),
            &path.child("overhead"),
        ));
    }
    if let Some(os) = obj(spec, "os") {
        let name = str_of(os, "name");
        if name.is_empty() {
            errs.push(FieldError::required(
                &path.child("os").child("name"),
                "cannot be empty",
            ));
        } else if !["linux", "windows"].contains(&name) {
            errs.push(FieldError::not_supported(
                &path.child("os"),
                name,
                &["linux", "windows"],
            ));
        } else if name == "linux" {
            errs.extend(validate_linux(spec, path));
        } else {
            errs.extend(validate_windows(spec, path));
        }
    }
    errs
}

/// `ValidatePreemptionPolicy`.
pub(crate) fn validate_preemption_policy(pp: &str, path: &Path) -> ErrorList {
    match pp {
        "PreemptLowerPriority" | "Never" => ErrorList::new(),
        "" => FieldError::required(path, "").into(),
        other => FieldError::not_supported(path, other, &["PreemptLowerPriority", "Never"]).into(),
    }
}

/// Every container of the spec with its path (`VisitContainersWithPath`).
fn all_containers<'a>(spec: &'a Value, path: &Path) -> Vec<(&'a Value, Path)> {
    let mut out = Vec::new();
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, c) in arr(spec, key).iter().enumerate() {
            out.push((c, path.child(key).index(i)));
        }
    }
    out
}

fn validate_linux(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if obj(spec, "securityContext").is_some_and(|sc| get(sc, "windowsOptions").is_some()) {
        errs.push(FieldError::forbidden(
            &path.child("securityContext").child("windowsOptions"),
            "windows options cannot be set for a linux pod",
        ));
    }
    for (c, p) in all_containers(spec, path) {
        if obj(c, "securityContext").is_some_and(|sc| get(sc, "windowsOptions").is_some()) {
            errs.push(FieldError::forbidden(
                &p.child("securityContext").child("windowsOptions"),
                "windows options cannot be set for a linux pod",
            ));
        }
    }
    errs
}

fn validate_windows(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let msg = "cannot be set for a windows pod";
    let scp = path.child("securityContext");
    if let Some(sc) = obj(spec, "securityContext") {
        for key in ["appArmorProfile", "seLinuxOptions"] {
            if get(sc, key).is_some() {
                errs.push(FieldError::forbidden(&scp.child(key), msg));
            }
        }
        if get(spec, "hostUsers").is_some() {
            errs.push(FieldError::forbidden(&path.child("hostUsers"), msg));
        }
        for key in ["hostPID", "hostIPC"] {
            if bool_of(spec, key) {
                errs.push(FieldError::forbidden(&path.child(key), msg));
            }
        }
        for key in ["seccompProfile", "fsGroup", "fsGroupChangePolicy"] {
            if get(sc, key).is_some() {
                errs.push(FieldError::forbidden(&scp.child(key), msg));
            }
        }
        if !arr(sc, "sysctls").is_empty() {
            errs.push(FieldError::forbidden(&scp.child("sysctls"), msg));
        }
        if get(spec, "shareProcessNamespace").is_some() {
            errs.push(FieldError::forbidden(
                &path.child("shareProcessNamespace"),
                msg,
            ));
        }
        for key in [
            "runAsUser",
            "runAsGroup",
            "supplementalGroups",
            "supplementalGroupsPolicy",
            "seLinuxChangePolicy",
        ] {
            if get(sc, key).is_some() {
                errs.push(FieldError::forbidden(&scp.child(key), msg));
            }
        }
    }
    for (c, p) in all_containers(spec, path) {
        let Some(sc) = obj(c, "securityContext") else {
            continue;
        };
        let sp = p.child("securityContext");
        for key in [
            "appArmorProfile",
            "seLinuxOptions",
            "seccompProfile",
            "capabilities",
            "readOnlyRootFilesystem",
            "privileged",
            "allowPrivilegeEscalation",
            "procMount",
            "runAsUser",
            "runAsGroup",
        ] {
            if get(sc, key).is_some() {
                errs.push(FieldError::forbidden(&sp.child(key), msg));
            }
        }
    }
    errs
}

/// `checkHostPortConflicts`.
fn check_host_port_conflicts(containers: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = HashSet::new();
    for (ci, ctr) in containers.iter().enumerate() {
        for (pi, port) in arr(ctr, "ports").iter().enumerate() {
            let hp = int_of(port, "hostPort");
            if hp == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{hp}",
                str_of(port, "protocol"),
                str_of(port, "hostIP")
            );
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    &path.index(ci).child("ports").index(pi).child("hostPort"),
                    key,
                ));
            }
        }
    }
    errs
}

/// `validateContainerOnlyForPod`.
fn container_only_for_pod(ctr: &Value, path: &Path) -> ErrorList {
    let image = str_of(ctr, "image");
    if image.len() != image.trim().len() {
        return FieldError::invalid(
            &path.child("image"),
            image,
            "must not have leading or trailing whitespace",
        )
        .into();
    }
    ErrorList::new()
}

/// `ValidatePodSpecificAnnotations`.
fn validate_pod_specific_annotations(meta: &Value, spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let annotations = string_map(meta, "annotations").unwrap_or_default();
    if let Some(v) = annotations.get("kubernetes.io/config.mirror") {
        if str_of(spec, "nodeName").is_empty() {
            errs.push(FieldError::invalid(
                &path.key("kubernetes.io/config.mirror"),
                v.as_str(),
                "must set spec.nodeName if mirror pod annotation is set",
            ));
        }
    }
    if let Some(cost) = annotations.get("controller.kubernetes.io/pod-deletion-cost") {
        if cost.parse::<i32>().is_err() {
            errs.push(FieldError::invalid(
                &path.key("controller.kubernetes.io/pod-deletion-cost"),
                cost.as_str(),
                "must be a 32bit integer",
            ));
        }
    }
    for (k, p) in &annotations {
        if k == "seccomp.security.alpha.kubernetes.io/pod"
            || k.starts_with("container.seccomp.security.alpha.kubernetes.io/")
        {
            let ok = p == "runtime/default"
                || p == "docker/default"
                || p == "unconfined"
                || p.strip_prefix("localhost/")
                    .is_some_and(|l| local_descending_path(l, path).is_empty());
            if !ok {
                errs.push(FieldError::invalid(
                    &path.child(k.clone()),
                    p.as_str(),
                    "must be a valid seccomp profile",
                ));
            }
        }
        if let Some(container) = k.strip_prefix("container.apparmor.security.beta.kubernetes.io/") {
            let found = ["initContainers", "containers", "ephemeralContainers"]
                .iter()
                .any(|key| {
                    arr(spec, key)
                        .iter()
                        .any(|c| str_of(c, "name") == container)
                });
            if !found {
                errs.push(FieldError::invalid(
                    &path.key(k.clone()),
                    container,
                    "container not found",
                ));
            }
            if !(p.is_empty()
                || p == "runtime/default"
                || p == "unconfined"
                || p.starts_with("localhost/"))
            {
                errs.push(FieldError::invalid(
                    &path.key(k.clone()),
                    p.as_str(),
                    format!("invalid AppArmor profile name: {}", crate::gofmt::quote(p)),
                ));
            }
        }
    }
    errs
}

/// `ValidatePodTemplateSpec`: a template embedded in another object.
pub(crate) fn validate_pod_template_spec(tmpl: &Value, path: &Path) -> ErrorList {
    let meta = child(tmpl, "metadata");
    let spec = child(tmpl, "spec");
    let mut errs = validate_labels(
        &string_map(meta, "labels").unwrap_or_default(),
        &path.child("labels"),
    );
    errs.extend(validate_annotations(
        &string_map(meta, "annotations").unwrap_or_default(),
        &path.child("annotations"),
    ));
    errs.extend(validate_pod_specific_annotations(
        meta,
        spec,
        &path.child("annotations"),
    ));
    errs.extend(validate_pod_spec(
        spec,
        None,
        &path.child("spec"),
        PodOptions::default(),
    ));
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// `validatePodMetadataAndSpec`.
fn validate_pod_metadata_and_spec(pod: &Value) -> ErrorList {
    let meta = child(pod, "metadata");
    let spec = child(pod, "spec");
    let spec_path = Path::new("spec");
    let mut errs =
        validate_pod_specific_annotations(meta, spec, &Path::new("metadata").child("annotations"));
    errs.extend(validate_pod_spec(
        spec,
        Some(meta),
        &spec_path,
        PodOptions {
            resource_is_pod: true,
        },
    ));
    if str_of(spec, "serviceAccountName").is_empty() {
        for (vi, vol) in arr(spec, "volumes").iter().enumerate() {
            let Some(proj) = obj(vol, "projected") else {
                continue;
            };
            for (si, source) in arr(proj, "sources").iter().enumerate() {
                if get(source, "serviceAccountToken").is_some() {
                    errs.push(FieldError::forbidden(
                        &spec_path
                            .child("volumes")
                            .index(vi)
                            .child("projected")
                            .child("sources")
                            .index(si)
                            .child("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for key in ["containers", "initContainers"] {
        for (i, c) in arr(spec, key).iter().enumerate() {
            errs.extend(container_only_for_pod(c, &spec_path.child(key).index(i)));
        }
    }
    errs
}

/// `ValidatePodCreate`.
pub(crate) fn validate_pod_create(pod: &Value) -> ErrorList {
    let mut errs = validate_pod_metadata_and_spec(pod);
    let spec = child(pod, "spec");
    let path = Path::new("spec");
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    if !str_of(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodEphemeralContainersUpdate`: a write of the
/// `ephemeralcontainers` subresource may add ephemeral containers, never
/// change or remove one, and not to a static pod's mirror.
pub fn validate_pod_ephemeral_containers_update(new: &Value, old: &Value) -> ErrorList {
    let old_annotations = child(child(old, "metadata"), "annotations");
    if get(old_annotations, "kubernetes.io/config.mirror").is_some() {
        return ErrorList(vec![FieldError::forbidden(
            &Path::new(""),
            "static pods do not support ephemeral containers",
        )]);
    }
    let mut errs = validate_pod_metadata_and_spec(new);
    let path = Path::new("spec").child("ephemeralContainers");
    let new_list = arr(child(new, "spec"), "ephemeralContainers");
    for o in arr(child(old, "spec"), "ephemeralContainers") {
        let name = str_of(o, "name");
        match new_list.iter().find(|n| str_of(n, "name") == name) {
            None => errs.push(FieldError::forbidden(
                &path,
                format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(n) if !json::semantic_eq(Some(n), Some(o)) => errs.push(FieldError::forbidden(
                &path,
                format!("existing ephemeral containers {name:?} may not be changed\n"),
            )),
            Some(_) => {}
        }
    }
    errs
}

/// `ValidatePodUpdate`.
pub(crate) fn validate_pod_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_pod_metadata_and_spec(new);
    let new_spec = child(new, "spec");
    let old_spec = child(old, "spec");
    let spec_path = Path::new("spec");

    for key in ["containers", "initContainers"] {
        let (n, o) = (arr(new_spec, key), arr(old_spec, key));
        let p = spec_path.child(key);
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                &p,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = str_of(c, "image");
            if image.is_empty() {
                errs.push(FieldError::required(&p.index(i).child("image"), ""));
            }
            if image.trim().len() != image.len() {
                errs.push(FieldError::invalid(
                    &p.index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }

    let ads_path = spec_path.child("activeDeadlineSeconds");
    match (
        opt_int(new_spec, "activeDeadlineSeconds"),
        opt_int(old_spec, "activeDeadlineSeconds"),
    ) {
        (Some(n), old_ads) => {
            if n < 0 || n > i64::from(i32::MAX) {
                errs.push(FieldError::invalid(
                    &ads_path,
                    n,
                    inclusive_range_error(0, i64::from(i32::MAX)),
                ));
                return errs;
            }
            if old_ads.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(
                    &ads_path,
                    n,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &ads_path,
            BadValue::Null,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }

    // Tolerations: only additions (tolerationSeconds may change).
    let new_tols = arr(new_spec, "tolerations");
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    let mut tol_ok = true;
    for o in arr(old_spec, "tolerations") {
        let so = strip(o);
        if !new_tols
            .iter()
            .any(|n| json::semantic_eq(Some(&strip(n)), Some(&so)))
        {
            errs.push(FieldError::forbidden(
                &spec_path.child("tolerations"),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            tol_ok = false;
            break;
        }
    }
    if tol_ok {
        errs.extend(validate_tolerations(
            new_tols,
            &spec_path.child("tolerations"),
        ));
    }

    // Scheduling gates: only deletions.
    let old_gates: HashSet<&str> = arr(old_spec, "schedulingGates")
        .iter()
        .map(|g| str_of(g, "name"))
        .collect();
    let mut added: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in arr(new_spec, "schedulingGates").iter().enumerate() {
        added.insert(str_of(g, "name"), i);
    }
    for (gate, i) in added {
        if !old_gates.contains(gate) {
            errs.push(FieldError::forbidden(
                &spec_path.child("schedulingGates").index(i).child("name"),
                format!("only deletion is allowed, but found new scheduling gate '{gate}'"),
            ));
        }
    }

    if json::semantic_eq(Some(new_spec), Some(old_spec)) {
        return errs;
    }
    let mut munged = new_spec.clone();
    if let Some(m) = munged.as_object_mut() {
        for key in ["containers", "initContainers"] {
            if let Some(Value::Array(list)) = m.get_mut(key) {
                for (i, c) in list.iter_mut().enumerate() {
                    if let (Some(cm), Some(old_c)) = (c.as_object_mut(), arr(old_spec, key).get(i))
                    {
                        match get(old_c, "image") {
                            Some(img) => cm.insert("image".into(), img.clone()),
                            None => cm.remove("image"),
                        };
                    }
                }
            }
        }
        for key in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match get(old_spec, key) {
                Some(v) => m.insert(key.into(), v.clone()),
                None => m.remove(key),
            };
        }
        if opt_int(old_spec, "terminationGracePeriodSeconds").is_some_and(|g| g < 0)
            && opt_int(new_spec, "terminationGracePeriodSeconds") == Some(1)
        {
            m.insert(
                "terminationGracePeriodSeconds".into(),
                child(old_spec, "terminationGracePeriodSeconds").clone(),
            );
        }
        if !arr(old_spec, "schedulingGates").is_empty() {
            // Gated pods may add node selectors and node affinity; those
            // mutations are not checked further here.
            {
                let key = "nodeSelector";
                match get(old_spec, key) {
                    Some(v) => m.insert(key.into(), v.clone()),
                    None => m.remove(key),
                };
            }
            let old_na = obj(old_spec, "affinity")
                .and_then(|a| get(a, "nodeAffinity"))
                .cloned();
            if let Some(aff) = m.get_mut("affinity").and_then(Value::as_object_mut) {
                match old_na {
                    Some(na) => aff.insert("nodeAffinity".into(), na),
                    None => aff.remove("nodeAffinity"),
                };
            } else if let Some(na) = old_na {
                m.insert("affinity".into(), serde_json::json!({ "nodeAffinity": na }));
            }
        }
    }
    if !json::semantic_eq(Some(&munged), Some(old_spec)) {
        errs.push(FieldError::forbidden(
            &spec_path,
            format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{}",
                spec_diff(old_spec, &munged)
            ),
        ));
    }
    errs
}

/// A readable diff of two pod specs, in the spirit of upstream's `cmp.Diff`
/// of the Go structs (which cannot be reproduced byte for byte from JSON).
fn spec_diff(old: &Value, new: &Value) -> String {
    let mut out = String::from("  core.PodSpec{\n");
    let keys: BTreeSet<&String> = old
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .chain(new.as_object().into_iter().flat_map(|m| m.keys()))
        .collect();
    for k in keys {
        let (o, n) = (old.get(k), new.get(k));
        if json::semantic_eq(o, n) {
            continue;
        }
        let go_name = go_field_name(k);
        if let Some(o) = o {
            out.push_str(&format!("- \t{go_name}: {o},\n"));
        }
        if let Some(n) = n {
            out.push_str(&format!("+ \t{go_name}: {n},\n"));
        }
    }
    out.push_str("  }\n");
    out
}

fn go_field_name(json_name: &str) -> String {
    let mut c = json_name.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `ValidatePodTemplate` (the PodTemplate kind).
pub(crate) fn validate_pod_template(obj_: &Value) -> ErrorList {
    validate_pod_template_spec(child(obj_, "template"), &Path::new("template"))
}

#[cfg(test)]
mod tests;
