//! The top-level types `k8s-openapi` (feature `v1_32`) knows, by group,
//! version and kind: the roots from which the served definitions are
//! generated. A served group/version contributes every kind listed here for
//! it, so subresource bodies (`Scale`, `Eviction`, `Binding`, ...) come along
//! with the resources that use them.

use k8s_openapi::schemars::{JsonSchema, Schema, SchemaGenerator};
use k8s_openapi::{ListableResource, Resource};

/// One top-level type: its identity and how to add its schema (and,
/// transitively, every schema it references) to a generator.
pub(crate) struct TypeEntry {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// `PodList` for kinds that have a list; `None` for kinds that do not
    /// (reviews, `Scale`, `Eviction`, ...).
    pub list_kind: Option<&'static str>,
    pub schema_name: fn() -> std::borrow::Cow<'static, str>,
    pub add: fn(&mut SchemaGenerator) -> Schema,
}

fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

const fn single<T: Resource + JsonSchema>() -> TypeEntry {
    TypeEntry {
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        list_kind: None,
        schema_name: T::schema_name,
        add: add::<T>,
    }
}

const fn listable<T: ListableResource + JsonSchema>() -> TypeEntry {
    TypeEntry {
        list_kind: Some(T::LIST_KIND),
        ..single::<T>()
    }
}

/// Every `k8s-openapi` type that implements `Resource`.
pub(crate) static TYPES: &[TypeEntry] = {
    use k8s_openapi::api;
    &[
        listable::<api::admissionregistration::v1::MutatingWebhookConfiguration>(),
        listable::<api::admissionregistration::v1::ValidatingAdmissionPolicy>(),
        listable::<api::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(),
        listable::<api::admissionregistration::v1::ValidatingWebhookConfiguration>(),
        listable::<api::admissionregistration::v1alpha1::MutatingAdmissionPolicy>(),
        listable::<api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding>(),
        listable::<api::admissionregistration::v1beta1::ValidatingAdmissionPolicy>(),
        listable::<api::admissionregistration::v1beta1::ValidatingAdmissionPolicyBinding>(),
        listable::<api::apiserverinternal::v1alpha1::StorageVersion>(),
        listable::<api::apps::v1::ControllerRevision>(),
        listable::<api::apps::v1::DaemonSet>(),
        listable::<api::apps::v1::Deployment>(),
        listable::<api::apps::v1::ReplicaSet>(),
        listable::<api::apps::v1::StatefulSet>(),
        single::<api::authentication::v1::SelfSubjectReview>(),
        single::<api::authentication::v1::TokenRequest>(),
        single::<api::authentication::v1::TokenReview>(),
        single::<api::authentication::v1beta1::SelfSubjectReview>(),
        single::<api::authorization::v1::LocalSubjectAccessReview>(),
        single::<api::authorization::v1::SelfSubjectAccessReview>(),
        single::<api::authorization::v1::SelfSubjectRulesReview>(),
        single::<api::authorization::v1::SubjectAccessReview>(),
        listable::<api::autoscaling::v1::HorizontalPodAutoscaler>(),
        single::<api::autoscaling::v1::Scale>(),
        listable::<api::autoscaling::v2::HorizontalPodAutoscaler>(),
        listable::<api::batch::v1::CronJob>(),
        listable::<api::batch::v1::Job>(),
        listable::<api::certificates::v1::CertificateSigningRequest>(),
        listable::<api::certificates::v1alpha1::ClusterTrustBundle>(),
        listable::<api::coordination::v1::Lease>(),
        listable::<api::coordination::v1alpha2::LeaseCandidate>(),
        single::<api::core::v1::Binding>(),
        listable::<api::core::v1::ComponentStatus>(),
        listable::<api::core::v1::ConfigMap>(),
        listable::<api::core::v1::Endpoints>(),
        listable::<api::core::v1::Event>(),
        listable::<api::core::v1::LimitRange>(),
        listable::<api::core::v1::Namespace>(),
        listable::<api::core::v1::Node>(),
        listable::<api::core::v1::PersistentVolume>(),
        listable::<api::core::v1::PersistentVolumeClaim>(),
        listable::<api::core::v1::Pod>(),
        listable::<api::core::v1::PodTemplate>(),
        listable::<api::core::v1::ReplicationController>(),
        listable::<api::core::v1::ResourceQuota>(),
        listable::<api::core::v1::Secret>(),
        listable::<api::core::v1::Service>(),
        listable::<api::core::v1::ServiceAccount>(),
        listable::<api::discovery::v1::EndpointSlice>(),
        listable::<api::events::v1::Event>(),
        listable::<api::flowcontrol::v1::FlowSchema>(),
        listable::<api::flowcontrol::v1::PriorityLevelConfiguration>(),
        listable::<api::networking::v1::Ingress>(),
        listable::<api::networking::v1::IngressClass>(),
        listable::<api::networking::v1::NetworkPolicy>(),
        listable::<api::networking::v1beta1::IPAddress>(),
        listable::<api::networking::v1beta1::ServiceCIDR>(),
        listable::<api::node::v1::RuntimeClass>(),
        single::<api::policy::v1::Eviction>(),
        listable::<api::policy::v1::PodDisruptionBudget>(),
        listable::<api::rbac::v1::ClusterRole>(),
        listable::<api::rbac::v1::ClusterRoleBinding>(),
        listable::<api::rbac::v1::Role>(),
        listable::<api::rbac::v1::RoleBinding>(),
        listable::<api::resource::v1alpha3::DeviceClass>(),
        listable::<api::resource::v1alpha3::ResourceClaim>(),
        listable::<api::resource::v1alpha3::ResourceClaimTemplate>(),
        listable::<api::resource::v1alpha3::ResourceSlice>(),
        listable::<api::resource::v1beta1::DeviceClass>(),
        listable::<api::resource::v1beta1::ResourceClaim>(),
        listable::<api::resource::v1beta1::ResourceClaimTemplate>(),
        listable::<api::resource::v1beta1::ResourceSlice>(),
        listable::<api::scheduling::v1::PriorityClass>(),
        listable::<api::storage::v1::CSIDriver>(),
        listable::<api::storage::v1::CSINode>(),
        listable::<api::storage::v1::CSIStorageCapacity>(),
        listable::<api::storage::v1::StorageClass>(),
        listable::<api::storage::v1::VolumeAttachment>(),
        listable::<api::storage::v1alpha1::VolumeAttributesClass>(),
        listable::<api::storage::v1beta1::VolumeAttributesClass>(),
        listable::<api::storagemigration::v1alpha1::StorageVersionMigration>(),
        listable::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(),
        single::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroup>(),
        single::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList>(),
        single::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList>(),
        single::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIVersions>(),
        single::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>(),
        listable::<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService>(),
    ]
};

/// The entries of one group/version.
pub(crate) fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static TypeEntry> + 'a {
    TYPES
        .iter()
        .filter(move |t| t.group == group && t.version == version)
}
