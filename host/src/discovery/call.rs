//! Every AWS call goes through here: the bucket's pace, the tenant's bound
//! on calls in flight, a timeout, and retries of throttles and transient
//! failures, each counted against the scope that made the call.
//!
//! The SDK clients are built with retries off (`clients.rs`) so that every
//! throttle reaches this loop and the adaptive limiter; otherwise the SDK's
//! own retries hide them and the limiter never learns.
//!
//! Owns: [`CallError`] and its [`ErrorClass`] (what an SDK error means for
//! discovery), the one-line text of an SDK error (its causes walked and said
//! once, never the SDK's `Debug` structures), [`CallStats`], and
//! [`Caller::call`]. Must not know which API it calls beyond its name.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::sync::Semaphore;

use super::limiter::Limiter;
use super::limits::AwsLimits;

/// What a failed call means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Rate exceeded: retried, never taken for an empty answer.
    Throttled,
    /// AccessDenied and the like: the scope is marked denied.
    Denied,
    /// The resource (or parent) does not exist.
    NotFound,
    /// Organizations is not enabled for this account.
    NotInOrganization,
    /// 5xx, timeout, connection failure, expired credentials: retried.
    Transient,
    /// Anything else (bad request, unknown type): the scope fails.
    Fatal,
}

/// The code of a call that got no answer (connection refused or reset, DNS, TLS, timeout
/// while connecting). Its message is the cause, and, once [`Caller::call`] gave up, the
/// service and endpoint it could not reach.
pub const UNREACHABLE: &str = "Unreachable";

/// A failed AWS call. Shown as `api: code: message`, or `api: message` when AWS was not
/// reached (the message says where and why).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{api}: {}{message}", if code == UNREACHABLE { String::new() } else { format!("{code}: ") })]
pub struct CallError {
    pub class: ErrorClass,
    pub api: &'static str,
    pub code: String,
    pub message: String,
}

impl CallError {
    pub fn new(
        class: ErrorClass,
        api: &'static str,
        code: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            class,
            api,
            code: code.into(),
            message: message.into(),
        }
    }
}

/// The error class of an AWS error code (and HTTP status).
pub fn class_of(code: &str, status: Option<u16>) -> ErrorClass {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "SlowDown"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "ProvisionedThroughputExceededException"
        | "PriorRequestNotComplete" => ErrorClass::Throttled,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "UnauthorizedAccess"
        | "AuthorizationError"
        | "AuthFailure"
        | "OptInRequired"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId" => ErrorClass::Denied,
        "ResourceNotFoundException"
        | "NotFound"
        | "NoSuchBucket"
        | "ClusterNotFoundException"
        | "AccountNotFoundException"
        | "ParentNotFoundException" => ErrorClass::NotFound,
        "AWSOrganizationsNotInUseException" => ErrorClass::NotInOrganization,
        "ExpiredToken"
        | "ExpiredTokenException"
        | "RequestExpired"
        | "InternalFailure"
        | "InternalError"
        | "InternalServerError"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "ServiceException"
        | "ServiceInternalException"
        | "NetworkFailureException"
        | "IDPCommunicationError"
        | "RequestTimeout"
        | "RequestTimeoutException" => ErrorClass::Transient,
        _ => match status {
            Some(429) => ErrorClass::Throttled,
            Some(s) if s >= 500 && s != 501 => ErrorClass::Transient,
            _ => ErrorClass::Fatal,
        },
    }
}

/// Turn an SDK error into a [`CallError`].
pub fn from_sdk<E>(api: &'static str, err: SdkError<E, HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match &err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let code = err.code().unwrap_or("").to_string();
            let message = err
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| crate::error_text::chain(&err));
            let class = class_of(&code, status);
            let code = if code.is_empty() {
                status.map_or_else(|| "Unknown".to_string(), |s| format!("HTTP {s}"))
            } else {
                code
            };
            CallError {
                class,
                api,
                code,
                message,
            }
        }
        SdkError::TimeoutError(_) => CallError::new(
            ErrorClass::Transient,
            api,
            "Timeout",
            crate::error_text::chain(&err),
        ),
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => CallError::new(
            ErrorClass::Transient,
            api,
            UNREACHABLE,
            crate::error_text::cause(&err),
        ),
        _ => {
            // Failures before a response: credentials that could not be had (an
            // assumed role refused shows up here), and requests that could not be
            // built or sent for other reasons.
            let text = crate::error_text::chain(&err);
            if text.contains("AccessDenied") || text.contains("not authorized") {
                CallError::new(ErrorClass::Denied, api, "AccessDenied", text)
            } else if matches!(err, SdkError::ConstructionFailure(_))
                && !text.contains("credentials")
            {
                CallError::new(ErrorClass::Fatal, api, "ConstructionFailure", text)
            } else {
                CallError::new(ErrorClass::Transient, api, "RequestFailed", text)
            }
        }
    }
}

/// Await an SDK call and turn its error into a [`CallError`]; the shape
/// [`Caller::call`]'s closures return: `|| sdk(API, client.op().send())`.
pub async fn sdk<T, E>(
    api: &'static str,
    fut: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, CallError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fut.await.map_err(|e| from_sdk(api, e))
}

