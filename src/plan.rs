//! The decide step: a pure function from what was observed (the spec, the
//! password source, IAM's login profile, what status says was applied) to the
//! one thing to do next. No I/O, so every branch is unit-tested here.

use crate::crd::{
    AdoptionPolicy, DeletionPolicy, LoginProfileSpec, LoginProfileStatus, PasswordUpdatePolicy,
};
use crate::reason::Reason;

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

/// Everything the decide step looks at.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    pub spec: &'a LoginProfileSpec,
    pub status: Option<&'a LoginProfileStatus>,
    /// The keyed fingerprint of the Secret's password, or why there is none.
    pub desired_fingerprint: Result<&'a str, &'a SourceProblem>,
    /// The login profile in IAM; `None` when IAM has none.
    pub iam: Option<&'a IamProfile>,
    /// IAM's credential report shows a password change after the operator's
    /// last one (looked up only for `passwordUpdatePolicy: Enforce`).
    pub changed_out_of_band: bool,
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
    /// Whether acting on this plan sends the password to IAM.
    pub fn sends_password(&self) -> bool {
        matches!(self, Plan::Create { .. } | Plan::UpdatePassword { .. })
    }
}

/// Decides what to do for a LoginProfile that is not being deleted.
pub fn decide(observed: &Observed<'_>) -> Plan {
    let spec = observed.spec;
    let desired = match observed.desired_fingerprint {
        Ok(fingerprint) => fingerprint,
        Err(problem) => {
            return Plan::Blocked {
                reason: problem.reason,
                message: problem.message.clone(),
            };
        }
    };
    let applied = observed
        .status
        .and_then(|s| s.password_fingerprint.as_deref());
    let reset_required = spec.password_reset_required;

    let Some(_profile) = observed.iam else {
        // None applied yet: a first create. Applied before: the profile was
        // deleted outside the operator, and the spec still wants it.
        return Plan::Create {
            reset_required,
            recreate: applied.is_some(),
        };
    };

    match applied {
        None => match spec.adoption_policy {
            AdoptionPolicy::Fail => Plan::Blocked {
                reason: Reason::LoginProfileExists,
                message: "the IAM user already has a login profile that this LoginProfile did not create; \
                          it was left untouched. Set spec.adoptionPolicy: Adopt to take it over with the \
                          Secret's password, or delete the existing profile"
                    .into(),
            },
            AdoptionPolicy::Adopt => Plan::UpdatePassword {
                reset_required,
                why: UpdateWhy::Adopt,
            },
        },
        Some(applied) if applied != desired => match spec.password_update_policy {
            PasswordUpdatePolicy::CreateOnly => Plan::HoldBack,
            _ => Plan::UpdatePassword {
                reset_required,
                why: UpdateWhy::SecretChanged,
            },
        },
        Some(_)
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
        Some(_) if observed.status.and_then(|s| s.applied_password_reset_required) != Some(reset_required) => {
            Plan::UpdateResetFlag { reset_required }
        }
        Some(_) => Plan::Noop,
    }
}

/// Decides what to do for a LoginProfile that is being deleted. Depends only
/// on the deletion policy and on what status says this resource applied, so
/// cleanup works even when the Secret is gone or invalid.
pub fn decide_cleanup(spec: &LoginProfileSpec, status: Option<&LoginProfileStatus>) -> Plan {
    let managed = status
        .and_then(|s| s.password_fingerprint.as_ref())
        .is_some();
    match spec.deletion_policy {
        DeletionPolicy::Retain => Plan::Noop,
        // A profile this resource never created or adopted is someone else's.
        DeletionPolicy::Delete if !managed => Plan::Noop,
        DeletionPolicy::Delete => Plan::Delete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> LoginProfileSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn status(fingerprint: Option<&str>, applied_reset: Option<bool>) -> LoginProfileStatus {
        LoginProfileStatus {
            password_fingerprint: fingerprint.map(Into::into),
            applied_password_reset_required: applied_reset,
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
            let plan = decide(&Observed {
                spec: &spec,
                status: case.status.as_ref(),
                desired_fingerprint: case.desired.as_ref().map(|s| *s),
                iam: case.iam.as_ref(),
                changed_out_of_band: case.out_of_band,
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

    #[test]
    fn cleanup_deletes_only_what_this_resource_manages() {
        let managed = status(Some("fp1"), Some(false));
        assert_eq!(decide_cleanup(&spec(BASE), Some(&managed)), Plan::Delete);
        assert_eq!(
            decide_cleanup(&spec(BASE), None),
            Plan::Noop,
            "never applied: not ours"
        );
        assert_eq!(
            decide_cleanup(
                &spec("{passwordSecretRef: {name: s}, deletionPolicy: Retain}"),
                Some(&managed)
            ),
            Plan::Noop
        );
    }
}
