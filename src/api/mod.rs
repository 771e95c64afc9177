//! The resources people write and read: types only, no I/O. Every doc
//! comment on a field is `kubectl explain` text; the condition vocabulary
//! (reasons, kstatus conditions) lives here too.

pub mod conditions;
pub mod governance;
pub mod iam_account;
pub mod login_profile;
pub mod reason;
pub mod root_login_profile;
pub mod sample;
pub mod schema;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The CRDs as installed: deleting a CRD deletes every resource of it, and
/// with LoginProfiles their console passwords, so neither Helm nor Argo CD
/// may remove them on an uninstall, an Application deletion or a prune.
pub fn installed_crds() -> Vec<CustomResourceDefinition> {
    [
        login_profile::LoginProfile::crd(),
        iam_account::IAMAccount::crd(),
        root_login_profile::RootLoginProfile::crd(),
    ]
    .into_iter()
    .map(|mut crd| {
        let annotations = crd
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        // Helm keeps a CRD it would otherwise delete (one moved out of crds/).
        annotations.insert("helm.sh/resource-policy".into(), "keep".into());
        // Argo CD never deletes it: not when the Application goes, not on a prune.
        annotations.insert(
            "argocd.argoproj.io/sync-options".into(),
            "Delete=false".into(),
        );
        crd
    })
    .collect()
}
