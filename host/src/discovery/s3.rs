//! S3 buckets and their home regions, everything about them discovery and
//! the session need: Cloud Control answers `GetResource` for a bucket only
//! in its home region, and `ListResources` for `AWS::S3::Bucket` lists
//! every bucket of the account, whatever region it is asked in. This file
//! owns the rest of that story, so `discover.rs` and `session.rs` name S3
//! only through it:
//!
//! - [`read_in_home_region`]: which kind is listed once per account and
//!   read per home region (`discover.rs` plans its scopes from it);
//! - [`BucketHomes`]: one sync's bucket → home region table and its
//!   single-flight caches (`session.rs` keeps one in `AwsSync` and hands it
//!   out with `AwsSync::bucket_homes`, nothing more);
//! - [`Assignment`]: for one account's listing, the region each listed
//!   bucket is read (and its `GetResource` asked) in, or that it is homed
//!   outside the regions read; a home that cannot be found is an error
//!   ([`HomeUnknown`]) that fails the scopes, never a bucket dropped.
//!
//! No API says which region a bucket is homed in. `ListBuckets` filtered by
//! `bucket-region` answers it for a whole region in one call (per 10,000
//! buckets), so it is asked once per account and region; `GetBucketLocation`
//! is the per-bucket fallback for a bucket none of those lists has (created
//! meanwhile, or homed elsewhere).
//!
//! Plain SigV4-signed GETs through reqwest rather than the aws-sdk-s3 client.
//! Their URLs come only from aws-sdk-s3's endpoint resolver (the endpoint
//! rules refuse a region that is not a DNS label and percent-encode the
//! bucket), never from formatting config values into a string: a region
//! like `x@host:443/` must not turn into a request to `host`. The reqwest
//! client follows no redirects (`ClientFactory::reqwest`); S3's own 3xx
//! answers are read here. The request functions ([`bucket_region`],
//! [`buckets_in_region`]) neither pace nor retry: [`BucketHomes`] sends
//! them through the sync's `Caller`, like every other AWS call. Must not
//! decide scope statuses, emit items or read through Cloud Control (that is
//! `discover.rs` and `session.rs`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::Url;

use super::arn::Partition;
use super::call::{CallError, CallStats, ErrorClass, Target, class_of};
use super::config::is_region_of;
use super::session::{AccountCtx, AwsSync, Cells, cell};

pub const API: &str = "s3:GetBucketLocation";
pub const LIST_API: &str = "s3:ListBuckets";

/// The Cloud Control type of S3 buckets.
pub const BUCKET_KIND: &str = "AWS::S3::Bucket";

/// Whether discovery lists `kind` once per account and reads each listed
/// item in its home region, with one scope per region read (S3 buckets):
/// listed per region instead, every region would report every bucket.
pub fn read_in_home_region(kind: &str) -> bool {
    kind == BUCKET_KIND
}

/// One sync's bucket → home region table, filled as discovery asks: kept in
/// `AwsSync` so that every account's listing (and a retried one) asks each
/// region and each bucket once per sync, never again.
pub struct BucketHomes {
    /// For S3's own requests only (Cloud Control goes through the SDK).
    http: reqwest::Client,
    endpoint_url: Option<String>,
    /// (account, region) → the account's buckets homed there (`ListBuckets`).
    listed: Cells<(String, String), Arc<HashSet<String>>>,
    /// (account, bucket) → its home (`GetBucketLocation`), for buckets no list had.
    located: Cells<(String, String), String>,
}

impl std::fmt::Debug for BucketHomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketHomes")
            .field("endpoint_url", &self.endpoint_url)
            .finish_non_exhaustive()
    }
}

impl BucketHomes {
    /// `http` must follow no redirects (`ClientFactory::reqwest`): S3 names
    /// a bucket's region in a 3xx, which is the answer.
    pub fn new(http: reqwest::Client, endpoint_url: Option<&str>) -> Self {
        Self {
            http,
            endpoint_url: endpoint_url.map(str::to_string),
            listed: Mutex::default(),
            located: Mutex::default(),
        }
    }
}

