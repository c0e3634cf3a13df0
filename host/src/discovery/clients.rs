//! Builds the SDK clients: one shared HTTPS client (the SDK's default,
//! hyper 1 + rustls on aws-lc-rs) for every service, account and region,
//! the endpoint override (the emulator), timeouts from [`AwsLimits`], and
//! **no SDK retries and no SDK identity cache**: retries happen in
//! `call.rs`, where the adaptive limiter sees every throttle, and
//! credentials are cached and refreshed in `credentials.rs`.
//!
//! **No redirects**, anywhere: the SDK's HTTP client never follows them, and
//! the reqwest client made here does not either, so every request goes to
//! the endpoint the SDK's rules resolved (an answer cannot send Berth, with
//! signed headers, to another host or from https to plain http).
//!
//! Owns: [`ClientFactory`]. Must not make calls.

use std::sync::Arc;

use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use super::limits::AwsLimits;

/// Makes SDK clients for one tenant.
#[derive(Clone)]
pub struct ClientFactory {
    http: SharedHttpClient,
    endpoint_url: Option<String>,
    limits: Arc<AwsLimits>,
}

impl std::fmt::Debug for ClientFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFactory")
            .field("endpoint_url", &self.endpoint_url)
            .finish_non_exhaustive()
    }
}

impl ClientFactory {
    pub fn new(endpoint_url: Option<String>, limits: Arc<AwsLimits>) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        Self {
            http,
            endpoint_url,
            limits,
        }
    }

    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    /// The shared configuration for a client in `region` with `creds`
    /// (`None`: unsigned calls only, e.g. `AssumeRoleWithWebIdentity`).
    pub fn sdk_config(&self, region: &str, creds: Option<SharedCredentialsProvider>) -> SdkConfig {
        let mut b = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.limits.connect_timeout)
                    .operation_timeout(self.limits.call_timeout)
                    .build(),
            )
            .identity_cache(IdentityCache::no_cache())
            .http_client(self.http.clone());
        if let Some(e) = &self.endpoint_url {
            b = b.endpoint_url(e.clone());
        }
        if let Some(c) = creds {
            b = b.credentials_provider(c);
        }
        b.build()
    }

    pub fn sts(
        &self,
        region: &str,
        creds: Option<SharedCredentialsProvider>,
    ) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.sdk_config(region, creds))
    }

    pub fn organizations(
        &self,
        region: &str,
        creds: SharedCredentialsProvider,
    ) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::new(&self.sdk_config(region, Some(creds)))
    }

    pub fn account(
        &self,
        region: &str,
        creds: SharedCredentialsProvider,
    ) -> aws_sdk_account::Client {
        aws_sdk_account::Client::new(&self.sdk_config(region, Some(creds)))
    }

    pub fn cloudcontrol(
        &self,
        region: &str,
        creds: SharedCredentialsProvider,
    ) -> aws_sdk_cloudcontrol::Client {
        aws_sdk_cloudcontrol::Client::new(&self.sdk_config(region, Some(creds)))
    }

    /// A plain HTTP client for the few calls made without an SDK client
    /// (`s3.rs`), with the same timeouts. S3 answers a bucket in another
    /// region with a 3xx naming it, which `s3.rs` reads: it is an answer,
    /// never a request to follow.
    pub fn reqwest(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .connect_timeout(self.limits.connect_timeout)
            .timeout(self.limits.call_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            // Not `unwrap_or_default()`: the default client follows redirects.
            // Building fails only when the TLS backend cannot start.
            .expect("the TLS backend starts")
    }
}
