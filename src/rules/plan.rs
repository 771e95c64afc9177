//! The decide step: a pure function from what was observed (the spec, the
//! password source, IAM's login profile, what status says was applied) to the
//! one thing to do next. No I/O, so every branch is unit-tested here.

use crate::api::login_profile::{
    AdoptionPolicy, DeletionPolicy, LoginProfileSpec, LoginProfileStatus, PasswordUpdatePolicy,
};
use crate::api::reason::Reason;
use crate::rules::marks::AttemptWindow;
use crate::rules::ownership::{Owner, OwnerRecord};
use chrono::{DateTime, Utc};

/// IAM's view of a login profile (GetLoginProfile / CreateLoginProfile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamProfile {
    /// CreateDate, RFC 3339.
    pub create_date: String,
    pub password_reset_required: bool,
}

/// Why the password cannot be read from its source. Terminal: only a change
/// of the LoginProfile or its Secret helps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProblem {
    pub reason: Reason,
    pub message: String,
}

/// How the source's password compares with the one status says was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Status records no password: this resource never confirmed one.
    Nothing,
    /// The source holds the password last applied.
    Same,
    /// The source holds another password.
    Different,
}

/// Everything the decide step looks at.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    pub spec: &'a LoginProfileSpec,
    pub status: Option<&'a LoginProfileStatus>,
    /// The source's password against status, or why there is none.
    pub source: Result<Applied, &'a SourceProblem>,
    /// The login profile in IAM; `None` when IAM has none.
    pub iam: Option<&'a IamProfile>,
    /// IAM's credential report shows a password change after the operator's
    /// last one (looked up only for `passwordUpdatePolicy: Enforce`).
    pub changed_out_of_band: bool,
    /// When IAM may have applied this resource's own create attempts whose
    /// answers never reached status (rules/marks.rs).
    pub attempts: Vec<AttemptWindow>,
    /// An earlier attempt whose answer never reached status was sending
    /// exactly the source's password (the `sending` annotation).
    pub pending_is_desired: bool,
    /// Whose profile IAM has by the ownership record on the user (read
    /// only when the plan depends on it: [`Plan::LookAtOwner`]).
    pub owner: &'a Owner,
    /// Read the record before every write to an existing profile, even one
    /// status shows as this resource's (the operator has a cluster id:
    /// ownership may have been handed to another cluster since).
    pub guard_writes: bool,
}

/// Whether IAM created `profile` within one of this resource's own create
/// attempts: then no one but this resource made it (a crash or a lost answer
/// kept status from saying so). A profile created before or after them never
/// counts as ours, whatever else the marks say.
pub fn created_in_charge(profile: &IamProfile, attempts: &[AttemptWindow]) -> bool {
    DateTime::parse_from_rfc3339(&profile.create_date).is_ok_and(|created| {
        let created = created.with_timezone(&Utc);
        attempts.iter().any(|window| window.contains(created))
    })
}

/// Whether IAM's `profile` is the one this resource made or adopted:
/// created within one of its own attempts, or the very profile status
/// recorded (same CreateDate). A profile deleted and created again by
/// someone else since is not, whatever status says of the password; nor is
/// any profile while status records none (after `DisableConsole` deleted
/// this resource's own).
pub fn is_ours(
    profile: &IamProfile,
    status: Option<&LoginProfileStatus>,
    attempts: &[AttemptWindow],
) -> bool {
    created_in_charge(profile, attempts)
        || status.is_some_and(|s| {
            s.password_fingerprint.is_some()
                && s.create_date.as_deref() == Some(profile.create_date.as_str())
        })
}

/// Why the password is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateWhy {
    /// The Secret's value changed.
    SecretChanged,
    /// Taking over a login profile this resource did not create.
    Adopt,
    /// `Enforce`: the password was changed outside the operator.
    Enforce,
}

