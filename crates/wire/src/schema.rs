//! The descriptor pool and what the JSON mapping needs from it: which message
//! an `apiVersion`/`kind` is, each field's JSON name, which fields are Go
//! values (`nullable = false`), which are inlined, and which messages have a
//! custom JSON form.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use prost_reflect::{DescriptorPool, ExtensionDescriptor, MessageDescriptor, Value};

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kubernetes.binpb"));

const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// Kinds of meta/v1 that any group version may carry (upstream registers them
/// in every group: `Status`, the options, `WatchEvent`, discovery lists).
const META_KINDS: &[&str] = &[
    "Status",
    "DeleteOptions",
    "ListOptions",
    "GetOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "WatchEvent",
    "APIVersions",
    "APIGroupList",
    "APIGroup",
    "APIResourceList",
    "List",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
];

/// Messages whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// metav1.Time: RFC 3339 string with seconds, `null` when zero.
    Time,
    /// metav1.MicroTime: RFC 3339 string with 6 fractional digits.
    MicroTime,
    /// metav1.Duration: Go duration string ("1h0m0s").
    Duration,
    /// resource.Quantity: its string.
    Quantity,
    /// intstr.IntOrString: a number or a string.
    IntOrString,
    /// runtime.RawExtension: an embedded object (JSON, or an enveloped
    /// protobuf object inside protobuf lists and watch events).
    RawExtension,
    /// FieldsV1 and apiextensions JSON: any JSON value, kept as its bytes.
    RawJson,
    /// `type X []string` wrappers (Verbs, ExtraValue): a string array.
    StringList,
    /// apiextensions JSONSchemaPropsOrArray: a schema or an array of schemas.
    SchemaOrArray,
    /// apiextensions JSONSchemaPropsOrBool: a schema or a bool.
    SchemaOrBool,
    /// apiextensions JSONSchemaPropsOrStringArray: a schema or a string array.
    SchemaOrStringArray,
}

/// What the JSON mapping needs to know about one field, from its Go struct
/// tag (`(krate.json)`) and `(gogoproto.nullable)`.
#[derive(Debug, Default, Clone)]
pub(crate) struct FieldInfo {
    /// The JSON member name (empty for inline fields).
    pub(crate) json: String,
    /// `json:",inline"`: the members of this (message) field are members of the parent.
    pub(crate) inline: bool,
    /// `json:"-"`: not in JSON (only inside custom-marshalled messages).
    pub(crate) skip: bool,
    /// The field has a Go json tag. Untagged fields (inside custom-marshalled
    /// messages) are printed only when set, and never as a zero.
    pub(crate) tagged: bool,
    /// `omitempty`: Go leaves out the zero value of a scalar, list or map.
    pub(crate) omitempty: bool,
    /// `nullable = false`: Go holds the field by value, not through a pointer,
    /// so it always has a value (its zero when unset).
    pub(crate) value: bool,
}

/// The JSON mapping of one message: its fields' infos, in descriptor order.
pub(crate) struct MessageInfo {
    pub(crate) fields: Vec<FieldInfo>,
    /// JSON name -> position in `fields`, for the non-inline fields.
    by_json: HashMap<String, usize>,
}

impl MessageInfo {
    /// The position of the (non-inline) field with this JSON name.
    pub(crate) fn position(&self, json: &str) -> Option<usize> {
        self.by_json.get(json).copied()
    }
}

/// The compiled schemas, decoded once per process.
pub struct Schema {
    pool: DescriptorPool,
    nullable: ExtensionDescriptor,
    json: ExtensionDescriptor,
    /// Per message (by full name), filled on first use of the message.
    messages: RwLock<HashMap<String, Arc<MessageInfo>>>,
}

