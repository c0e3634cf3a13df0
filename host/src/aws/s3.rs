//! S3 buckets' home regions: Cloud Control answers `GetResource` for a
//! bucket only in its home region and has no API that says which region
//! that is. `ListBuckets` filtered by `bucket-region` answers it for a whole
//! region in one call (per 10,000 buckets), so discovery asks that once per
//! account and region; `GetBucketLocation` is the per-bucket fallback for a
//! bucket none of those lists has (created meanwhile, or homed elsewhere).
//!
//! Plain SigV4-signed GETs through reqwest instead of aws-sdk-s3 (minutes of
//! compile time for two calls). Owns the requests, signing and the answers'
//! parsing. Must not pace or retry (callers go through `Caller`).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::arn::Partition;
use super::call::{CallError, ErrorClass, class_of};

pub const API: &str = "s3:GetBucketLocation";
pub const LIST_API: &str = "s3:ListBuckets";

fn base_url(endpoint_url: Option<&str>, partition: Partition, region: &str) -> String {
    match endpoint_url {
        Some(e) => e.trim_end_matches('/').to_string(),
        None => format!("https://s3.{region}.{}", partition.dns_suffix()),
    }
}

/// A SigV4-signed GET; the status, the `x-amz-bucket-region` header and the body.
async fn signed_get(
    api: &'static str,
    http: &reqwest::Client,
    url: &str,
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
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
        .to_string();
    let signable = SignableRequest::new(
        "GET",
        url,
        std::iter::once(("host", host.as_str())),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| err(ErrorClass::Fatal, "Signing", e.to_string()))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| err(ErrorClass::Fatal, "Signing", e.to_string()))?
        .into_parts();
    let mut req = http.get(url);
    for (name, value) in instructions.headers() {
        req = req.header(name, value);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| err(ErrorClass::Transient, "DispatchFailure", format!("{e}")))?;
    let status = resp.status().as_u16();
    let home = resp
        .headers()
        .get("x-amz-bucket-region")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp
        .text()
        .await
        .map_err(|e| err(ErrorClass::Transient, "ResponseError", e.to_string()))?;
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
    let url = format!(
        "{}/{bucket}?location",
        base_url(endpoint_url, partition, region)
    );
    let (status, home, body) = signed_get(API, http, &url, region, creds).await?;
    // A redirect names the region in a header; that is the answer.
    if let Some(r) = home
        && (300..400).contains(&status)
    {
        return Ok(r);
    }
    if status == 200 {
        return parse_location(&body, partition).ok_or_else(|| {
            CallError::new(
                ErrorClass::Fatal,
                API,
                "BadResponse",
                format!("unexpected GetBucketLocation answer: {body:.200}"),
            )
        });
    }
    Err(error_answer(API, status, &body))
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
    let base = base_url(endpoint_url, partition, region);
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("{base}/?bucket-region={region}");
        if let Some(t) = &token {
            url.push_str("&continuation-token=");
            url.push_str(&percent_encode(t));
        }
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
}