/// The one thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The profile is not this resource's by status or marks: read the
    /// ownership record on the IAM user (ListUserTags), then decide again.
    LookAtOwner,
    /// The ownership record names this cluster and this resource for the
    /// profile IAM has (a rebuilt or restored cluster): take it back, with
    /// no IAM write; status takes the record's password fingerprint, so the
    /// source is sent only if it differs from what was recorded.
    Recognize(OwnerRecord),
    /// IAM already holds the source's password from this resource's own
    /// create, whose answer was lost: record it, with no IAM call.
    RecordCreated,
    /// CreateLoginProfile with the password and the reset flag.
    Create {
        reset_required: bool,
        recreate: bool,
    },
    /// UpdateLoginProfile with the password and the reset flag.
    UpdatePassword {
        reset_required: bool,
        why: UpdateWhy,
    },
    /// The Secret changed, but `CreateOnly` keeps the password IAM has.
    HoldBack,
    /// `adoptionPolicy: AdoptKeepingPassword`: take the profile over with
    /// no IAM write; the password it has stays until the source changes.
    KeepPassword,
    /// UpdateLoginProfile with only the reset flag: an admin changed
    /// `passwordResetRequired`; the password itself is unchanged.
    UpdateResetFlag { reset_required: bool },
    /// DeleteLoginProfile (the resource is being deleted).
    Delete,
    /// IAM already matches the spec.
    Noop,
    /// Nothing can be done until the spec, the Secret or IAM changes.
    Blocked { reason: Reason, message: String },
}

impl Plan {
    /// Whether acting on this plan writes to IAM (not counting a deletion).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Plan::Create { .. } | Plan::UpdatePassword { .. } | Plan::UpdateResetFlag { .. }
        )
    }

    /// Whether acting on this plan sends the password to IAM.
    pub fn sends_password(&self) -> bool {
        matches!(self, Plan::Create { .. } | Plan::UpdatePassword { .. })
    }
}

/// Decides what to do for a LoginProfile that is not being deleted.
pub fn decide(observed: &Observed<'_>) -> Plan {
    let plan = decide_for_this_cluster(observed);
    let writes_existing = matches!(
        plan,
        Plan::UpdatePassword { .. } | Plan::UpdateResetFlag { .. }
    );
    if writes_existing && observed.guard_writes {
        match observed.owner {
            Owner::NotLooked => return Plan::LookAtOwner,
            Owner::Elsewhere { cluster_id } => return owned_elsewhere(cluster_id),
            Owner::Unrecorded | Owner::This(_) => {}
        }
    }
    plan
}

/// Adoption keeping the password; with `deliverTo` as `Adopt`: the operator
/// can deliver only a password it generated.
fn keep_password(spec: &LoginProfileSpec) -> Plan {
    if spec.delivery().is_some() {
        Plan::UpdatePassword {
            reset_required: spec.reset_required(),
            why: UpdateWhy::Adopt,
        }
    } else {
        Plan::KeepPassword
    }
}

/// Refused: IAM's ownership record names another cluster.
fn owned_elsewhere(cluster_id: &str) -> Plan {
    Plan::Blocked {
        reason: Reason::OwnedElsewhere,
        message: format!(
            "IAM's ownership record on the user names cluster {cluster_id:?}: its login profile is that \
             cluster's, and is neither written to nor deleted from here, whatever adoptionPolicy says. \
             To move it here, hand ownership over (docs/disaster-recovery.md)"
        ),
    }
}

