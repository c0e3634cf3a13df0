//! Which accounts and regions a sync reads: Organizations `ListAccounts`
//! (ACTIVE only) or OU recursion, each account's enabled regions
//! (`account:ListRegions`), and the raw items of `AWS::Organizations::Account`.
//!
//! Owns: the listing calls (paged at the largest page AWS allows, declared in
//! `crate::limits`; paced and retried through [`Caller`]) and
//! the account object's JSON shape. Must not assume roles (that is
//! `credentials`) or decide what a failure means for a sync (`session`).

use std::collections::BTreeSet;

use aws_sdk_account::types::RegionOptStatus;
use aws_sdk_organizations::types::{AccountState, AccountStatus, ChildType};
use serde_json::{Map, Value, json};

use super::call::{CallError, CallStats, Caller, Target, sdk};
use crate::limits::{AWS_LIST_REGIONS_MAX_PAGE_SIZE, AWS_ORGANIZATIONS_MAX_PAGE_SIZE};

/// An organization member, as `ListAccounts` describes it, in the JSON shape
/// Ocean's mappings read (`.Id`, `.Name`, `.JoinedTimestamp`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct OrgAccount {
    pub id: String,
    pub name: Option<String>,
    pub json: Map<String, Value>,
}

#[allow(deprecated)] // `Status` is deprecated in favour of `State`; moto and older orgs send only `Status`.
fn to_org_account(a: &aws_sdk_organizations::types::Account) -> Option<OrgAccount> {
    let active = match (a.state(), a.status()) {
        (Some(s), _) => *s == AccountState::Active,
        (None, Some(s)) => *s == AccountStatus::Active,
        (None, None) => false,
    };
    if !active {
        return None;
    }
    let id = a.id()?.to_string();
    let mut m = Map::new();
    m.insert("Id".into(), json!(id));
    m.insert("Arn".into(), json!(a.arn()));
    m.insert("Email".into(), json!(a.email()));
    m.insert("Name".into(), json!(a.name()));
    m.insert(
        "Status".into(),
        json!(
            a.status()
                .map(|s| s.as_str())
                .or(a.state().map(|_| "ACTIVE"))
        ),
    );
    if let Some(s) = a.state() {
        m.insert("State".into(), json!(s.as_str()));
    }
    m.insert(
        "JoinedMethod".into(),
        json!(a.joined_method().map(|j| j.as_str())),
    );
    m.insert(
        "JoinedTimestamp".into(),
        json!(a.joined_timestamp().map(python_datetime)),
    );
    Some(OrgAccount {
        id,
        name: a.name().map(str::to_string),
        json: m,
    })
}

/// A timestamp as Ocean's items carry it (Python's `str(datetime)`:
/// `2024-05-01 12:00:00.123000+00:00`), which the default mapping turns
/// into ISO with `sub(" "; "T")`.
///
/// AWS sends epoch seconds as a JSON number (`1714564800.123`, really
/// `…800.12299990654` as a float) and botocore makes a datetime of it with
/// `datetime.fromtimestamp`, which rounds to the microsecond: `.123000`.
/// The SDK split the same float into seconds and truncated nanoseconds;
/// adding them back gives that float again (what truncation dropped is under
/// a nanosecond, less than half the float's spacing for any date after
/// mid-1970), and Python's rounding is then redone on it.
pub fn python_datetime(t: &aws_smithy_types::DateTime) -> String {
    let (secs, micros) = python_fromtimestamp(t.as_secs_f64());
    let iso = aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    // iso: 2024-05-01T12:00:00Z (whole seconds)
    let body = iso.trim_end_matches('Z').replacen('T', " ", 1);
    if micros == 0 {
        format!("{body}+00:00")
    } else {
        format!("{body}.{micros:06}+00:00")
    }
}

/// CPython's `datetime.fromtimestamp` split of a float into seconds and
/// microseconds (`_PyTime_ObjectToTimeval`, round half to even): the
/// fraction is scaled to microseconds in floating point, rounded, and a
/// rounding that reaches a whole second carries into the seconds.
fn python_fromtimestamp(t: f64) -> (i64, u32) {
    let whole = t.trunc();
    let mut micros = ((t - whole) * 1e6).round_ties_even();
    let mut secs = whole as i64;
    if micros >= 1e6 {
        secs += 1;
        micros -= 1e6;
    } else if micros < 0.0 {
        secs -= 1;
        micros += 1e6;
    }
    (secs, micros as u32)
}

/// The raw item of one account for `AWS::Organizations::Account`.
pub fn account_item(a: &OrgAccount, region: &str, management_account: &str) -> Value {
    let mut m = a.json.clone();
    m.insert("Identifier".into(), json!(a.id));
    m.insert("Properties".into(), Value::Object(a.json.clone()));
    m.insert("__Kind".into(), json!("AWS::Organizations::Account"));
    m.insert("__Region".into(), json!(region));
    m.insert("__AccountId".into(), json!(management_account));
    Value::Object(m)
}

