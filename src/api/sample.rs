//! `loginprofile-operator sample`: a commented example to start from, the
//! operator's answer to `aws iam create-login-profile --generate-cli-skeleton`.

/// A Secret and a LoginProfile, every field explained.
pub const SAMPLE: &str = r#"# A console password for IAM user "bob", kept in a Secret.
# Apply it into an admitted namespace (kubectl apply -n team-a -f this-file.yaml).
# An IAMAccount must admit that namespace and the user (kubectl get
# iamaccounts; with the chart: --set 'defaultAccount.namespaces={team-a}'
# --set 'defaultAccount.userNames={bob}'), and the IAM user must exist
# (aws iam create-user --user-name bob). Otherwise status says NotAdmitted
# (naming the rule) or UserNotFound.
apiVersion: v1
kind: Secret
metadata:
  name: bob-console-password
type: Opaque
stringData:
  # 1 to 128 characters: tab, line feed, carriage return and U+0020..U+00FF.
  # It must also meet the account password policy
  # (aws iam get-account-password-policy).
  password: "Change-me-4-real!"
---
apiVersion: iam.loginprofile.dev/v1alpha1
kind: LoginProfile
metadata:
  name: bob                      # also the IAM user name unless spec.userName is set
spec:
  # userName: Bob                # optional; 1..64 of [\w+=,.@-]; cannot change later
  passwordSecretRef:
    name: bob-console-password   # a Secret in the same namespace
    key: password                # default "password"
  # passwordSecretsManagerRef:   # or instead: AWS Secrets Manager (exactly one source)
  #   secretId: prod/console/bob
  #   jsonKey: password          # optional: the SecretString is JSON
  # generatePassword: {length: 24}  # create the Secret with a random password if it is missing
  # generatePassword:            # or instead of any Secret: a generated password delivered encrypted
  #   deliverTo:                 # (status.encryptedPassword; open it with age -d -i KEY or gpg -d)
  #     ageRecipients: [age1...]  # age-keygen or ssh-ed25519/ssh-rsa public keys, up to 10
  #     pgpPublicKey: |          # and/or an armored OpenPGP key (gpg --armor --export)
  #       -----BEGIN PGP PUBLIC KEY BLOCK-----
  #   reissue: "1"               # change it to issue a new password
  passwordUpdatePolicy: OnSecretChange  # OnSecretChange (default) | Enforce | CreateOnly
  passwordResetRequired: true    # default false (true with deliverTo): user picks a new password at first sign-in
  # deletionPolicy: Retain      # Delete removes the IAM login profile with this resource, Retain keeps it;
  #                              # unset: the operator's --default-deletion-policy (Delete unless the admin chose Retain)
  adoptionPolicy: Fail           # Fail (default) refuses a login profile this resource did not create; Adopt takes it over
  #                              # with the Secret's password; AdoptKeepingPassword keeps its password until the Secret changes
  # accountRef: {name: team-a}   # the IAMAccount (default "default") a cluster admin wrote: it must admit this
  #                              # namespace and user, and names the AWS account; cannot change later
"#;

/// `sample root`: the management account's IAMAccount and a
/// RootLoginProfile, every field explained.
pub const ROOT_SAMPLE: &str = r#"# Root's console password in member account 111122223333 of an AWS
# organization, declared (docs/root.md). Cluster-scoped and for cluster admins
# only. The operator runs with --manage-root-login-profiles (chart:
# rootLoginProfiles.enabled=true), and the organization has centralized root
# access: in the management account,
#   aws organizations enable-aws-service-access --service-principal iam.amazonaws.com
#   aws iam enable-organizations-root-credentials-management
apiVersion: iam.loginprofile.dev/v1alpha1
kind: IAMAccount
metadata:
  name: organization
spec:
  # The management account (or a delegated administrator for IAM): a role
  # the operator may assume that allows sts:AssumeRoot and
  # iam:ListOrganizationsFeatures (docs/root.md has the policy).
  roleArn: arn:aws:iam::999988887777:role/loginprofile-operator-root
  allowRootAccess: true          # without it no RootLoginProfile may name this IAMAccount
  # namespaces, namespaceSelector, userNames: left empty, so no tenant's
  # LoginProfile can use these credentials.
---
apiVersion: iam.loginprofile.dev/v1alpha1
kind: RootLoginProfile
metadata:
  name: workloads-prod           # any name; one RootLoginProfile per account
spec:
  accountId: "111122223333"      # a member account (12 digits, quoted), never the management account; cannot change later
  managementAccountRef:
    name: organization           # the IAMAccount above
  state: Absent                  # Absent: root has no console password (one found is deleted)
                                 # RecoveryEnabled: root may set one through password recovery
  # deletionPolicy: Retain       # the only value: deleting this resource changes nothing in AWS
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::login_profile::LoginProfile;

    #[test]
    fn sample_parses_as_a_loginprofile() {
        let documents: Vec<&str> = SAMPLE.split("\n---\n").collect();
        let lp: LoginProfile = serde_yaml::from_str(documents[1]).unwrap();
        assert_eq!(lp.user_name(), "bob");
        assert!(lp.spec.reset_required());
    }

    #[test]
    fn the_root_sample_parses_as_an_iam_account_and_a_root_login_profile() {
        use crate::api::{iam_account::IAMAccount, root_login_profile::*};
        let documents: Vec<&str> = ROOT_SAMPLE.split("\n---\n").collect();
        let account: IAMAccount = serde_yaml::from_str(documents[0]).unwrap();
        assert!(account.spec.allow_root_access);
        let root: RootLoginProfile = serde_yaml::from_str(documents[1]).unwrap();
        assert_eq!(root.spec.account_id, "111122223333");
        assert_eq!(root.management_account_name(), "organization");
        assert_eq!(root.spec.state, RootState::Absent);
    }
}