impl Schema {
    /// The process-wide schema set, decoded on first use.
    pub fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(Schema::load)
    }

    fn load() -> Schema {
        // The set is compiled from the vendored protos by build.rs; failing to
        // decode it is a build defect, not an input error.
        let pool = DescriptorPool::decode(DESCRIPTORS).expect("embedded descriptor set is valid");
        let extension = |name: &str| {
            pool.get_extension_by_name(name)
                .unwrap_or_else(|| panic!("{name} is declared in proto/"))
        };
        let (nullable, json) = (extension("gogoproto.nullable"), extension("krate.json"));
        Schema {
            pool,
            nullable,
            json,
            messages: RwLock::default(),
        }
    }

    /// The JSON mapping of a message's fields.
    pub(crate) fn info(&self, message: &MessageDescriptor) -> Arc<MessageInfo> {
        let name = message.full_name();
        if let Some(info) = self
            .messages
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return info.clone();
        }
        let info = Arc::new(self.index(message));
        self.messages
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), info.clone());
        info
    }

    fn index(&self, message: &MessageDescriptor) -> MessageInfo {
        let mut fields = Vec::with_capacity(message.fields().len());
        let mut by_json = HashMap::new();
        for field in message.fields() {
            let options = field.options();
            let value = options.has_extension(&self.nullable)
                && options.get_extension(&self.nullable).as_bool() == Some(false);
            let tag = options
                .has_extension(&self.json)
                .then(|| {
                    options
                        .get_extension(&self.json)
                        .as_str()
                        .map(str::to_owned)
                })
                .flatten();
            let info = match tag {
                Some(tag) => {
                    let mut parts = tag.split(',');
                    let name = parts.next().unwrap_or_default();
                    let flags: Vec<&str> = parts.collect();
                    FieldInfo {
                        json: name.to_owned(),
                        inline: flags.contains(&"inline"),
                        skip: name == "-" && flags.is_empty(),
                        tagged: true,
                        omitempty: flags.contains(&"omitempty"),
                        value,
                    }
                }
                None => FieldInfo {
                    json: field.name().to_owned(),
                    value,
                    ..FieldInfo::default()
                },
            };
            if !info.inline && !info.skip {
                by_json.insert(info.json.clone(), fields.len());
            }
            fields.push(info);
        }
        MessageInfo { fields, by_json }
    }

    /// The message of `apiVersion`/`kind`, if it has a schema.
    pub fn message_for(&self, api_version: &str, kind: &str) -> Option<MessageDescriptor> {
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        if version.is_empty() || !version.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        if let Some(package) = package_of(group) {
            if let Some(m) = self
                .pool
                .get_message_by_name(&format!("{package}.{version}.{kind}"))
            {
                return Some(m);
            }
        }
        if META_KINDS.contains(&kind) {
            return self.pool.get_message_by_name(&format!("{META_V1}.{kind}"));
        }
        None
    }

    /// A message by its full protobuf name.
    pub(crate) fn message(&self, full_name: &str) -> MessageDescriptor {
        self.pool
            .get_message_by_name(full_name)
            .unwrap_or_else(|| panic!("{full_name} is in the embedded schemas"))
    }

    /// How many messages the schemas define.
    pub fn message_count(&self) -> usize {
        self.pool.all_messages().len()
    }
}

/// The protobuf package prefix of a built-in API group (the version is appended).
fn package_of(group: &str) -> Option<Cow<'static, str>> {
    let api = |name: &str| Some(Cow::Owned(format!("k8s.io.api.{name}")));
    match group {
        "" => api("core"),
        "apps" | "batch" | "autoscaling" | "policy" | "extensions" => api(group),
        "rbac.authorization.k8s.io" => api("rbac"),
        "flowcontrol.apiserver.k8s.io" => api("flowcontrol"),
        "internal.apiserver.k8s.io" => api("apiserverinternal"),
        "admission.k8s.io"
        | "admissionregistration.k8s.io"
        | "apidiscovery.k8s.io"
        | "authentication.k8s.io"
        | "authorization.k8s.io"
        | "certificates.k8s.io"
        | "coordination.k8s.io"
        | "discovery.k8s.io"
        | "events.k8s.io"
        | "imagepolicy.k8s.io"
        | "networking.k8s.io"
        | "node.k8s.io"
        | "resource.k8s.io"
        | "scheduling.k8s.io"
        | "storage.k8s.io"
        | "storagemigration.k8s.io" => api(group.strip_suffix(".k8s.io").unwrap_or(group)),
        "apiextensions.k8s.io" => Some(Cow::Borrowed(
            "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions",
        )),
        "apiregistration.k8s.io" => Some(Cow::Borrowed(
            "k8s.io.kube_aggregator.pkg.apis.apiregistration",
        )),
        "meta.k8s.io" => Some(Cow::Borrowed("k8s.io.apimachinery.pkg.apis.meta")),
        _ => None,
    }
}

/// The custom JSON form of a message, if it has one.
pub(crate) fn special(message: &MessageDescriptor) -> Option<Special> {
    let full = message.full_name();
    let name = message.name();
    Some(match full {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => Special::Time,
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => Special::MicroTime,
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration" => Special::Duration,
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => Special::RawJson,
        "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs" => Special::StringList,
        "k8s.io.apimachinery.pkg.api.resource.Quantity"
        | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => Special::Quantity,
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => Special::IntOrString,
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => Special::RawExtension,
        _ if full.starts_with("k8s.io.api.") && name == "ExtraValue" => Special::StringList,
        _ if full.starts_with("k8s.io.apiextensions_apiserver.") => match name {
            "JSON" => Special::RawJson,
            "JSONSchemaPropsOrArray" => Special::SchemaOrArray,
            "JSONSchemaPropsOrBool" => Special::SchemaOrBool,
            "JSONSchemaPropsOrStringArray" => Special::SchemaOrStringArray,
            _ => return None,
        },
        _ => return None,
    })
}