/// Every ACTIVE account of the organization.
pub async fn list_accounts(
    caller: &Caller,
    stats: &CallStats,
    org: &aws_sdk_organizations::Client,
    mgmt: &str,
    region: &str,
) -> Result<Vec<OrgAccount>, CallError> {
    const API: &str = "organizations:ListAccounts";
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let t = token.clone();
        let page = caller
            .call(
                Target {
                    api: API,
                    account_id: mgmt,
                    region,
                },
                stats,
                true,
                || {
                    sdk(
                        API,
                        org.list_accounts()
                            .set_next_token(t.clone())
                            .max_results(AWS_ORGANIZATIONS_MAX_PAGE_SIZE)
                            .send(),
                    )
                },
            )
            .await?;
        out.extend(page.accounts().iter().filter_map(to_org_account));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Every ACTIVE account under the given OUs (or roots), recursively.
pub async fn list_accounts_under(
    caller: &Caller,
    stats: &CallStats,
    org: &aws_sdk_organizations::Client,
    mgmt: &str,
    region: &str,
    parents: &[String],
) -> Result<Vec<OrgAccount>, CallError> {
    const ACCOUNTS: &str = "organizations:ListAccountsForParent";
    const CHILDREN: &str = "organizations:ListChildren";
    let mut seen_ous: BTreeSet<String> = BTreeSet::new();
    let mut seen_accounts: BTreeSet<String> = BTreeSet::new();
    let mut queue: Vec<String> = parents.to_vec();
    let mut out = Vec::new();
    while let Some(parent) = queue.pop() {
        if !seen_ous.insert(parent.clone()) {
            continue;
        }
        let mut token: Option<String> = None;
        loop {
            let t = token.clone();
            let p = parent.clone();
            let page = caller
                .call(
                    Target {
                        api: ACCOUNTS,
                        account_id: mgmt,
                        region,
                    },
                    stats,
                    true,
                    || {
                        sdk(
                            ACCOUNTS,
                            org.list_accounts_for_parent()
                                .parent_id(p.clone())
                                .set_next_token(t.clone())
                                .max_results(AWS_ORGANIZATIONS_MAX_PAGE_SIZE)
                                .send(),
                        )
                    },
                )
                .await?;
            for a in page.accounts().iter().filter_map(to_org_account) {
                if seen_accounts.insert(a.id.clone()) {
                    out.push(a);
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut token: Option<String> = None;
        loop {
            let t = token.clone();
            let p = parent.clone();
            let page = caller
                .call(
                    Target {
                        api: CHILDREN,
                        account_id: mgmt,
                        region,
                    },
                    stats,
                    true,
                    || {
                        sdk(
                            CHILDREN,
                            org.list_children()
                                .parent_id(p.clone())
                                .child_type(ChildType::OrganizationalUnit)
                                .set_next_token(t.clone())
                                .max_results(AWS_ORGANIZATIONS_MAX_PAGE_SIZE)
                                .send(),
                        )
                    },
                )
                .await?;
            queue.extend(
                page.children()
                    .iter()
                    .filter_map(|c| c.id().map(str::to_string)),
            );
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The account's enabled regions (`ENABLED` and `ENABLED_BY_DEFAULT`).
pub async fn enabled_regions(
    caller: &Caller,
    stats: &CallStats,
    client: &aws_sdk_account::Client,
    account_id: &str,
    region: &str,
) -> Result<Vec<String>, CallError> {
    const API: &str = "account:ListRegions";
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let t = token.clone();
        let page = caller
            .call(
                Target {
                    api: API,
                    account_id,
                    region,
                },
                stats,
                true,
                || {
                    sdk(
                        API,
                        client
                            .list_regions()
                            .region_opt_status_contains(RegionOptStatus::Enabled)
                            .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
                            .set_next_token(t.clone())
                            .max_results(AWS_LIST_REGIONS_MAX_PAGE_SIZE)
                            .send(),
                    )
                },
            )
            .await?;
        out.extend(
            page.regions()
                .iter()
                .filter_map(|r| r.region_name().map(str::to_string)),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_pythons() {
        let t = aws_smithy_types::DateTime::from_secs(1_714_564_800);
        assert_eq!(python_datetime(&t), "2024-05-01 12:00:00+00:00");
        let t = aws_smithy_types::DateTime::from_millis(1_714_564_800_123);
        assert_eq!(python_datetime(&t), "2024-05-01 12:00:00.123000+00:00");
    }

    /// `(JSON number as AWS sends it, Python's str(datetime))`. The right-hand
    /// sides were printed on this machine by CPython 3.11 (botocore 1.43's
    /// `parse_timestamp` gives the same for a float):
    /// `python3 -c "from datetime import datetime,timezone; print(str(datetime.fromtimestamp(V, timezone.utc)))"`.
    const PYTHON_JOINED: &[(&str, &str)] = &[
        // Milliseconds, as Organizations sends them; truncation gave .122999.
        ("1714564800.123", "2024-05-01 12:00:00.123000+00:00"),
        ("1714564800.001", "2024-05-01 12:00:00.001000+00:00"),
        ("1700000000.007", "2023-11-14 22:13:20.007000+00:00"),
        ("1262304000.001", "2010-01-01 00:00:00.001000+00:00"),
        ("1714564800.999", "2024-05-01 12:00:00.999000+00:00"),
        ("1609459199.999", "2020-12-31 23:59:59.999000+00:00"),
        ("1546300800.256", "2019-01-01 00:00:00.256000+00:00"),
        ("1714564800.5", "2024-05-01 12:00:00.500000+00:00"),
        ("1714564800", "2024-05-01 12:00:00+00:00"),
        // Microseconds, as moto (the emulator) sends them; truncation gave
        // .744282 and .000000 for the first two.
        ("1796536960.744283", "2026-12-06 06:02:40.744283+00:00"),
        ("1714564800.000001", "2024-05-01 12:00:00.000001+00:00"),
        ("1714564800.123456", "2024-05-01 12:00:00.123456+00:00"),
        ("1714564800.999999", "2024-05-01 12:00:00.999999+00:00"),
        // Rounding that carries into the next second.
        ("1714564799.9999998", "2024-05-01 12:00:00+00:00"),
        ("1714564800.9999995", "2024-05-01 12:00:01+00:00"),
        // Exact halves (k/128 is exact in binary): Python rounds half to even.
        ("1714564800.0078125", "2024-05-01 12:00:00.007812+00:00"),
        ("1714564800.0234375", "2024-05-01 12:00:00.023438+00:00"),
    ];

    #[test]
    fn epoch_floats_round_to_the_microsecond_like_python() {
        let wrong: Vec<String> = PYTHON_JOINED
            .iter()
            .filter_map(|(number, python)| {
                // What aws-smithy-json does with an epoch-seconds number.
                let t = aws_smithy_types::DateTime::from_secs_f64(number.parse().unwrap());
                let ours = python_datetime(&t);
                (ours != *python).then(|| format!("{number}: {ours}, Python {python}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// The same values through the SDK's own ListAccounts deserializer, from
    /// a body shaped like Organizations' (awsJson1_1, epoch-seconds numbers).
    #[tokio::test]
    async fn list_accounts_joined_timestamps_match_ocean() {
        let accounts: Vec<String> = PYTHON_JOINED
            .iter()
            .enumerate()
            .map(|(i, (number, _))| {
                format!(
                    r#"{{"Id":"{:012}","Name":"m{i}","Status":"ACTIVE","State":"ACTIVE","JoinedMethod":"CREATED","JoinedTimestamp":{number}}}"#,
                    100_000_000_000u64 + i as u64
                )
            })
            .collect();
        let body = format!(r#"{{"Accounts":[{}]}}"#, accounts.join(","));
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || async move {
                (
                    [("content-type", "application/x-amz-json-1.1")],
                    body.clone(),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let conf = aws_sdk_organizations::Config::builder()
            .behavior_version(aws_sdk_organizations::config::BehaviorVersion::latest())
            .region(aws_sdk_organizations::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKID", "secret", None, None, "test",
            ))
            .endpoint_url(format!("http://{addr}"))
            .build();
        let org = aws_sdk_organizations::Client::from_conf(conf);
        let page = org.list_accounts().send().await.unwrap();
        server.abort();
        let got: Vec<Value> = page
            .accounts()
            .iter()
            .filter_map(to_org_account)
            .map(|a| a.json["JoinedTimestamp"].clone())
            .collect();
        let want: Vec<Value> = PYTHON_JOINED.iter().map(|(_, p)| json!(p)).collect();
        assert_eq!(got, want);
    }

    #[test]
    #[allow(deprecated)]
    fn account_items_carry_the_object_at_top_level() {
        let a = aws_sdk_organizations::types::Account::builder()
            .id("111111111111")
            .name("Member 0")
            .email("m@example.com")
            .arn("arn:aws:organizations::123456789012:account/o-x/111111111111")
            .status(AccountStatus::Active)
            .joined_method(aws_sdk_organizations::types::AccountJoinedMethod::Created)
            .joined_timestamp(aws_smithy_types::DateTime::from_secs(0))
            .build();
        let oa = to_org_account(&a).unwrap();
        let item = account_item(&oa, "us-east-1", "123456789012");
        assert_eq!(item["Id"], "111111111111");
        assert_eq!(item["Identifier"], "111111111111");
        assert_eq!(item["Properties"]["Name"], "Member 0");
        assert_eq!(item["Status"], "ACTIVE");
        assert_eq!(item["JoinedTimestamp"], "1970-01-01 00:00:00+00:00");
        assert_eq!(item["__AccountId"], "123456789012");
        let suspended = aws_sdk_organizations::types::Account::builder()
            .id("222222222222")
            .status(AccountStatus::Suspended)
            .build();
        assert!(to_org_account(&suspended).is_none());
    }
}
