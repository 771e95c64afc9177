//! The ownership record: which cluster's LoginProfile manages an IAM user's
//! login profile, kept as tags on the IAM user (login profiles carry none)
//! so that it outlives the cluster. A rebuilt or restored cluster with the
//! same cluster id finds its own profiles there; a second cluster finds
//! another owner and leaves them alone. Pure: the tags, and what they say
//! about one LoginProfile.

use crate::api::login_profile::RecordedOwner;

/// Every tag of the record starts with this; the IAM policy lets the
/// operator tag users under this prefix only.
pub const TAG_PREFIX: &str = "iam.loginprofile.dev/";
/// The cluster id (`--cluster-id`) of the operator that owns the profile.
pub const OWNER_TAG: &str = "iam.loginprofile.dev/owner";
/// The owning LoginProfile's namespace and name (two tags: a tag value
/// holds at most 256 characters, a name alone up to 253).
pub const NAMESPACE_TAG: &str = "iam.loginprofile.dev/namespace";
pub const NAME_TAG: &str = "iam.loginprofile.dev/name";
/// The keyed fingerprint of the password last sent (never a plain hash).
pub const PASSWORD_TAG: &str = "iam.loginprofile.dev/password";
/// When that password was sent (RFC 3339).
pub const PASSWORD_TIME_TAG: &str = "iam.loginprofile.dev/password-time";
/// IAM's CreateDate of the profile the password went to: a profile deleted
/// and created again by someone else since is not the one recorded.
pub const PROFILE_CREATED_TAG: &str = "iam.loginprofile.dev/profile-created";

/// The longest cluster id: it must fit a tag value and read well in status.
pub const CLUSTER_ID_MAX: usize = 63;

/// What the record on an IAM user says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRecord {
    pub cluster_id: String,
    pub namespace: String,
    pub name: String,
    pub password_fingerprint: String,
    pub password_time: String,
    pub profile_created: String,
}

impl OwnerRecord {
    /// The tags that write this record (TagUser).
    pub fn to_tags(&self) -> Vec<(String, String)> {
        [
            (OWNER_TAG, &self.cluster_id),
            (NAMESPACE_TAG, &self.namespace),
            (NAME_TAG, &self.name),
            (PASSWORD_TAG, &self.password_fingerprint),
            (PASSWORD_TIME_TAG, &self.password_time),
            (PROFILE_CREATED_TAG, &self.profile_created),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.clone()))
        .collect()
    }

    /// The record in a user's tags; `None` without an owner tag. A record
    /// missing any other tag still names its owner (an admin removed a
    /// tag, or another tool wrote only some): the others read as empty and
    /// match nothing.
    pub fn from_tags(tags: &[(String, String)]) -> Option<Self> {
        let get = |key: &str| tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        Some(Self {
            cluster_id: get(OWNER_TAG)?,
            namespace: get(NAMESPACE_TAG).unwrap_or_default(),
            name: get(NAME_TAG).unwrap_or_default(),
            password_fingerprint: get(PASSWORD_TAG).unwrap_or_default(),
            password_time: get(PASSWORD_TIME_TAG).unwrap_or_default(),
            profile_created: get(PROFILE_CREATED_TAG).unwrap_or_default(),
        })
    }

    /// What status keeps of it.
    pub fn recorded(&self) -> RecordedOwner {
        RecordedOwner {
            cluster_id: self.cluster_id.clone(),
            password_fingerprint: self.password_fingerprint.clone(),
            profile_created: self.profile_created.clone(),
        }
    }
}

/// Whose profile IAM has, by the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The record was not read (it is read only for a profile that status
    /// and the marks do not show as this LoginProfile's own).
    NotLooked,
    /// No record, or one that does not speak of this profile: an earlier
    /// LoginProfile of this cluster (renamed, retained), or a profile
    /// created again since. `adoptionPolicy` decides.
    Unrecorded,
    /// The record names this cluster and this LoginProfile, for the very
    /// profile IAM has: a rebuilt or restored cluster's own. Or it names a
    /// cluster this one takes over from (the IAMAccount's
    /// `takeOwnershipFrom`), for the very profile IAM has.
    This(OwnerRecord),
    /// The record names another cluster id (or this operator runs without
    /// one): never written to, never deleted.
    Elsewhere { cluster_id: String },
}

/// Who reads a record: the operator's cluster id, the LoginProfile, and
/// the cluster ids its IAMAccount takes ownership over from.
pub struct Reader<'a> {
    pub cluster_id: Option<&'a str>,
    pub namespace: &'a str,
    pub name: &'a str,
    pub take_over_from: &'a [String],
}

/// What the record says about the profile IAM has (created at
/// `profile_created`), read by `reader`. A handed-over record is taken
/// whichever LoginProfile of this cluster manages the user (one per user
/// inside a cluster), as another cluster's namespaces need not match.
pub fn judge(record: Option<OwnerRecord>, reader: &Reader<'_>, profile_created: &str) -> Owner {
    let Some(record) = record else {
        return Owner::Unrecorded;
    };
    let Reader {
        cluster_id,
        namespace,
        name,
        take_over_from,
    } = *reader;
    if cluster_id.is_some() && take_over_from.contains(&record.cluster_id) {
        // Handed over is the profile the record speaks of, not one made since.
        return if record.profile_created == profile_created {
            Owner::This(record)
        } else {
            Owner::Unrecorded
        };
    }
    if Some(record.cluster_id.as_str()) != cluster_id {
        return Owner::Elsewhere {
            cluster_id: record.cluster_id,
        };
    }
    if record.namespace == namespace
        && record.name == name
        && record.profile_created == profile_created
    {
        Owner::This(record)
    } else {
        Owner::Unrecorded
    }
}

