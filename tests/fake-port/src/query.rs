//! Query strings: repeated keys (`include=a&include=b`, `include[]=a`), booleans sent as the
//! strings `true`/`false`, unknown keys ignored (as Port does).
//!
//! Owns: parsing a raw query string and typed look-ups. Must not touch: which parameters a route
//! requires; `spec.rs` checks that against the OpenAPI spec.

use crate::error::{ApiError, ApiResult};

#[derive(Clone, Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every value of `name`, also written `name[]` or `name[0]`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| {
                k == name
                    || k.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('[') && rest.ends_with(']'))
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean parameter; absent gives `default`, anything but `true`/`false` is a 422.
    pub fn bool(&self, name: &str, default: bool) -> ApiResult<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_bool(v)
                .ok_or_else(|| ApiError::invalid(format!("querystring/{name} must be boolean"))),
        }
    }
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_bracketed_keys() {
        let q = QueryParams::parse(Some(
            "include=identifier&include[]=blueprint&upsert=true&x=%2F",
        ));
        assert_eq!(q.all("include"), vec!["identifier", "blueprint"]);
        assert!(q.bool("upsert", false).unwrap());
        assert_eq!(q.get("x"), Some("/"));
        assert!(
            QueryParams::parse(Some("merge=yes"))
                .bool("merge", false)
                .is_err()
        );
    }
}
