//! What a customer needs to let a tenant read their AWS (`GET /v1/tenants/{id}/aws-setup`):
//! the CloudFormation templates of `deploy/aws/` (built into the binary, so the templates a
//! worker serves are the ones it was built with), the parameter values for this tenant, and a
//! console quick-create link with them filled in. Onboarding is then: open the link, fill in
//! the Organization's root or OU ids, create, and put the stack's `IntegrationRoleArn` output
//! into the tenant's `aws.auth.roleArn`.
//!
//! Owns: the tenant's parameter values and the link. Must not touch: signing (`identity`),
//! the tenant's document.

use serde_json::{Value, json};

use super::identity::{AUDIENCE, IdentityConfig, subject};
use crate::discovery::config::DEFAULT_MEMBER_ROLE;

/// The management-account stack (quick-create opens it).
pub const MANAGEMENT_TEMPLATE: &str = "berth-management.yaml";
/// The StackSet's template: the read role in every member account.
pub const MEMBER_TEMPLATE: &str = "berth-member-role.yaml";
/// The integration role name the management template creates by default.
pub const INTEGRATION_ROLE: &str = "BerthIntegration";

/// Every template, by file name.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        MANAGEMENT_TEMPLATE,
        include_str!("../../../deploy/aws/berth-management.yaml"),
    ),
    (
        MEMBER_TEMPLATE,
        include_str!("../../../deploy/aws/berth-member-role.yaml"),
    ),
];

/// The setup of tenant `id` (incarnation `incarnation`, external id `external_id`).
pub fn setup(c: &IdentityConfig, id: &str, incarnation: &str, external_id: &str) -> Value {
    let sub = subject(id, incarnation);
    let member_url = c
        .templates_url
        .as_ref()
        .map(|base| format!("{base}{MEMBER_TEMPLATE}"));
    let mut parameters = json!({
        "IssuerUrl": c.issuer,
        "Audience": AUDIENCE,
        "TenantSubject": sub,
        "ExternalId": external_id,
        "IntegrationRoleName": INTEGRATION_ROLE,
        "MemberRoleName": DEFAULT_MEMBER_ROLE,
    });
    if let Some(u) = &member_url {
        parameters["MemberTemplateUrl"] = json!(u);
    }
    let quick_create = c.templates_url.as_ref().map(|base| {
        let mut pairs: Vec<(String, String)> = vec![
            ("templateURL".into(), format!("{base}{MANAGEMENT_TEMPLATE}")),
            ("stackName".into(), format!("berth-{id}")),
        ];
        for (k, v) in parameters.as_object().into_iter().flatten() {
            pairs.push((format!("param_{k}"), v.as_str().unwrap_or_default().into()));
        }
        let query = reqwest::Url::parse_with_params("https://x/", &pairs)
            .ok()
            .and_then(|u| u.query().map(str::to_string))
            .unwrap_or_default();
        let r = &c.console_region;
        format!(
            "https://{r}.console.aws.amazon.com/cloudformation/home?region={r}#/stacks/quickcreate?{query}"
        )
    });
    json!({
        "issuer": c.issuer,
        "subject": sub,
        "audience": AUDIENCE,
        "externalId": external_id,
        "conditionKeys": {
            "sub": format!("{}:sub", c.host_path()),
            "aud": format!("{}:aud", c.host_path()),
        },
        "parameters": parameters,
        "quickCreateUrl": quick_create,
        "templates": TEMPLATES.iter().map(|(n, t)| (n.to_string(), json!(t))).collect::<serde_json::Map<_, _>>(),
        "steps": [
            "Open quickCreateUrl signed in to the Organization's management account (or deploy templates[\"berth-management.yaml\"] with these parameters).",
            "Fill in OrganizationalUnitIds (the root id r-... or the OUs to read) and create the stack.",
            format!("If the stack's IntegrationRoleArn output differs from config.aws.auth.roleArn, PUT the tenant with it; then POST /v1/tenants/{id}/resync (a failed sync is otherwise retried at the next interval)."),
            "A second Berth tenant in the same Organization: give its stack other IntegrationRoleName and MemberRoleName values and the first stack's OidcProviderArn output as ExistingOidcProviderArn (IAM has one provider per issuer per account), and set config.aws.accountRoleName to its MemberRoleName.",
        ],
        "config": {
            "aws": {
                "auth": {"method": "berthIdentity", "roleArn": format!("arn:aws:iam::<management-account-id>:role/{INTEGRATION_ROLE}")},
                "accountRoleName": DEFAULT_MEMBER_ROLE,
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_carries_the_tenants_parameters() {
        let mut c: IdentityConfig = serde_json::from_value(json!({
            "issuer": "https://berth.example.com/oidc",
            "templatesUrl": "https://bucket.s3.amazonaws.com/berth/v1",
        }))
        .unwrap();
        c.check().unwrap();
        let s = setup(&c, "acme", "ab12", "berth-xyz");
        assert_eq!(s["subject"], "tenant:acme:ab12");
        assert_eq!(s["conditionKeys"]["sub"], "berth.example.com/oidc:sub");
        assert_eq!(
            s["parameters"]["MemberTemplateUrl"],
            "https://bucket.s3.amazonaws.com/berth/v1/berth-member-role.yaml"
        );
        let link = s["quickCreateUrl"].as_str().unwrap();
        assert!(link.starts_with("https://us-east-1.console.aws.amazon.com/cloudformation/home?region=us-east-1#/stacks/quickcreate?templateURL=https%3A%2F%2Fbucket.s3.amazonaws.com%2Fberth%2Fv1%2Fberth-management.yaml&stackName=berth-acme&"), "{link}");
        assert!(
            link.contains("param_TenantSubject=tenant%3Aacme%3Aab12"),
            "{link}"
        );
        assert!(link.contains("param_ExternalId=berth-xyz"), "{link}");
        for (name, _) in TEMPLATES {
            assert!(
                s["templates"][name]
                    .as_str()
                    .unwrap()
                    .contains("AWSTemplateFormatVersion")
            );
        }
        // Without a published location there is no link, but the templates are there.
        c.templates_url = None;
        assert!(setup(&c, "acme", "ab12", "x")["quickCreateUrl"].is_null());
    }
}
