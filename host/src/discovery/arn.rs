//! ARNs and AWS partitions.
//!
//! Owns: parsing and printing `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`
//! for the four partitions Berth supports (`aws`, `aws-us-gov`, `aws-cn`,
//! `aws-eusc`), IAM role path/name splitting, building a member role ARN from
//! an organization role's partition, path and name, and per-partition facts
//! (default region, DNS suffix, fallback region list). Must not call AWS.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An AWS partition. Ocean's v3 integration rejects `aws-eusc` ARNs
/// (ocean issue #3605); every one of these parses here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Partition {
    #[serde(rename = "aws")]
    Aws,
    #[serde(rename = "aws-us-gov")]
    AwsUsGov,
    #[serde(rename = "aws-cn")]
    AwsCn,
    #[serde(rename = "aws-eusc")]
    AwsEusc,
}

impl Partition {
    pub const ALL: [Partition; 4] = [
        Partition::Aws,
        Partition::AwsUsGov,
        Partition::AwsCn,
        Partition::AwsEusc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsUsGov => "aws-us-gov",
            Partition::AwsCn => "aws-cn",
            Partition::AwsEusc => "aws-eusc",
        }
    }

    /// Where partition-wide calls (STS, Organizations, S3 bucket location)
    /// are made when nothing else says where.
    pub fn default_region(self) -> &'static str {
        match self {
            Partition::Aws => "us-east-1",
            Partition::AwsUsGov => "us-gov-west-1",
            Partition::AwsCn => "cn-north-1",
            Partition::AwsEusc => "eusc-de-east-1",
        }
    }

    /// Service endpoints' DNS suffix (`s3.REGION.SUFFIX`).
    pub fn dns_suffix(self) -> &'static str {
        match self {
            Partition::Aws | Partition::AwsUsGov => "amazonaws.com",
            Partition::AwsCn => "amazonaws.com.cn",
            Partition::AwsEusc => "amazonaws.eu",
        }
    }

    /// Regions used when `account:ListRegions` is not available, which is
    /// the case outside the commercial partition (Ocean does the same with
    /// botocore's list).
    pub fn fallback_regions(self) -> &'static [&'static str] {
        match self {
            // The regions that need no opt-in.
            Partition::Aws => &[
                "us-east-1",
                "us-east-2",
                "us-west-1",
                "us-west-2",
                "ca-central-1",
                "eu-west-1",
                "eu-west-2",
                "eu-west-3",
                "eu-central-1",
                "eu-north-1",
                "ap-northeast-1",
                "ap-northeast-2",
                "ap-northeast-3",
                "ap-southeast-1",
                "ap-southeast-2",
                "ap-south-1",
                "sa-east-1",
            ],
            Partition::AwsUsGov => &["us-gov-west-1", "us-gov-east-1"],
            Partition::AwsCn => &["cn-north-1", "cn-northwest-1"],
            Partition::AwsEusc => &["eusc-de-east-1"],
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Partition {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        Partition::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                ArnError(format!(
                    "unknown partition {s:?} (expected one of aws, aws-us-gov, aws-cn, aws-eusc)"
                ))
            })
    }
}

/// An ARN that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArnError(String);

/// A parsed ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arn {
    pub partition: Partition,
    pub service: String,
    pub region: String,
    pub account_id: String,
    pub resource: String,
}

impl Arn {
    /// An IAM role ARN `arn:P:iam::ACCOUNT:role{path}{name}` (`path` starts
    /// and ends with `/`).
    pub fn role(partition: Partition, account_id: &str, path: &str, name: &str) -> Self {
        Self {
            partition,
            service: "iam".into(),
            region: String::new(),
            account_id: account_id.into(),
            resource: format!("role{}{}", normalise_path(path), name),
        }
    }

    /// For an IAM role ARN, its path (`/` or `/a/b/`) and name.
    pub fn role_path_and_name(&self) -> Option<(String, String)> {
        if self.service != "iam" {
            return None;
        }
        let rest = self.resource.strip_prefix("role/")?;
        let (dir, name) = match rest.rfind('/') {
            Some(i) => (&rest[..=i], &rest[i + 1..]),
            None => ("", rest),
        };
        if name.is_empty() {
            return None;
        }
        Some((format!("/{dir}"), name.to_string()))
    }

    /// The role ARN with the same partition, path and name in `account_id`
    /// (how member roles are derived from the organization role).
    pub fn same_role_in(&self, account_id: &str) -> Option<Arn> {
        let (path, name) = self.role_path_and_name()?;
        Some(Arn::role(self.partition, account_id, &path, &name))
    }
}