/// Why a listed bucket cannot be given a region: its home is unknown, so no
/// region's scope of the listing can be called complete (the bucket might
/// be in any of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HomeUnknown {
    /// The lookup was refused: the scopes end denied, naming the bucket.
    Denied(CallError),
    /// Anything else: the scopes end failed with this text.
    Failed(String),
}

impl HomeUnknown {
    fn new(bucket: &str, e: CallError) -> Self {
        match e.class {
            ErrorClass::Denied => Self::Denied(CallError {
                message: format!("home region of bucket {bucket} unknown: {}", e.message),
                ..e
            }),
            _ => Self::Failed(format!("home region of bucket {bucket} unknown: {e}")),
        }
    }
}

/// Where one account's listed buckets are read: made once per listing,
/// asked once per listed bucket. Its calls count in `stats` (the listing
/// scope's).
pub struct Assignment<'a> {
    sync: &'a AwsSync,
    acct: &'a AccountCtx,
    /// The regions read, in the order their bucket lists are asked for.
    regions: &'a [String],
    stats: &'a CallStats,
}

impl<'a> Assignment<'a> {
    pub fn new(
        sync: &'a AwsSync,
        acct: &'a AccountCtx,
        regions: &'a [String],
        stats: &'a CallStats,
    ) -> Self {
        Self {
            sync,
            acct,
            regions,
            stats,
        }
    }

    /// The region `bucket` is read in (and its `GetResource` asked in): its
    /// home, when that is one of the regions read; `None` when it is homed
    /// in a region not read.
    pub async fn region_of(&self, bucket: &str) -> Result<Option<String>, HomeUnknown> {
        let home = self
            .home(bucket)
            .await
            .map_err(|e| HomeUnknown::new(bucket, e))?;
        Ok(self.regions.contains(&home).then_some(home))
    }

    /// A bucket's home region: found in the (cached) per-region bucket
    /// lists of the regions read, else asked with `GetBucketLocation`
    /// (cached too).
    async fn home(&self, bucket: &str) -> Result<String, CallError> {
        for region in self.regions {
            if self.buckets_in(region).await?.contains(bucket) {
                return Ok(region.clone());
            }
        }
        let (sync, acct) = (self.sync, self.acct);
        let homes = sync.bucket_homes();
        let c = cell(&homes.located, (acct.id().to_string(), bucket.to_string()));
        c.get_or_try_init(|| async {
            let partition = sync.partition();
            let target = Target {
                api: API,
                account_id: acct.id(),
                region: partition.default_region(),
            };
            sync.caller()
                .call(target, self.stats, true, || {
                    let creds = acct.cached_credentials().clone();
                    let http = homes.http.clone();
                    let endpoint = homes.endpoint_url.clone();
                    async move {
                        let c = creds.get().await?;
                        bucket_region(&http, endpoint.as_deref(), partition, &c, bucket).await
                    }
                })
                .await
        })
        .await
        .cloned()
    }

    /// The account's buckets homed in `region`, listed once per sync.
    async fn buckets_in(&self, region: &str) -> Result<Arc<HashSet<String>>, CallError> {
        let (sync, acct) = (self.sync, self.acct);
        let homes = sync.bucket_homes();
        let c = cell(&homes.listed, (acct.id().to_string(), region.to_string()));
        c.get_or_try_init(|| async {
            let partition = sync.partition();
            let target = Target {
                api: LIST_API,
                account_id: acct.id(),
                region,
            };
            let names = sync
                .caller()
                .call(target, self.stats, true, || {
                    let creds = acct.cached_credentials().clone();
                    let http = homes.http.clone();
                    let endpoint = homes.endpoint_url.clone();
                    async move {
                        let c = creds.get().await?;
                        buckets_in_region(&http, endpoint.as_deref(), partition, &c, region).await
                    }
                })
                .await?;
            Ok(Arc::new(names.into_iter().collect()))
        })
        .await
        .cloned()
    }
}