/// Whether a decoded scalar is its type's zero value.
pub(crate) fn is_zero(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::I32(n) => *n == 0,
        Value::I64(n) => *n == 0,
        Value::U32(n) => *n == 0,
        Value::U64(n) => *n == 0,
        Value::F32(n) => *n == 0.0,
        Value::F64(n) => *n == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        Value::EnumNumber(n) => *n == 0,
        Value::Message(_) | Value::List(_) | Value::Map(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_kinds_resolve_to_their_messages() {
        let s = Schema::get();
        let name = |v: &str, k: &str| s.message_for(v, k).map(|m| m.full_name().to_owned());
        assert_eq!(
            name("v1", "ConfigMap").as_deref(),
            Some("k8s.io.api.core.v1.ConfigMap")
        );
        assert_eq!(
            name("apps/v1", "DeploymentList").as_deref(),
            Some("k8s.io.api.apps.v1.DeploymentList")
        );
        assert_eq!(
            name("rbac.authorization.k8s.io/v1", "Role").as_deref(),
            Some("k8s.io.api.rbac.v1.Role")
        );
        assert_eq!(
            name("v1", "Status").as_deref(),
            Some("k8s.io.apimachinery.pkg.apis.meta.v1.Status")
        );
        assert_eq!(
            name("apps/v1", "DeleteOptions").as_deref(),
            Some("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(
            name("apiextensions.k8s.io/v1", "CustomResourceDefinition").as_deref(),
            Some(
                "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
            )
        );
        assert_eq!(
            name("apiregistration.k8s.io/v1", "APIService").as_deref(),
            Some("k8s.io.kube_aggregator.pkg.apis.apiregistration.v1.APIService")
        );
        assert_eq!(
            name("flowcontrol.apiserver.k8s.io/v1", "FlowSchema").as_deref(),
            Some("k8s.io.api.flowcontrol.v1.FlowSchema")
        );
        assert_eq!(name("example.com/v1", "Widget"), None);
        assert_eq!(name("gateway.networking.k8s.io/v1", "Gateway"), None);
        assert_eq!(name("v1", "Pod.Spec"), None);
        assert_eq!(name("", "Pod"), None);
    }

    #[test]
    fn value_fields_come_from_gogo_nullable() {
        let s = Schema::get();
        let field = |m: &str, f: &str| {
            let desc = s.message(m);
            let at = desc.fields().position(|x| x.name() == f).unwrap();
            s.info(&desc).fields[at].clone()
        };
        assert!(field("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta", "name").value);
        assert!(
            !field(
                "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "deletionGracePeriodSeconds"
            )
            .value
        );
        assert!(!field("k8s.io.api.apps.v1.DeploymentSpec", "replicas").value);
        assert!(field("k8s.io.api.apps.v1.DeploymentSpec", "paused").value);
    }

    #[test]
    fn json_names_and_flags_follow_the_go_tags() {
        let s = Schema::get();
        let field = |m: &str, f: &str| {
            let desc = s.message(m);
            let at = desc.fields().position(|x| x.name() == f).unwrap();
            s.info(&desc).fields[at].clone()
        };
        assert_eq!(
            field(
                "k8s.io.api.networking.v1.IngressClassParametersReference",
                "aPIGroup"
            )
            .json,
            "apiGroup"
        );
        assert_eq!(
            field("k8s.io.api.authentication.v1.BoundObjectReference", "uID").json,
            "uid"
        );
        assert_eq!(
            field(
                "k8s.io.api.admissionregistration.v1.ValidatingWebhookConfiguration",
                "Webhooks"
            )
            .json,
            "webhooks"
        );
        let props = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";
        assert_eq!(
            field(props, "xKubernetesPreserveUnknownFields").json,
            "x-kubernetes-preserve-unknown-fields"
        );
        assert_eq!(field(props, "ref").json, "$ref");
        assert!(field("k8s.io.api.core.v1.Probe", "handler").inline);
        assert!(
            field(
                "k8s.io.api.core.v1.SecretKeySelector",
                "localObjectReference"
            )
            .inline
        );
        assert!(field("k8s.io.api.networking.v1.IngressRule", "ingressRuleValue").inline);
        assert!(!field("k8s.io.api.node.v1.RuntimeClass", "handler").inline);
        assert!(!field("k8s.io.api.core.v1.Container", "securityContext").inline);
        let current_healthy = field(
            "k8s.io.api.policy.v1.PodDisruptionBudgetStatus",
            "currentHealthy",
        );
        assert!(current_healthy.tagged && current_healthy.value && !current_healthy.omitempty);
        assert!(
            field(
                "k8s.io.api.policy.v1.PodDisruptionBudgetStatus",
                "observedGeneration"
            )
            .omitempty
        );
        assert!(field("k8s.io.apimachinery.pkg.runtime.RawExtension", "raw").skip);
    }
}