/// `""`, `/`, `a/b`, `/a/b/` → `/`, `/`, `/a/b/`, `/a/b/`.
pub fn normalise_path(path: &str) -> String {
    let p = path.trim_matches('/');
    if p.is_empty() {
        "/".into()
    } else {
        format!("/{p}/")
    }
}

impl FromStr for Arn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        let bad = |why: &str| ArnError(format!("{s:?} is not a valid ARN: {why}"));
        let mut parts = s.splitn(6, ':');
        if parts.next() != Some("arn") {
            return Err(bad("it must start with `arn:`"));
        }
        let partition = parts.next().ok_or_else(|| bad("no partition"))?;
        let partition: Partition = partition.parse().map_err(|e: ArnError| bad(&e.0))?;
        let service = parts.next().ok_or_else(|| bad("no service"))?;
        let region = parts.next().ok_or_else(|| bad("no region field"))?;
        let account_id = parts.next().ok_or_else(|| bad("no account field"))?;
        let resource = parts.next().ok_or_else(|| bad("no resource"))?;
        if service.is_empty() {
            return Err(bad("empty service"));
        }
        if resource.is_empty() {
            return Err(bad("empty resource"));
        }
        let digits12 = account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit());
        if !account_id.is_empty() && !digits12 {
            return Err(bad("the account id must be 12 digits"));
        }
        Ok(Arn {
            partition,
            service: service.into(),
            region: region.into(),
            account_id: account_id.into(),
            resource: resource.into(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account_id, self.resource
        )
    }
}

impl Serialize for Arn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Arn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An IAM role ARN (checked to be one when parsed from configuration).
pub fn parse_role_arn(s: &str) -> Result<Arn, ArnError> {
    let arn: Arn = s.parse()?;
    if arn.role_path_and_name().is_none() || arn.account_id.is_empty() {
        return Err(ArnError(format!(
            "{s:?} is not an IAM role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME)"
        )));
    }
    Ok(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_four_partitions_parse_and_print_back() {
        for p in Partition::ALL {
            let text = format!("arn:{p}:iam::123456789012:role/path/to/Reader");
            let arn: Arn = text.parse().unwrap();
            assert_eq!(arn.partition, p);
            assert_eq!(arn.account_id, "123456789012");
            assert_eq!(arn.to_string(), text);
            assert_eq!(
                arn.role_path_and_name(),
                Some(("/path/to/".into(), "Reader".into()))
            );
        }
    }

    #[test]
    fn eusc_role_arn_is_accepted() {
        // The exact shape Ocean refused (issue #3605).
        let arn = parse_role_arn("arn:aws-eusc:iam::111122223333:role/PortOceanReadRole").unwrap();
        assert_eq!(arn.partition, Partition::AwsEusc);
        assert_eq!(Partition::AwsEusc.default_region(), "eusc-de-east-1");
    }

    #[test]
    fn member_role_keeps_partition_path_and_name() {
        let org =
            parse_role_arn("arn:aws-us-gov:iam::123456789012:role/ops/berth/OrgReader").unwrap();
        let m = org.same_role_in("210987654321").unwrap();
        assert_eq!(
            m.to_string(),
            "arn:aws-us-gov:iam::210987654321:role/ops/berth/OrgReader"
        );
        let plain = parse_role_arn("arn:aws-cn:iam::123456789012:role/R").unwrap();
        assert_eq!(plain.role_path_and_name(), Some(("/".into(), "R".into())));
        assert_eq!(
            Arn::role(Partition::Aws, "111111111111", "a/b", "X").to_string(),
            "arn:aws:iam::111111111111:role/a/b/X"
        );
    }

    #[test]
    fn resources_with_colons_and_empty_fields() {
        let a: Arn = "arn:aws:ecs:eu-west-1:123456789012:service/c1/s1"
            .parse()
            .unwrap();
        assert_eq!(a.region, "eu-west-1");
        let b: Arn = "arn:aws:s3:::my-bucket".parse().unwrap();
        assert_eq!((b.region.as_str(), b.account_id.as_str()), ("", ""));
        let c: Arn = "arn:aws:logs:us-east-1:123456789012:log-group:/x:*"
            .parse()
            .unwrap();
        assert_eq!(c.resource, "log-group:/x:*");
    }

    #[test]
    fn bad_arns_say_why() {
        for (text, why) in [
            ("role/x", "start with `arn:`"),
            ("arn:aws-iso:iam::123456789012:role/x", "unknown partition"),
            ("arn:aws:iam::12345:role/x", "12 digits"),
            ("arn:aws:iam::123456789012", "no resource"),
        ] {
            let e = text.parse::<Arn>().unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
        let e = parse_role_arn("arn:aws:s3:::bucket")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an IAM role ARN"), "{e}");
    }
}