/// [`decide`], as far as status, the marks and (for a profile they do not
/// show as this resource's) the ownership record tell.
fn decide_for_this_cluster(observed: &Observed<'_>) -> Plan {
    let spec = observed.spec;
    let applied = match observed.source {
        Ok(applied) => applied,
        Err(problem) => {
            return Plan::Blocked {
                reason: problem.reason,
                message: problem.message.clone(),
            };
        }
    };
    let reset_required = spec.reset_required();

    let Some(profile) = observed.iam else {
        // None applied yet: a first create. Applied before: the profile was
        // deleted outside the operator, and the spec still wants it.
        return Plan::Create {
            reset_required,
            recreate: applied != Applied::Nothing,
        };
    };

    let ours = match applied {
        Applied::Nothing => created_in_charge(profile, &observed.attempts),
        _ => is_ours(profile, observed.status, &observed.attempts),
    };
    if !ours {
        match observed.owner {
            Owner::NotLooked => return Plan::LookAtOwner,
            Owner::This(record) => return Plan::Recognize(record.clone()),
            Owner::Elsewhere { cluster_id } => return owned_elsewhere(cluster_id),
            Owner::Unrecorded => {}
        }
    }

    if applied != Applied::Nothing && !ours {
        // Deleted and created again outside the operator since status
        // recorded it: someone else's profile now.
        return match (spec.password_update_policy, spec.adoption_policy) {
            (PasswordUpdatePolicy::Enforce, _) => Plan::UpdatePassword {
                reset_required,
                why: UpdateWhy::Enforce,
            },
            (_, AdoptionPolicy::Adopt) => Plan::UpdatePassword {
                reset_required,
                why: UpdateWhy::Adopt,
            },
            (_, AdoptionPolicy::AdoptKeepingPassword) => keep_password(spec),
            (_, AdoptionPolicy::Fail) => Plan::Blocked {
                reason: Reason::LoginProfileExists,
                message: format!(
                    "the login profile was deleted and created again outside the operator (IAM's CreateDate {}); \
                     it was left untouched. Set spec.adoptionPolicy: Adopt to take it over with the Secret's password, \
                     or delete that profile and the operator creates its own again",
                    profile.create_date
                ),
            },
        };
    }

    match applied {
        // Made by this resource after it took charge: a crash or a lost
        // answer kept status from recording it. Finish the job.
        Applied::Nothing if created_in_charge(profile, &observed.attempts) => {
            if observed.pending_is_desired {
                Plan::RecordCreated
            } else {
                Plan::UpdatePassword {
                    reset_required,
                    why: UpdateWhy::SecretChanged,
                }
            }
        }
        Applied::Nothing => match spec.adoption_policy {
            AdoptionPolicy::Fail => Plan::Blocked {
                reason: Reason::LoginProfileExists,
                message: "the IAM user already had a login profile before this LoginProfile took charge; \
                          it was left untouched. Set spec.adoptionPolicy: Adopt to take it over with the \
                          Secret's password, or delete the existing profile"
                    .into(),
            },
            AdoptionPolicy::Adopt => Plan::UpdatePassword {
                reset_required,
                why: UpdateWhy::Adopt,
            },
            AdoptionPolicy::AdoptKeepingPassword => keep_password(spec),
        },
        Applied::Different => match spec.password_update_policy {
            PasswordUpdatePolicy::CreateOnly => Plan::HoldBack,
            _ => Plan::UpdatePassword {
                reset_required,
                why: UpdateWhy::SecretChanged,
            },
        },
        Applied::Same
            if spec.password_update_policy == PasswordUpdatePolicy::Enforce
                && observed.changed_out_of_band =>
        {
            Plan::UpdatePassword {
                reset_required,
                why: UpdateWhy::Enforce,
            }
        }
        // Compared with what the operator last sent, not with IAM's flag: IAM
        // clears the flag when the user changes the password, and that is
        // the flow working, not drift to correct.
        Applied::Same
            if observed.status.and_then(|s| s.applied_password_reset_required)
                != Some(reset_required) =>
        {
            Plan::UpdateResetFlag { reset_required }
        }
        Applied::Same => Plan::Noop,
    }
}

