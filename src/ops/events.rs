//! Kubernetes Events about LoginProfiles: one `events.k8s.io/v1` Event per
//! transition, created and then forgotten.
//!
//! kube-runtime's `Recorder` keeps every Event it sent for six minutes, to
//! turn repeats into a series, and scans that cache on every publish. This
//! operator reports transitions only, which do not repeat within minutes; at
//! 5000 LoginProfiles that cache held about a fifth of the process's memory
//! (docs/performance.md), so Events are written directly.

use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::PostParams,
    runtime::events::{EventType, Reporter},
};

/// Where Events about cluster-scoped objects (IAMAccounts,
/// RootLoginProfiles) go: the API server accepts only `default` or
/// `kube-system` for them, and `default` is where tenants' `view` often
/// reaches; what they say (member account ids, CreateDates of root's
/// profile, STS refusals) is for cluster admins.
pub const CLUSTER_SCOPED_EVENTS: &str = "kube-system";

/// Writes Events in the namespace of the object they are about (for a
/// cluster-scoped object, [`CLUSTER_SCOPED_EVENTS`]).
pub struct EventPublisher {
    client: Client,
    reporter: Reporter,
}

/// What an Event says.
pub struct Note<'a> {
    pub type_: EventType,
    pub reason: &'a str,
    pub action: &'a str,
    pub note: String,
}

impl EventPublisher {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self { client, reporter }
    }

    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        note: Note<'_>,
    ) -> Result<(), kube::Error> {
        let event = build(&self.reporter, regarding, note, Timestamp::now());
        let namespace = event.metadata.namespace.as_deref().unwrap_or_default();
        Api::<Event>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &event)
            .await?;
        Ok(())
    }
}

/// The Event object: the fields `events.k8s.io/v1` requires, the note cut
/// to the API server's 1000 characters.
fn build(
    reporter: &Reporter,
    regarding: &ObjectReference,
    note: Note<'_>,
    now: Timestamp,
) -> Event {
    let controller = &reporter.controller;
    Event {
        metadata: ObjectMeta {
            // Unique per object and moment, as kube-runtime names them.
            name: Some(format!(
                "{}.{:x}",
                regarding.name.as_deref().unwrap_or(controller),
                now.as_nanosecond()
            )),
            namespace: Some(
                regarding
                    .namespace
                    .clone()
                    .unwrap_or_else(|| CLUSTER_SCOPED_EVENTS.into()),
            ),
            ..Default::default()
        },
        action: Some(note.action.into()),
        reason: Some(note.reason.into()),
        note: Some(note.note.chars().take(1000).collect()),
        type_: Some(
            match note.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        reporting_controller: Some(controller.clone()),
        reporting_instance: Some(
            reporter
                .instance
                .clone()
                .unwrap_or_else(|| controller.clone()),
        ),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_its_object_reporter_and_kind() {
        let reporter = Reporter {
            controller: "loginprofile-operator".into(),
            instance: None,
        };
        let regarding = ObjectReference {
            name: Some("bob".into()),
            namespace: Some("team-a".into()),
            kind: Some("LoginProfile".into()),
            ..Default::default()
        };
        let note = Note {
            type_: EventType::Warning,
            reason: "Throttled",
            action: "Reconcile",
            note: "x".repeat(1500),
        };
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let event = build(&reporter, &regarding, note, now);
        assert_eq!(event.metadata.namespace.as_deref(), Some("team-a"));
        assert!(event.metadata.name.unwrap().starts_with("bob."));
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.reason.as_deref(), Some("Throttled"));
        assert_eq!(event.note.unwrap().len(), 1000, "the API server's limit");
        assert_eq!(
            event.reporting_instance.as_deref(),
            Some("loginprofile-operator")
        );
        assert_eq!(event.regarding, Some(regarding));

        // A cluster-scoped object's Event: in kube-system, not `default`.
        let account = ObjectReference {
            name: Some("organization".into()),
            kind: Some("IAMAccount".into()),
            ..Default::default()
        };
        let note = Note {
            type_: EventType::Normal,
            reason: "Verified",
            action: "Reconcile",
            note: "ok".into(),
        };
        let event = build(&reporter, &account, note, now);
        assert_eq!(event.metadata.namespace.as_deref(), Some("kube-system"));
    }
}