/// Why `id` cannot be a cluster id, if it cannot: 1 to 63 letters, digits,
/// `.`, `_` and `-` (a tag value IAM accepts, and a name that reads well).
pub fn cluster_id_problem(id: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > CLUSTER_ID_MAX || !id.chars().all(allowed) {
        Some(format!(
            "a cluster id is 1 to {CLUSTER_ID_MAX} letters, digits, '.', '_' or '-'; got {id:?}"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cluster: &str) -> OwnerRecord {
        OwnerRecord {
            cluster_id: cluster.into(),
            namespace: "team-a".into(),
            name: "alice".into(),
            password_fingerprint: "hmac-sha256:0011aabb:ff".into(),
            password_time: "2026-12-05T10:00:00Z".into(),
            profile_created: "2026-12-01T09:00:00Z".into(),
        }
    }

    #[test]
    fn tags_round_trip_under_one_prefix() {
        let tags = record("blue").to_tags();
        assert!(tags.iter().all(|(key, _)| key.starts_with(TAG_PREFIX)));
        assert!(
            tags.iter()
                .all(|(key, value)| key.len() <= 128 && value.len() <= 256)
        );
        let mut with_others = vec![("team".to_string(), "x".to_string())];
        with_others.extend(tags);
        assert_eq!(OwnerRecord::from_tags(&with_others), Some(record("blue")));
        assert_eq!(OwnerRecord::from_tags(&[("team".into(), "x".into())]), None);
    }

    fn judge(
        record: Option<OwnerRecord>,
        cluster_id: Option<&str>,
        namespace: &str,
        name: &str,
        created: &str,
    ) -> Owner {
        let reader = Reader {
            cluster_id,
            namespace,
            name,
            take_over_from: &[],
        };
        super::judge(record, &reader, created)
    }

    #[test]
    fn a_partial_record_still_names_its_owner() {
        let partial = OwnerRecord::from_tags(&[(OWNER_TAG.into(), "green".into())]).unwrap();
        assert_eq!(
            judge(Some(partial), Some("blue"), "team-a", "alice", "t"),
            Owner::Elsewhere {
                cluster_id: "green".into()
            }
        );
    }

    #[test]
    fn judge_reads_owner_object_and_profile() {
        let created = "2026-12-01T09:00:00Z";
        let this = |r: Option<OwnerRecord>, id: Option<&str>, name: &str, created: &str| {
            judge(r, id, "team-a", name, created)
        };
        assert_eq!(
            this(None, Some("blue"), "alice", created),
            Owner::Unrecorded
        );
        assert_eq!(
            this(Some(record("blue")), Some("blue"), "alice", created),
            Owner::This(record("blue"))
        );
        // Another cluster, or an operator without a cluster id.
        for id in [Some("green"), None] {
            assert_eq!(
                this(Some(record("blue")), id, "alice", created),
                Owner::Elsewhere {
                    cluster_id: "blue".into()
                }
            );
        }
        // This cluster, but another LoginProfile, or a profile made since.
        assert_eq!(
            this(Some(record("blue")), Some("blue"), "bob", created),
            Owner::Unrecorded
        );
        assert_eq!(
            this(
                Some(record("blue")),
                Some("blue"),
                "alice",
                "2026-12-02T00:00:00Z"
            ),
            Owner::Unrecorded
        );
    }

    #[test]
    fn a_handoff_takes_the_named_clusters_records_for_the_profile_they_name() {
        let created = "2026-12-01T09:00:00Z";
        let from = ["blue".to_string()];
        let reader = |cluster_id, name| Reader {
            cluster_id,
            namespace: "other-namespace",
            name,
            take_over_from: &from,
        };
        assert_eq!(
            super::judge(Some(record("blue")), &reader(Some("green"), "x"), created),
            Owner::This(record("blue")),
            "whichever LoginProfile manages the user here"
        );
        assert_eq!(
            super::judge(
                Some(record("blue")),
                &reader(Some("green"), "x"),
                "2026-12-02T00:00:00Z"
            ),
            Owner::Unrecorded,
            "a profile made since is not the one handed over"
        );
        assert_eq!(
            super::judge(Some(record("red")), &reader(Some("green"), "x"), created),
            Owner::Elsewhere {
                cluster_id: "red".into()
            }
        );
        assert_eq!(
            super::judge(Some(record("blue")), &reader(None, "x"), created),
            Owner::Elsewhere {
                cluster_id: "blue".into()
            },
            "without a cluster id nothing can be taken over"
        );
    }

    #[test]
    fn cluster_ids_are_short_tag_safe_names() {
        for good in ["blue", "prod-eu-1", "a.b_c", &"x".repeat(63)] {
            assert_eq!(cluster_id_problem(good), None, "{good}");
        }
        for bad in ["", "has space", "slash/no", &"x".repeat(64), "ünï"] {
            assert!(cluster_id_problem(bad).is_some(), "{bad}");
        }
    }
}
