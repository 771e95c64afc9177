//! AWS Organizations in the emulator, for the tests of root console access:
//! an organization with its management account and two members.

use super::*;

/// An organization of the emulator: its management account and two member
/// accounts, with trusted access for IAM and (unless asked not to) root
/// credentials management enabled.
pub struct Organization {
    pub management: String,
    pub members: [String; 2],
}

impl Organization {
    /// Made in one boto3 process: it is the tests' setup, not what they
    /// check, and the AWS CLI would start a dozen processes for it.
    pub fn new(manage_root_credentials: bool) -> Self {
        let management = unique_account_id();
        let script = format!(
            "import boto3, json\n\
             c = boto3.client('sts').assume_role(RoleArn='arn:aws:iam::{management}:role/OrganizationAccountAccessRole', \
             RoleSessionName='tests')['Credentials']\n\
             keys = dict(aws_access_key_id=c['AccessKeyId'], aws_secret_access_key=c['SecretAccessKey'], \
             aws_session_token=c['SessionToken'])\n\
             org = boto3.client('organizations', **keys)\n\
             org.create_organization(FeatureSet='ALL')\n\
             members = [org.create_account(Email=f'{{name}}-{unique}@example.invalid', AccountName=name)\
             ['CreateAccountStatus']['AccountId'] for name in ('first', 'second')]\n\
             org.enable_aws_service_access(ServicePrincipal='iam.amazonaws.com')\n\
             if {manage}:\n\
             \x20   boto3.client('iam', **keys).enable_organizations_root_credentials_management()\n\
             print(json.dumps(members))\n",
            unique = unique("org"),
            manage = if manage_root_credentials {
                "True"
            } else {
                "False"
            },
        );
        let mut python = env().command("python");
        python.args(["-c", &script]);
        let members: Vec<String> = serde_json::from_str(&stdout_of(
            python.output().unwrap(),
            "the organization's setup",
        ))
        .expect("two account ids");
        Self {
            management,
            members: [members[0].clone(), members[1].clone()],
        }
    }
}