/// Calls, retries and throttles of one scope (or of set-up work).
#[derive(Debug, Default)]
pub struct CallStats {
    pub calls: AtomicU64,
    pub retries: AtomicU64,
    pub throttles: AtomicU64,
    /// Calls counted here are plugins' lookups, which take no in-flight slot (see
    /// `AwsSync::bounded`).
    pub lookups: bool,
}

/// A copy of [`CallStats`] for reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallCounts {
    pub calls: u64,
    pub retries: u64,
    pub throttles: u64,
}

impl CallStats {
    /// Stats for plugins' lookups.
    pub fn for_lookups() -> Self {
        Self {
            lookups: true,
            ..Self::default()
        }
    }

    pub fn counts(&self) -> CallCounts {
        CallCounts {
            calls: self.calls.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            throttles: self.throttles.load(Ordering::Relaxed),
        }
    }
}

impl std::ops::AddAssign for CallCounts {
    fn add_assign(&mut self, o: Self) {
        self.calls += o.calls;
        self.retries += o.retries;
        self.throttles += o.throttles;
    }
}

/// Where a call is made.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub api: &'static str,
    pub account_id: &'a str,
    pub region: &'a str,
}

/// Makes calls for one tenant.
#[derive(Debug, Clone)]
pub struct Caller {
    pub limiter: Arc<Limiter>,
    pub in_flight: Arc<Semaphore>,
    pub limits: Arc<AwsLimits>,
    /// The endpoint override (`aws.endpointUrl`), named when AWS cannot be reached.
    pub endpoint_url: Option<Arc<str>>,
}