/// The URL S3's endpoint rules give for a request in `region` (to `bucket`,
/// path-style, when given): the operator's `endpoint_url` (the emulator) or
/// the regional endpoint of the region's partition.
pub async fn endpoint(
    api: &'static str,
    endpoint_url: Option<&str>,
    region: &str,
    bucket: Option<&str>,
) -> Result<Url, CallError> {
    let fatal = |code: &str, m: String| CallError::new(ErrorClass::Fatal, api, code, m);
    // The rules refuse a region that is not a host label but accept dotted
    // ones (`us-east-1.x` stays under the partition's domain); only region
    // names are asked for here.
    if !Partition::ALL.iter().any(|p| is_region_of(*p, region)) {
        return Err(fatal(
            "InvalidRegion",
            format!("{region:.64?} is not an AWS region name"),
        ));
    }
    if let Some(b) = bucket
        && !is_bucket_name(b)
    {
        return Err(fatal(
            "InvalidBucketName",
            format!("{b:?} is not an S3 bucket name"),
        ));
    }
    let params = Params::builder()
        .region(region)
        .use_fips(false)
        .use_dual_stack(false)
        .accelerate(false)
        // Path-style: bucket names with dots keep a valid certificate, and
        // the emulator is one address for every bucket.
        .force_path_style(true)
        .set_endpoint(endpoint_url.map(str::to_string))
        .set_bucket(bucket.map(str::to_string))
        .build()
        .map_err(|e| fatal("Endpoint", e.to_string()))?;
    let resolved = ResolveEndpoint::resolve_endpoint(&DefaultResolver::new(), &params)
        .await
        .map_err(|e| {
            fatal(
                "Endpoint",
                format!("no S3 endpoint for region {region:?}: {e}"),
            )
        })?;
    Url::parse(resolved.url())
        .map_err(|e| fatal("Endpoint", format!("S3 endpoint {}: {e}", resolved.url())))
}

/// Bucket names as S3 has allowed them (legacy names included: upper case
/// and underscores); nothing that could read as a path, query, port or ARN.
fn is_bucket_name(b: &str) -> bool {
    (1..=255).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
}

/// A SigV4-signed GET; the status, the `x-amz-bucket-region` header and the body.
async fn signed_get(
    api: &'static str,
    http: &reqwest::Client,
    url: &Url,
    region: &str,
    creds: &Credentials,
) -> Result<(u16, Option<String>, String), CallError> {
    let err = |class, code: &str, m: String| CallError::new(class, api, code, m);
    let identity: Identity = creds.clone().into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| err(ErrorClass::Fatal, "Signing", e.to_string()))?
        .into();
    // The Host header reqwest sends: the port only when not the scheme's default.
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => {
            return Err(err(
                ErrorClass::Fatal,
                "Endpoint",
                format!("no host in {url}"),
            ));
        }
    };
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::once(("host", host.as_str())),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| err(ErrorClass::Fatal, "Signing", e.to_string()))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| err(ErrorClass::Fatal, "Signing", e.to_string()))?
        .into_parts();
    let mut req = http.get(url.clone());
    for (name, value) in instructions.headers() {
        req = req.header(name, value);
    }
    let resp = req.send().await.map_err(|e| {
        // Said once, without reqwest's own copy of the URL; `Caller::call` names where.
        let code = if e.is_connect() || e.is_timeout() {
            super::call::UNREACHABLE
        } else {
            "RequestFailed"
        };
        err(
            ErrorClass::Transient,
            code,
            crate::error_text::cause(&e.without_url()),
        )
    })?;
    let status = resp.status().as_u16();
    let home = resp
        .headers()
        .get("x-amz-bucket-region")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.text().await.map_err(|e| {
        err(
            ErrorClass::Transient,
            "ResponseError",
            crate::error_text::cause(&e.without_url()),
        )
    })?;
    Ok((status, home, body))
}