/// Decides what to do for a LoginProfile that is being deleted: delete the
/// login profile only if the policy says so and it is this resource's own
/// (see [`is_ours`]; `None` when IAM has none, or was not asked because
/// this resource never managed one). Depends on nothing else, so cleanup
/// works even when the Secret is gone or invalid.
pub fn decide_cleanup(policy: DeletionPolicy, ours: Option<bool>) -> Plan {
    match (policy, ours) {
        (DeletionPolicy::Delete, Some(true)) => Plan::Delete,
        // Retained, absent, or someone else's.
        _ => Plan::Noop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> LoginProfileSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    /// What status records after applying `fingerprint`: the password and
    /// the CreateDate of the profile it went to ([`profile`]'s).
    fn status(fingerprint: Option<&str>, applied_reset: Option<bool>) -> LoginProfileStatus {
        LoginProfileStatus {
            password_fingerprint: fingerprint.map(Into::into),
            applied_password_reset_required: applied_reset,
            create_date: fingerprint.map(|_| "2026-11-27T09:51:50Z".into()),
            ..Default::default()
        }
    }

    fn profile(reset: bool) -> IamProfile {
        IamProfile {
            create_date: "2026-11-27T09:51:50Z".into(),
            password_reset_required: reset,
        }
    }

    const BASE: &str = "passwordSecretRef: {name: s}";

    struct Case {
        name: &'static str,
        spec: &'static str,
        status: Option<LoginProfileStatus>,
        desired: Result<&'static str, SourceProblem>,
        iam: Option<IamProfile>,
        out_of_band: bool,
        want: Plan,
    }

    #[test]
    fn decide_covers_every_branch() {
        let missing = SourceProblem {
            reason: Reason::SecretNotFound,
            message: "Secret s not found".into(),
        };
        let cases = vec![
            Case {
                name: "first create",
                spec: BASE,
                status: None,
                desired: Ok("fp1"),
                iam: None,
                out_of_band: false,
                want: Plan::Create {
                    reset_required: false,
                    recreate: false,
                },
            },
            Case {
                name: "first create with reset required",
                spec: "{passwordSecretRef: {name: s}, passwordResetRequired: true}",
                status: None,
                desired: Ok("fp1"),
                iam: None,
                out_of_band: false,
                want: Plan::Create {
                    reset_required: true,
                    recreate: false,
                },
            },
            Case {
                name: "deleted out of band: recreate",
                spec: BASE,
                status: Some(status(Some("fp1"), Some(false))),
                desired: Ok("fp1"),
                iam: None,
                out_of_band: false,
                want: Plan::Create {
                    reset_required: false,
                    recreate: true,
                },
            },
            Case {
                name: "secret problem blocks before IAM is considered",
                spec: BASE,
                status: Some(status(Some("fp1"), Some(false))),
                desired: Err(missing.clone()),
                iam: Some(profile(false)),
                out_of_band: false,
                want: Plan::Blocked {
                    reason: Reason::SecretNotFound,
                    message: missing.message.clone(),
                },
            },
            Case {
                name: "existing profile not ours, adoption Fail",
                spec: BASE,
                status: None,
                desired: Ok("fp1"),
                iam: Some(profile(false)),
                out_of_band: false,
                want: Plan::Blocked {
                    reason: Reason::LoginProfileExists,
                    message: String::new(),
                },
            },
            Case {
                name: "existing profile not ours, adoption Adopt",
                spec: "{passwordSecretRef: {name: s}, adoptionPolicy: Adopt, passwordResetRequired: true}",
                status: None,
                desired: Ok("fp1"),
                iam: Some(profile(false)),
                out_of_band: false,
                want: Plan::UpdatePassword {
                    reset_required: true,
                    why: UpdateWhy::Adopt,
                },
            },
            Case {
                name: "secret value changed",
                spec: BASE,
                status: Some(status(Some("fp1"), Some(false))),
                desired: Ok("fp2"),
                iam: Some(profile(false)),
                out_of_band: false,
                want: Plan::UpdatePassword {
                    reset_required: false,
                    why: UpdateWhy::SecretChanged,
                },
            },
            Case {
                name: "admin forces a reset: flag alone",
                spec: "{passwordSecretRef: {name: s}, passwordResetRequired: true}",
                status: Some(status(Some("fp1"), Some(false))),
                desired: Ok("fp1"),
                iam: Some(profile(false)),
                out_of_band: false,
                want: Plan::UpdateResetFlag {
                    reset_required: true,
                },
            },
            Case {
                name: "admin lifts the reset requirement",
                spec: BASE,
                status: Some(status(Some("fp1"), Some(true))),
                desired: Ok("fp1"),
                iam: Some(profile(true)),
                out_of_band: false,
                want: Plan::UpdateResetFlag {
                    reset_required: false,
                },
            },
            Case {
                name: "user changed the password at first sign-in: IAM flag false is not drift",
                spec: "{passwordSecretRef: {name: s}, passwordResetRequired: true}",
                status: Some(status(Some("fp1"), Some(true))),
                desired: Ok("fp1"),
                iam: Some(profile(false)),
                out_of_band: false,
                want: Plan::Noop,
            },
            Case {
                name: "everything matches",
                spec: BASE,
                status: Some(status(Some("fp1"), Some(false))),
                desired: Ok("fp1"),
                iam: Some(profile(false)),
                out_of_band: false,
                want: Plan::Noop,
            },
            Case {
                name: "CreateOnly holds a Secret change back",
                spec: "{passwordSecretRef: {name: s}, passwordUpdatePolicy: CreateOnly}",
                status: Some(status(Some("fp1"), Some(false))),
                desired: Ok("fp2"),
                iam: Some(profile(false)),
                out_of_band: false,
                want: Plan::HoldBack,
            },
            Case {
                name: "CreateOnly still creates a missing profile",
                spec: "{passwordSecretRef: {name: s}, passwordUpdatePolicy: CreateOnly}",
                status: None,
                desired: Ok("fp1"),
                iam: None,
                out_of_band: false,
                want: Plan::Create {
                    reset_required: false,
                    recreate: false,
                },
            },
            Case {
                name: "Enforce re-applies after an out-of-band change",
                spec: "{passwordSecretRef: {name: s}, passwordUpdatePolicy: Enforce}",
                status: Some(status(Some("fp1"), Some(false))),
                desired: Ok("fp1"),
                iam: Some(profile(false)),
                out_of_band: true,
                want: Plan::UpdatePassword {
                    reset_required: false,
                    why: UpdateWhy::Enforce,
                },
            },
            Case {
                name: "OnSecretChange never fights an out-of-band change",
                spec: BASE,
                status: Some(status(Some("fp1"), Some(false))),
                desired: Ok("fp1"),
                iam: Some(profile(false)),
                out_of_band: true,
                want: Plan::Noop,
            },
        ];
        for case in cases {
            let spec = spec(case.spec);
            let recorded = case
                .status
                .as_ref()
                .and_then(|s| s.password_fingerprint.as_deref());
            let source = case.desired.as_ref().map(|desired| match recorded {
                None => Applied::Nothing,
                Some(recorded) if recorded == *desired => Applied::Same,
                Some(_) => Applied::Different,
            });
            let plan = decide(&Observed {
                spec: &spec,
                status: case.status.as_ref(),
                source,
                iam: case.iam.as_ref(),
                changed_out_of_band: case.out_of_band,
                attempts: Vec::new(),
                pending_is_desired: false,
                owner: &Owner::Unrecorded,
                guard_writes: false,
            });
            match (&plan, &case.want) {
                // The adoption message is long prose; the reason is the contract.
                (
                    Plan::Blocked { reason, .. },
                    Plan::Blocked {
                        reason: want,
                        message,
                    },
                ) if message.is_empty() => {
                    assert_eq!(reason, want, "{}", case.name)
                }
                _ => assert_eq!(plan, case.want, "{}", case.name),
            }
        }
    }

    /// The attempt windows of a resource that took charge at `text`, with
    /// writes bounded by 30 s (`--iam-timeout`'s default).
    fn since(text: &str) -> Vec<AttemptWindow> {
        let at = DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc);
        vec![AttemptWindow::of(at, std::time::Duration::from_secs(30))]
    }

    /// A profile IAM created after the resource took charge, with nothing in
    /// status: the resource's own create whose answer was lost.
    #[test]
    fn an_unrecorded_create_of_our_own_is_finished_not_refused() {
        let spec = spec(BASE);
        let iam = profile(false); // created 2026-11-27T09:51:50Z
        let observe = |attempts, pending_is_desired| Observed {
            spec: &spec,
            status: None,
            source: Ok(Applied::Nothing),
            iam: Some(&iam),
            changed_out_of_band: false,
            attempts,
            pending_is_desired,
            owner: &Owner::Unrecorded,
            guard_writes: false,
        };
        assert_eq!(
            decide(&observe(since("2026-11-27T09:51:49.700Z"), true)),
            Plan::RecordCreated,
            "IAM has exactly the password that was being sent: record it, no IAM call"
        );
        assert_eq!(
            decide(&observe(since("2026-11-27T09:51:49.700Z"), false)),
            Plan::UpdatePassword {
                reset_required: false,
                why: UpdateWhy::SecretChanged
            },
            "the Secret changed since that attempt: send the current password"
        );
        assert!(
            matches!(
                decide(&observe(since("2026-11-27T09:52:30Z"), true)),
                Plan::Blocked {
                    reason: Reason::LoginProfileExists,
                    ..
                }
            ),
            "a profile older than the resource's charge is never taken"
        );
        assert!(
            matches!(
                decide(&observe(since("2026-11-27T08:00:00Z"), true)),
                Plan::Blocked {
                    reason: Reason::LoginProfileExists,
                    ..
                }
            ),
            "a mark left open for hours proves nothing about a profile made since"
        );
        assert!(matches!(
            decide(&observe(Vec::new(), true)),
            Plan::Blocked {
                reason: Reason::LoginProfileExists,
                ..
            }
        ));
    }

    #[test]
    fn created_in_charge_only_within_an_attempt_and_the_clock_skew() {
        let iam = profile(false); // 09:51:50Z
        assert!(created_in_charge(&iam, &since("2026-11-27T09:51:50Z")));
        assert!(created_in_charge(&iam, &since("2026-11-27T09:51:52Z")));
        assert!(!created_in_charge(&iam, &since("2026-11-27T09:51:52.001Z")));
        // The attempt's deadline (30 s) plus the skew (2 s), and no further.
        assert!(created_in_charge(&iam, &since("2026-11-27T09:51:18Z")));
        assert!(!created_in_charge(&iam, &since("2026-11-27T09:51:17.999Z")));
        assert!(!created_in_charge(&iam, &since("2026-11-27T08:00:00Z")));
        assert!(!created_in_charge(&iam, &[]));
        // Either of two attempts (the first, and a retry's) will do.
        let mut both = since("2026-11-27T09:00:00Z");
        both.extend(since("2026-11-27T09:51:45Z"));
        assert!(created_in_charge(&iam, &both));
    }

    #[test]
    fn cleanup_deletes_only_what_this_resource_manages() {
        let delete = DeletionPolicy::Delete;
        assert_eq!(decide_cleanup(delete, Some(true)), Plan::Delete);
        assert_eq!(
            decide_cleanup(delete, Some(false)),
            Plan::Noop,
            "someone else's"
        );
        assert_eq!(decide_cleanup(delete, None), Plan::Noop, "none there");
        assert_eq!(
            decide_cleanup(DeletionPolicy::Retain, Some(true)),
            Plan::Noop
        );
    }

    #[test]
    fn a_profile_created_again_by_someone_else_is_not_ours() {
        let recorded = LoginProfileStatus {
            password_fingerprint: Some("fp1".into()),
            applied_password_reset_required: Some(false),
            create_date: Some("2026-11-27T09:51:50Z".into()),
            ..Default::default()
        };
        let ours = profile(false);
        let theirs = IamProfile {
            create_date: "2026-11-28T10:00:00Z".into(),
            password_reset_required: false,
        };
        assert!(is_ours(&ours, Some(&recorded), &[]));
        assert!(!is_ours(&theirs, Some(&recorded), &[]));
        assert!(!is_ours(&ours, None, &[]), "nothing recorded, no attempt");
        let disabled = LoginProfileStatus {
            create_date: None,
            ..recorded.clone()
        };
        assert!(
            !is_ours(&theirs, Some(&disabled), &[]),
            "DisableConsole deleted ours: a profile found since is someone else's"
        );
        assert!(
            is_ours(&theirs, Some(&recorded), &since("2026-11-28T09:59:59Z")),
            "this resource's own recreate, whose answer was lost"
        );

        let decided = |yaml: &str, applied: Applied| {
            let spec = spec(yaml);
            decide(&Observed {
                spec: &spec,
                status: Some(&recorded),
                source: Ok(applied),
                iam: Some(&theirs),
                changed_out_of_band: false,
                attempts: Vec::new(),
                pending_is_desired: false,
                owner: &Owner::Unrecorded,
                guard_writes: false,
            })
        };
        for applied in [Applied::Same, Applied::Different] {
            assert!(
                matches!(
                    decided(BASE, applied),
                    Plan::Blocked {
                        reason: Reason::LoginProfileExists,
                        ..
                    }
                ),
                "{applied:?}: neither recorded as ours nor overwritten"
            );
            assert_eq!(
                decided(
                    "{passwordSecretRef: {name: s}, adoptionPolicy: Adopt}",
                    applied
                ),
                Plan::UpdatePassword {
                    reset_required: false,
                    why: UpdateWhy::Adopt
                }
            );
            assert_eq!(
                decided(
                    "{passwordSecretRef: {name: s}, passwordUpdatePolicy: Enforce}",
                    applied
                ),
                Plan::UpdatePassword {
                    reset_required: false,
                    why: UpdateWhy::Enforce
                },
                "Enforce: the Secret is the only truth"
            );
        }
    }

    #[test]
    fn the_ownership_record_decides_a_profile_status_does_not_know() {
        let record = OwnerRecord {
            cluster_id: "blue".into(),
            namespace: "team-a".into(),
            name: "alice".into(),
            password_fingerprint: "fp-recorded".into(),
            password_time: "2026-11-27T10:00:00Z".into(),
            profile_created: "2026-11-27T09:51:50Z".into(),
        };
        let elsewhere = Owner::Elsewhere {
            cluster_id: "green".into(),
        };
        let decided = |yaml: &str, owner: &Owner| {
            let spec = spec(yaml);
            decide(&Observed {
                spec: &spec,
                status: None,
                source: Ok(Applied::Nothing),
                iam: Some(&profile(false)),
                changed_out_of_band: false,
                attempts: Vec::new(),
                pending_is_desired: false,
                owner,
                guard_writes: false,
            })
        };
        let adopt = "{passwordSecretRef: {name: s}, adoptionPolicy: Adopt}";
        for yaml in [BASE, adopt] {
            assert_eq!(decided(yaml, &Owner::NotLooked), Plan::LookAtOwner);
            assert_eq!(
                decided(yaml, &Owner::This(record.clone())),
                Plan::Recognize(record.clone()),
                "a rebuilt cluster's own profile: no write"
            );
            assert!(
                matches!(
                    decided(yaml, &elsewhere),
                    Plan::Blocked {
                        reason: Reason::OwnedElsewhere,
                        ..
                    }
                ),
                "another cluster's: never adopted, whatever adoptionPolicy says"
            );
        }
        assert!(matches!(
            decided(BASE, &Owner::Unrecorded),
            Plan::Blocked {
                reason: Reason::LoginProfileExists,
                ..
            }
        ));
        assert_eq!(
            decided(
                "{passwordSecretRef: {name: s}, adoptionPolicy: AdoptKeepingPassword}",
                &Owner::Unrecorded
            ),
            Plan::KeepPassword,
            "a migration keeps the password"
        );
        assert!(
            matches!(
                decided(
                    "{passwordSecretRef: {name: s}, adoptionPolicy: AdoptKeepingPassword}",
                    &elsewhere
                ),
                Plan::Blocked {
                    reason: Reason::OwnedElsewhere,
                    ..
                }
            ),
            "nor is another cluster's kept"
        );
        // Status's own profile needs no record.
        let spec = spec(BASE);
        let recorded = status(Some("fp1"), Some(false));
        let own = decide(&Observed {
            spec: &spec,
            status: Some(&recorded),
            source: Ok(Applied::Same),
            iam: Some(&profile(false)),
            changed_out_of_band: false,
            attempts: Vec::new(),
            pending_is_desired: false,
            owner: &Owner::NotLooked,
            guard_writes: true,
        });
        assert_eq!(own, Plan::Noop, "at rest: no record read");

        // With a cluster id, every write to an existing profile reads the
        // record first: ownership may have been handed over since.
        let rotation = |owner: &Owner| {
            decide(&Observed {
                spec: &spec,
                status: Some(&recorded),
                source: Ok(Applied::Different),
                iam: Some(&profile(false)),
                changed_out_of_band: false,
                attempts: Vec::new(),
                pending_is_desired: false,
                owner,
                guard_writes: true,
            })
        };
        assert_eq!(rotation(&Owner::NotLooked), Plan::LookAtOwner);
        assert!(matches!(
            rotation(&elsewhere),
            Plan::Blocked {
                reason: Reason::OwnedElsewhere,
                ..
            }
        ));
        for owner in [Owner::Unrecorded, Owner::This(record.clone())] {
            assert!(matches!(rotation(&owner), Plan::UpdatePassword { .. }));
        }
    }
}