impl Caller {
    pub fn new(limits: Arc<AwsLimits>, limiter: Arc<Limiter>) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
            limiter,
            limits,
            endpoint_url: None,
        }
    }

    /// Names `endpoint_url` (every service's endpoint, when set) in unreachable errors.
    pub fn with_endpoint(mut self, endpoint_url: Option<&str>) -> Self {
        self.endpoint_url = endpoint_url.map(Arc::from);
        self
    }

    /// Where `target` is called, for a user: `AWS STS at http://127.0.0.1:5000` with an
    /// endpoint override, else `AWS STS in us-east-1` (the SDK's own endpoint for the region).
    pub fn describe(&self, target: &Target<'_>) -> String {
        let service = service_name(target.api);
        match &self.endpoint_url {
            Some(url) => format!("{service} at {url}"),
            None => format!("{service} in {}", target.region),
        }
    }

    /// Make the call `f` (again on retries) at `target`'s pace.
    /// `bounded`: take one of the tenant's in-flight slots; credential
    /// fetches pass `false`, because they run inside other calls that
    /// already hold one (taking a second could deadlock).
    pub async fn call<T, F, Fut>(
        &self,
        target: Target<'_>,
        stats: &CallStats,
        bounded: bool,
        mut f: F,
    ) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let bucket = self
            .limiter
            .bucket(target.api, target.account_id, target.region);
        let (mut failures, mut throttles) = (0u32, 0u32);
        loop {
            bucket.wait().await;
            let permit = if bounded {
                Some(
                    self.in_flight
                        .acquire()
                        .await
                        .expect("semaphore never closed"),
                )
            } else {
                None
            };
            stats.calls.fetch_add(1, Ordering::Relaxed);
            let r = match tokio::time::timeout(self.limits.call_timeout, f()).await {
                Ok(r) => r,
                Err(_) => Err(CallError::new(
                    ErrorClass::Transient,
                    target.api,
                    "Timeout",
                    format!("no answer within {:?}", self.limits.call_timeout),
                )),
            };
            drop(permit);
            let e = match r {
                Ok(v) => {
                    bucket.accepted();
                    return Ok(v);
                }
                Err(e) => e,
            };
            let wait = match e.class {
                ErrorClass::Throttled => {
                    bucket.throttled();
                    stats.throttles.fetch_add(1, Ordering::Relaxed);
                    throttles += 1;
                    if throttles >= self.limits.max_throttled_attempts {
                        return Err(CallError {
                            message: format!(
                                "still throttled after {throttles} attempts: {}",
                                e.message
                            ),
                            ..e
                        });
                    }
                    self.limits.backoff(throttles - 1, jitter())
                }
                ErrorClass::Transient => {
                    failures += 1;
                    if failures >= self.limits.max_attempts {
                        let message = if e.code == UNREACHABLE {
                            format!(
                                "{}: {} ({failures} attempts)",
                                self.describe(&target),
                                e.message
                            )
                        } else {
                            format!("failed {failures} times: {}", e.message)
                        };
                        return Err(CallError { message, ..e });
                    }
                    self.limits.backoff(failures - 1, jitter())
                }
                _ => {
                    // AWS answered; the rate was fine.
                    bucket.accepted();
                    return Err(e);
                }
            };
            stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(api = target.api, account = target.account_id, region = target.region, code = %e.code, ?wait, "retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

/// The service an API name (`sts:AssumeRole`) belongs to, as AWS names it.
pub fn service_name(api: &str) -> String {
    let prefix = api.split(':').next().unwrap_or(api);
    match prefix {
        "sts" => "AWS STS".into(),
        "organizations" => "AWS Organizations".into(),
        "account" => "AWS Account Management".into(),
        "cloudcontrol" => "AWS Cloud Control API".into(),
        "s3" => "Amazon S3".into(),
        other => format!("AWS {other}"),
    }
}

fn jitter() -> f64 {
    crate::catalog::port::retry::jitter_unit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_classes() {
        assert_eq!(
            class_of("ThrottlingException", Some(400)),
            ErrorClass::Throttled
        );
        assert_eq!(
            class_of("TooManyRequestsException", Some(400)),
            ErrorClass::Throttled
        );
        assert_eq!(class_of("SlowDown", Some(503)), ErrorClass::Throttled);
        assert_eq!(class_of("", Some(429)), ErrorClass::Throttled);
        assert_eq!(
            class_of("AccessDeniedException", Some(400)),
            ErrorClass::Denied
        );
        assert_eq!(
            class_of("UnauthorizedOperation", Some(403)),
            ErrorClass::Denied
        );
        assert_eq!(
            class_of("ResourceNotFoundException", Some(400)),
            ErrorClass::NotFound
        );
        assert_eq!(
            class_of("InternalFailure", Some(500)),
            ErrorClass::Transient
        );
        assert_eq!(class_of("Whatever", Some(503)), ErrorClass::Transient);
        assert_eq!(class_of("NotImplemented", Some(501)), ErrorClass::Fatal);
        assert_eq!(
            class_of("TypeNotFoundException", Some(400)),
            ErrorClass::Fatal
        );
    }

    fn fast() -> AwsLimits {
        AwsLimits {
            backoff_base: std::time::Duration::from_millis(1),
            backoff_max: std::time::Duration::from_millis(2),
            initial_rate: 1000.0,
            ..AwsLimits::default()
        }
    }

    #[tokio::test]
    async fn throttles_are_retried_and_counted() {
        let limits = Arc::new(fast());
        let caller = Caller::new(limits.clone(), Arc::new(Limiter::new(limits)));
        let stats = CallStats::default();
        let mut n = 0;
        let t = Target {
            api: "cloudcontrol:ListResources",
            account_id: "1",
            region: "r",
        };
        let v = caller
            .call(t, &stats, true, || {
                n += 1;
                let k = n;
                async move {
                    if k <= 3 {
                        Err(CallError::new(
                            ErrorClass::Throttled,
                            "x",
                            "ThrottlingException",
                            "Rate exceeded",
                        ))
                    } else {
                        Ok(k)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(v, 4);
        assert_eq!(
            stats.counts(),
            CallCounts {
                calls: 4,
                retries: 3,
                throttles: 3
            }
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_named_once_in_one_line() {
        let limits = Arc::new(AwsLimits {
            max_attempts: 3,
            ..fast()
        });
        let t = Target {
            api: "sts:AssumeRole",
            account_id: "1",
            region: "us-east-1",
        };
        let refused = || async {
            Err::<(), _>(CallError::new(
                ErrorClass::Transient,
                "sts:AssumeRole",
                UNREACHABLE,
                "connection refused",
            ))
        };
        let caller = Caller::new(limits.clone(), Arc::new(Limiter::new(limits.clone())))
            .with_endpoint(Some("http://127.0.0.1:1"));
        let e = caller
            .call(t, &CallStats::default(), true, refused)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "sts:AssumeRole: AWS STS at http://127.0.0.1:1: connection refused (3 attempts)"
        );
        let caller = Caller::new(limits.clone(), Arc::new(Limiter::new(limits)));
        let e = caller
            .call(t, &CallStats::default(), true, refused)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "sts:AssumeRole: AWS STS in us-east-1: connection refused (3 attempts)"
        );
    }

    #[tokio::test]
    async fn denied_is_not_retried_and_transient_gives_up() {
        let limits = Arc::new(AwsLimits {
            max_attempts: 3,
            ..fast()
        });
        let caller = Caller::new(limits.clone(), Arc::new(Limiter::new(limits)));
        let stats = CallStats::default();
        let t = Target {
            api: "a",
            account_id: "1",
            region: "r",
        };
        let e = caller
            .call(t, &stats, true, || async {
                Err::<(), _>(CallError::new(
                    ErrorClass::Denied,
                    "a",
                    "AccessDenied",
                    "no",
                ))
            })
            .await
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::Denied);
        assert_eq!(stats.counts().calls, 1);
        let stats = CallStats::default();
        let e = caller
            .call(t, &stats, true, || async {
                Err::<(), _>(CallError::new(
                    ErrorClass::Transient,
                    "a",
                    "InternalFailure",
                    "boom",
                ))
            })
            .await
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::Transient);
        assert_eq!(
            stats.counts(),
            CallCounts {
                calls: 3,
                retries: 2,
                throttles: 0
            }
        );
    }
}