fn error_answer(api: &'static str, status: u16, body: &str) -> CallError {
    let code = xml_text(body, "Code").unwrap_or_default();
    let message = xml_text(body, "Message").unwrap_or_else(|| format!("HTTP {status}"));
    CallError::new(
        class_of(&code, Some(status)),
        api,
        if code.is_empty() { "HTTP" } else { &code },
        message,
    )
}

/// The home region of `bucket`, asked in the partition's default region.
pub async fn bucket_region(
    http: &reqwest::Client,
    endpoint_url: Option<&str>,
    partition: Partition,
    creds: &Credentials,
    bucket: &str,
) -> Result<String, CallError> {
    let region = partition.default_region();
    let mut url = endpoint(API, endpoint_url, region, Some(bucket)).await?;
    url.set_query(Some("location"));
    let (status, home, body) = signed_get(API, http, &url, region, creds).await?;
    let bad = |m: String| CallError::new(ErrorClass::Fatal, API, "BadResponse", m);
    let found = if let Some(r) = home
        && (300..400).contains(&status)
    {
        // A redirect names the region in a header; that is the answer.
        r
    } else if status == 200 {
        parse_location(&body, partition)
            .ok_or_else(|| bad(format!("unexpected GetBucketLocation answer: {body:.200}")))?
    } else {
        return Err(error_answer(API, status, &body));
    };
    // The answer becomes part of hostnames too (Cloud Control in that region).
    if !is_region_of(partition, &found) {
        return Err(bad(format!(
            "GetBucketLocation named {found:.64?}, not a region of the {partition} partition"
        )));
    }
    Ok(found)
}

/// The names of the account's buckets homed in `region` (`ListBuckets`
/// with `bucket-region`, following continuation tokens).
pub async fn buckets_in_region(
    http: &reqwest::Client,
    endpoint_url: Option<&str>,
    partition: Partition,
    creds: &Credentials,
    region: &str,
) -> Result<Vec<String>, CallError> {
    if !is_region_of(partition, region) {
        return Err(CallError::new(
            ErrorClass::Fatal,
            LIST_API,
            "InvalidRegion",
            format!("{region:.64?} is not a region of the {partition} partition"),
        ));
    }
    let mut base = endpoint(LIST_API, endpoint_url, region, None).await?;
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut query = format!("bucket-region={}", percent_encode(region));
        if let Some(t) = &token {
            query.push_str("&continuation-token=");
            query.push_str(&percent_encode(t));
        }
        let mut url = base.clone();
        url.set_query(Some(&query));
        let (status, _, body) = signed_get(LIST_API, http, &url, region, creds).await?;
        if status != 200 {
            return Err(error_answer(LIST_API, status, &body));
        }
        if !body.contains("<ListAllMyBucketsResult") {
            return Err(CallError::new(
                ErrorClass::Fatal,
                LIST_API,
                "BadResponse",
                format!("unexpected ListBuckets answer: {body:.200}"),
            ));
        }
        names.extend(bucket_names(&body));
        token = xml_text(&body, "ContinuationToken").filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(names);
        }
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `<Name>` of every `<Bucket>`.
fn bucket_names(body: &str) -> Vec<String> {
    body.split("<Bucket>")
        .skip(1)
        .filter_map(|b| xml_text(b, "Name"))
        .collect()
}

/// `<LocationConstraint>eu-west-1</LocationConstraint>`; empty means the
/// partition's first region, `EU` the legacy name of eu-west-1.
pub fn parse_location(body: &str, partition: Partition) -> Option<String> {
    if !body.contains("<LocationConstraint") {
        return None;
    }
    let v = xml_text(body, "LocationConstraint").unwrap_or_default();
    Some(match v.as_str() {
        "" => partition.default_region().to_string(),
        "EU" => "eu-west-1".to_string(),
        r => r.to_string(),
    })
}

fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = body.find(&format!("<{tag}"))?;
    let rest = &body[open..];
    let gt = rest.find('>')?;
    if rest[..gt].ends_with('/') {
        return Some(String::new());
    }
    let inner = &rest[gt + 1..];
    let end = inner.find(&format!("</{tag}>"))?;
    Some(inner[..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_location_answers() {
        let ns = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
        let a = format!(
            r#"{ns}<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-west-1</LocationConstraint>"#
        );
        assert_eq!(
            parse_location(&a, Partition::Aws).as_deref(),
            Some("eu-west-1")
        );
        let empty = r#"<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>"#;
        assert_eq!(
            parse_location(empty, Partition::Aws).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            parse_location(empty, Partition::AwsCn).as_deref(),
            Some("cn-north-1")
        );
        let eu = "<LocationConstraint>EU</LocationConstraint>";
        assert_eq!(
            parse_location(eu, Partition::Aws).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(parse_location("<Error/>", Partition::Aws), None);
        let e = "<Error><Code>AccessDenied</Code><Message>no</Message></Error>";
        let l = "<ListAllMyBucketsResult><Owner><ID>x</ID></Owner><Buckets><Bucket><Name>a.b</Name>\
                 <CreationDate>2024</CreationDate></Bucket><Bucket><Name>c</Name></Bucket></Buckets>\
                 <ContinuationToken>t/1=</ContinuationToken></ListAllMyBucketsResult>";
        assert_eq!(bucket_names(l), vec!["a.b", "c"]);
        assert_eq!(xml_text(l, "ContinuationToken").as_deref(), Some("t/1="));
        assert_eq!(percent_encode("t/1="), "t%2F1%3D");
        assert_eq!(xml_text(e, "Code").as_deref(), Some("AccessDenied"));
    }

    /// A bucket whose home cannot be found fails (or denies) the scopes,
    /// and the status says which bucket.
    #[test]
    fn unknown_homes_name_the_bucket_and_keep_denials() {
        let denied = CallError::new(ErrorClass::Denied, LIST_API, "AccessDenied", "no");
        match HomeUnknown::new("b-1", denied) {
            HomeUnknown::Denied(e) => {
                assert_eq!(e.class, ErrorClass::Denied);
                assert_eq!(e.message, "home region of bucket b-1 unknown: no");
                assert_eq!(e.code, "AccessDenied");
            }
            other => panic!("{other:?}"),
        }
        let slow = CallError::new(ErrorClass::Throttled, API, "SlowDown", "later");
        assert_eq!(
            HomeUnknown::new("b-2", slow),
            HomeUnknown::Failed(
                "home region of bucket b-2 unknown: s3:GetBucketLocation: SlowDown: later".into()
            )
        );
        assert!(read_in_home_region("AWS::S3::Bucket"));
        assert!(!read_in_home_region("AWS::S3::AccessPoint"));
    }

    #[tokio::test]
    async fn urls_come_from_the_endpoint_rules() {
        let url = |e: Option<&'static str>, r: &'static str, b: Option<&'static str>| async move {
            endpoint(API, e, r, b).await.map(|u| u.to_string())
        };
        assert_eq!(
            url(None, "eu-west-1", None).await.unwrap(),
            "https://s3.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            url(None, "us-east-1", Some("a.b-c")).await.unwrap(),
            "https://s3.us-east-1.amazonaws.com/a.b-c"
        );
        assert_eq!(
            url(None, "cn-north-1", Some("b")).await.unwrap(),
            "https://s3.cn-north-1.amazonaws.com.cn/b"
        );
        assert_eq!(
            url(Some("http://127.0.0.1:5000"), "eu-west-1", Some("b"))
                .await
                .unwrap(),
            "http://127.0.0.1:5000/b"
        );
        assert_eq!(
            url(Some("http://127.0.0.1:5000/"), "eu-west-1", None)
                .await
                .unwrap(),
            "http://127.0.0.1:5000/"
        );
        // Neither a region nor a bucket can name another host.
        for r in ["x@127.0.0.1:9/", "us-east-1.evil.example", "a/b"] {
            assert!(url(None, r, None).await.is_err(), "{r}");
        }
        for b in ["x@127.0.0.1:9", "a/../b", "arn:aws:s3:::b", "b?x", ""] {
            assert!(url(None, "us-east-1", Some(b)).await.is_err(), "{b}");
        }
    }
}
