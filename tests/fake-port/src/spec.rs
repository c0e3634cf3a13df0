//! Request validation against Port's published OpenAPI spec (`openapi.yaml`, vendored in this
//! crate), so a client that drifts from the real API fails a test.
//!
//! Owns: loading the spec once per process, turning OpenAPI 3 schemas into JSON Schema 2020-12
//! (`nullable: true` becomes a `"null"` type; `$ref`s into `components/schemas` resolve because
//! every compiled schema carries the spec's `components`), the body and query checks per route,
//! the schemas this fake adds for routes the spec lacks (derived from `docs/port-api.md`), and
//! response checks used by tests. Must not touch: catalog rules (blueprint property types,
//! relations); those are in `catalog.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::query::{QueryParams, parse_bool};

/// The vendored spec text.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// The routes whose requests the fake checks. Routes the spec has are checked against its
/// `requestBody` and query `parameters`; the others against schemas written from the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    AccessToken,
    ListBlueprints,
    CreateBlueprint,
    GetBlueprint,
    ReplaceBlueprint,
    PatchBlueprint,
    DeleteBlueprint,
    UpsertEntity,
    BulkUpsert,
    ListEntities,
    GetEntity,
    PatchEntity,
    ReplaceEntity,
    DeleteEntity,
    EntitiesCount,
    DeleteAllEntities,
    BulkDelete,
    SearchEntities,
    SearchBlueprintEntities,
    GetIntegration,
    PatchIntegration,
    PatchIntegrationConfig,
    DeleteIntegration,
    SyncMetrics,
    SyncsMetadata,
    GetOrganization,
    // Not in the OpenAPI spec (Ocean-only routes, see CONTRACT.md §4.8 and §6).
    DatasourceEntities,
    CreateIntegration,
    ResyncState,
    ResyncRequest,
    KindExamples,
    IngestSyncMetrics,
    IngestKindMetrics,
    IngestHeartbeat,
    IngestLogs,
    ProvisionEnabled,
}

/// Where a route's rules come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `paths[path][method]` of the OpenAPI spec.
    Spec {
        method: &'static str,
        path: &'static str,
    },
    /// A schema this crate writes from CONTRACT.md (the route is not in the spec).
    Contract,
}

impl Route {
    pub const ALL: [Route; 36] = [
        Route::AccessToken,
        Route::ListBlueprints,
        Route::CreateBlueprint,
        Route::GetBlueprint,
        Route::ReplaceBlueprint,
        Route::PatchBlueprint,
        Route::DeleteBlueprint,
        Route::UpsertEntity,
        Route::BulkUpsert,
        Route::ListEntities,
        Route::GetEntity,
        Route::PatchEntity,
        Route::ReplaceEntity,
        Route::DeleteEntity,
        Route::EntitiesCount,
        Route::DeleteAllEntities,
        Route::BulkDelete,
        Route::SearchEntities,
        Route::SearchBlueprintEntities,
        Route::GetIntegration,
        Route::PatchIntegration,
        Route::PatchIntegrationConfig,
        Route::DeleteIntegration,
        Route::SyncMetrics,
        Route::SyncsMetadata,
        Route::GetOrganization,
        Route::DatasourceEntities,
        Route::CreateIntegration,
        Route::ResyncState,
        Route::ResyncRequest,
        Route::KindExamples,
        Route::IngestSyncMetrics,
        Route::IngestKindMetrics,
        Route::IngestHeartbeat,
        Route::IngestLogs,
        Route::ProvisionEnabled,
    ];

    pub fn source(self) -> Source {
        use Route::*;
        let spec = |method, path| Source::Spec { method, path };
        const BP: &str = "/v1/blueprints/{identifier}";
        const ENTS: &str = "/v1/blueprints/{blueprint_identifier}/entities";
        const ENT: &str = "/v1/blueprints/{blueprint_identifier}/entities/{entity_identifier}";
        const INTEG: &str = "/v1/integration/{identifier}";
        match self {
            AccessToken => spec("post", "/v1/auth/access_token"),
            ListBlueprints => spec("get", "/v1/blueprints"),
            CreateBlueprint => spec("post", "/v1/blueprints"),
            GetBlueprint => spec("get", BP),
            ReplaceBlueprint => spec("put", BP),
            PatchBlueprint => spec("patch", BP),
            DeleteBlueprint => spec("delete", BP),
            UpsertEntity => spec("post", ENTS),
            BulkUpsert => spec(
                "post",
                "/v1/blueprints/{blueprint_identifier}/entities/bulk",
            ),
            ListEntities => spec("get", ENTS),
            GetEntity => spec("get", ENT),
            PatchEntity => spec("patch", ENT),
            ReplaceEntity => spec("put", ENT),
            DeleteEntity => spec("delete", ENT),
            EntitiesCount => spec(
                "get",
                "/v1/blueprints/{blueprint_identifier}/entities-count",
            ),
            DeleteAllEntities => spec(
                "delete",
                "/v1/blueprints/{blueprint_identifier}/all-entities",
            ),
            BulkDelete => spec(
                "post",
                "/v1/blueprints/{blueprint_identifier}/bulk/entities/delete",
            ),
            SearchEntities => spec("post", "/v1/entities/search"),
            SearchBlueprintEntities => spec(
                "post",
                "/v1/blueprints/{blueprint_identifier}/entities/search",
            ),
            GetIntegration => spec("get", INTEG),
            PatchIntegration => spec("patch", INTEG),
            PatchIntegrationConfig => spec("patch", "/v1/integration/{identifier}/config"),
            DeleteIntegration => spec("delete", INTEG),
            SyncMetrics => spec("get", "/v1/integration/{integrationInternalId}/syncMetrics"),
            SyncsMetadata => spec(
                "get",
                "/v1/integration/{integrationInternalId}/syncsMetadata",
            ),
            GetOrganization => spec("get", "/v1/organization"),
            DatasourceEntities | CreateIntegration | ResyncState | ResyncRequest | KindExamples
            | IngestSyncMetrics | IngestKindMetrics | IngestHeartbeat | IngestLogs
            | ProvisionEnabled => Source::Contract,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ParamType {
    Boolean,
    Number,
    Other,
}

#[derive(Debug)]
struct QueryParam {
    name: String,
    required: bool,
    ty: ParamType,
}

struct RouteRules {
    body: Option<Validator>,
    /// The JSON Schema the body is checked against (for `request_schema`).
    body_schema: Option<Value>,
    query: Vec<QueryParam>,
}

/// The parsed spec and the compiled checks of every [`Route`].
pub struct Spec {
    doc: Value,
    components: Value,
    routes: HashMap<Route, RouteRules>,
    sync_metrics_item: Value,
    responses: Mutex<HashMap<(String, String, String), Arc<Validator>>>,
}

/// The process-wide spec, parsed and compiled on first use (the vendored file is part of the
/// crate, so a failure here is a bug caught by the crate's tests).
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| Spec::load(OPENAPI_YAML).expect("vendored openapi.yaml compiles"))
}

/// Rewrites OpenAPI 3 schema dialect into JSON Schema 2020-12, in place: `nullable: true` adds
/// `"null"` to `type` (and to `enum`); `nullable` keys are then dropped; duplicate names in
/// `required` lists are removed. Everything else in OpenAPI 3.1 already is JSON Schema 2020-12
/// (unknown keywords such as `example` are ignored).
pub fn openapi_to_json_schema(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Bool(nullable)) = m.get("nullable").cloned() {
                m.remove("nullable");
                if nullable {
                    match m.get_mut("type") {
                        Some(Value::String(t)) => {
                            let t = t.clone();
                            if t != "null" {
                                m.insert("type".into(), json!([t, "null"]));
                            }
                        }
                        Some(Value::Array(ts)) if !ts.iter().any(|t| t == "null") => {
                            ts.push(json!("null"));
                        }
                        _ => {}
                    }
                    if let Some(Value::Array(e)) = m.get_mut("enum")
                        && !e.contains(&Value::Null)
                    {
                        e.push(Value::Null);
                    }
                }
            }
            // Port's spec repeats names in some `required` lists (e.g. the bulk upsert response
            // has `[ok, entities, errors, ok]`), which JSON Schema's meta-schema forbids.
            if let Some(Value::Array(req)) = m.get_mut("required")
                && req.iter().all(Value::is_string)
            {
                let mut seen = Vec::new();
                req.retain(|r| {
                    let fresh = !seen.contains(r);
                    seen.push(r.clone());
                    fresh
                });
            }
            for child in m.values_mut() {
                openapi_to_json_schema(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(openapi_to_json_schema),
        _ => {}
    }
}

/// `format: url` (Port's own name): an absolute URL with a scheme.
fn is_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !s.chars().any(char::is_whitespace)
}

/// Compiles a schema that may `$ref` into `#/components/schemas/...`.
pub(crate) fn compile(schema: &Value, components: &Value) -> Result<Validator, String> {
    let mut root = schema.clone();
    if let Value::Object(m) = &mut root {
        m.insert("components".into(), json!({"schemas": components}));
    }
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .with_format("url", is_url)
        .build(&root)
        .map_err(|e| e.to_string())
}

impl Spec {
    pub fn load(yaml: &str) -> Result<Self, String> {
        let mut doc: Value =
            serde_norway::from_str(yaml).map_err(|e| format!("openapi.yaml: {e}"))?;
        openapi_to_json_schema(&mut doc);
        let components = doc
            .pointer("/components/schemas")
            .cloned()
            .ok_or("openapi.yaml has no components/schemas")?;
        let item = doc
            .pointer(
                "/paths/~1v1~1integration~1{integrationInternalId}~1syncMetrics/get/responses/200/content/application~1json/schema/properties/data/items",
            )
            .cloned()
            .ok_or("openapi.yaml: syncMetrics response has no data items")?;
        let mut routes = HashMap::new();
        for route in Route::ALL {
            let (body_schema, query) = match route.source() {
                Source::Spec { method, path } => {
                    let op = doc
                        .get("paths")
                        .and_then(|p| p.get(path))
                        .and_then(|p| p.get(method))
                        .ok_or_else(|| format!("openapi.yaml has no {method} {path}"))?;
                    let body = op
                        .pointer("/requestBody/content/application~1json/schema")
                        .cloned();
                    (body, query_params(op))
                }
                Source::Contract => (contract_schema(route, &item), Vec::new()),
            };
            let body = body_schema
                .as_ref()
                .map(|s| compile(s, &components).map_err(|e| format!("{route:?}: {e}")))
                .transpose()?;
            routes.insert(
                route,
                RouteRules {
                    body,
                    body_schema,
                    query,
                },
            );
        }
        Ok(Self {
            doc,
            components,
            routes,
            sync_metrics_item: item,
            responses: Mutex::new(HashMap::new()),
        })
    }

    /// The JSON Schema a route's body is checked against (`$ref`s still point into
    /// `#/components/schemas`), if it takes a body.
    pub fn request_schema(&self, route: Route) -> Option<&Value> {
        self.routes.get(&route)?.body_schema.as_ref()
    }

    /// The schema of one syncMetrics item in Port's response (what a stored item is pruned to
    /// on the way out, see [`prune_to_schema`]).
    pub fn sync_metrics_item(&self) -> &Value {
        &self.sync_metrics_item
    }

    /// Checks the query string: required parameters present, booleans and numbers well-formed.
    /// Parameters the spec does not list are ignored.
    pub fn check_query(&self, route: Route, q: &QueryParams) -> ApiResult<()> {
        let Some(rules) = self.routes.get(&route) else {
            return Ok(());
        };
        for p in &rules.query {
            match q.get(&p.name) {
                None if p.required => {
                    return Err(ApiError::invalid(format!(
                        "querystring must have required property '{}'",
                        p.name
                    )));
                }
                None => {}
                Some(v) => {
                    let ok = match p.ty {
                        ParamType::Boolean => parse_bool(v).is_some(),
                        ParamType::Number => v.parse::<f64>().is_ok(),
                        ParamType::Other => true,
                    };
                    if !ok {
                        let ty = if p.ty == ParamType::Boolean {
                            "boolean"
                        } else {
                            "number"
                        };
                        return Err(ApiError::invalid(format!(
                            "querystring/{} must be {ty}",
                            p.name
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Parses and checks a request body. An empty body counts as missing.
    pub fn parse_body(&self, route: Route, bytes: &[u8]) -> ApiResult<Value> {
        let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(bytes).map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    crate::error::INVALID_JSON,
                    format!("Body is not valid JSON: {e}"),
                )
            })?
        };
        self.validate_body(route, &value)?;
        Ok(value)
    }

    /// Checks a parsed body against the route's schema; 422 naming the failing path.
    pub fn validate_body(&self, route: Route, value: &Value) -> ApiResult<()> {
        let Some(validator) = self.routes.get(&route).and_then(|r| r.body.as_ref()) else {
            return Ok(());
        };
        if value.is_null() && !validator.is_valid(value) {
            return Err(ApiError::invalid("body must be object"));
        }
        describe_errors(validator, value, "body").map_err(ApiError::invalid)
    }

    /// Checks a response body against the spec's response schema for `method path status`
    /// (`path` as written in the spec, e.g. `/v1/blueprints/{identifier}`). For tests of the
    /// fake's own fidelity.
    pub fn validate_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        let key = (method.to_lowercase(), path.to_string(), status.to_string());
        let validator = {
            let mut cache = self.responses.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = cache.get(&key) {
                v.clone()
            } else {
                let schema = self
                    .doc
                    .get("paths")
                    .and_then(|p| p.get(path))
                    .and_then(|p| p.get(&key.0))
                    .and_then(|op| op.get("responses"))
                    .and_then(|r| r.get(&key.2))
                    .and_then(|r| r.pointer("/content/application~1json/schema"))
                    .ok_or_else(|| format!("spec has no {method} {path} {status} schema"))?;
                let v = Arc::new(compile(schema, &self.components)?);
                cache.insert(key, v.clone());
                v
            }
        };
        describe_errors(&validator, body, "response")
    }
}

fn query_params(op: &Value) -> Vec<QueryParam> {
    op.get("parameters")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
                .filter_map(|p| {
                    let ty = match p.pointer("/schema/type").and_then(Value::as_str) {
                        Some("boolean") => ParamType::Boolean,
                        Some("number" | "integer") => ParamType::Number,
                        _ => ParamType::Other,
                    };
                    Some(QueryParam {
                        name: p.get("name")?.as_str()?.to_string(),
                        required: p.get("required").and_then(Value::as_bool) == Some(true),
                        ty,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Formats up to three errors as `body/path/to/field: message`; `Ok` when there are none.
fn describe_errors(validator: &Validator, value: &Value, root: &str) -> Result<(), String> {
    let mut msgs: Vec<String> = Vec::new();
    for err in validator.iter_errors(value) {
        let msg = describe(&err, root);
        if !msgs.contains(&msg) {
            msgs.push(msg);
        }
        if msgs.len() == 3 {
            break;
        }
    }
    if msgs.is_empty() {
        Ok(())
    } else {
        Err(msgs.join("; "))
    }
}

/// For `anyOf`/`oneOf` failures, points at the alternative that came closest (the way a person
/// reads "which field is wrong"): alternatives whose type does not even fit rank last, then
/// fewer errors, then deeper ones.
fn describe(err: &ValidationError<'_>, root: &str) -> String {
    let depth = |e: &ValidationError<'_>| e.instance_path().iter().count();
    let deepest = match err.kind() {
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            let here = depth(err);
            context
                .iter()
                .filter(|branch| !branch.is_empty())
                .filter(|branch| {
                    !branch
                        .iter()
                        .any(|e| e.kind().keyword() == "type" && depth(e) == here)
                })
                .min_by_key(|branch| {
                    (
                        branch.len(),
                        std::cmp::Reverse(branch.iter().map(depth).max().unwrap_or(0)),
                    )
                })
                .and_then(|branch| branch.iter().max_by_key(|e| depth(e)))
        }
        _ => None,
    };
    if let Some(inner) = deepest {
        return describe(inner, root);
    }
    let path = format!("{root}{}", err.instance_path().as_str());
    let text = if err.instance().is_object() || err.instance().is_array() {
        err.masked_with("value").to_string()
    } else {
        err.to_string()
    };
    let text = if text.chars().count() > 300 {
        text.chars().take(300).collect::<String>() + "…"
    } else {
        text
    };
    format!("{path}: {text}")
}

/// Drops what a response schema does not list, as Port's fastify serializer does
/// (fast-json-stringify writes only the listed properties unless `additionalProperties` allows
/// more). Objects whose schema lists no properties are kept whole.
pub fn prune_to_schema(value: &Value, schema: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return value.clone();
            };
            let open = matches!(
                schema.get("additionalProperties"),
                Some(Value::Bool(true) | Value::Object(_))
            );
            m.iter()
                .filter_map(|(k, v)| match props.get(k) {
                    Some(s) => Some((k.clone(), prune_to_schema(v, s))),
                    None if open => Some((k.clone(), v.clone())),
                    None => None,
                })
                .collect()
        }
        Value::Array(items) => match schema.get("items") {
            Some(s) => items.iter().map(|v| prune_to_schema(v, s)).collect(),
            None => value.clone(),
        },
        _ => value.clone(),
    }
}

/// Where a metric name the spec does not list leads: a number, or more names. Referenced as
/// `#/$defs/metricTree` from the ingest bodies' root.
fn metric_tree() -> Value {
    json!({
        "type": ["number", "object"],
        "additionalProperties": {"$ref": "#/$defs/metricTree"}
    })
}

/// Opens every closed object of the spec's `metrics` schema to further names that lead to
/// numbers. Ocean builds `metrics` from its Prometheus registry, one nested object per label
/// ending in the sample's value, so it sends more than the spec's response lists:
/// `phase.delete.duration_seconds` (Ocean times its delete phase), `phase.<p>.duration_seconds`,
/// `phase.<p>.endpoint.<url>.rate_limit_wait_seconds`, and metrics an integration registers
/// itself. Names the spec lists keep the spec's types; a string, boolean, null or array where a
/// number belongs is still refused.
fn open_metrics(schema: &mut Value) {
    match schema {
        Value::Object(m) => {
            if m.get("additionalProperties") == Some(&Value::Bool(false)) {
                m.insert(
                    "additionalProperties".into(),
                    json!({"$ref": "#/$defs/metricTree"}),
                );
            }
            m.values_mut().for_each(open_metrics);
        }
        Value::Array(items) => items.iter_mut().for_each(open_metrics),
        _ => {}
    }
}

/// Schemas for routes the OpenAPI spec does not have, written from CONTRACT.md §4.8 and §6 (what
/// Ocean sends). `kind_metrics_item` is the spec's syncMetrics response item; a posted
/// `KindMetrics` has its fields, and a `metrics` object shaped like the spec's where the spec
/// names a metric (see [`open_metrics`] for the rest).
fn contract_schema(route: Route, kind_metrics_item: &Value) -> Option<Value> {
    let date_or_null = json!({"type": ["string", "null"], "format": "date-time"});
    let kind_metrics = {
        let mut s = kind_metrics_item.clone();
        if let Value::Object(m) = &mut s {
            // Port stamps createdAt/updatedAt; Ocean adds installationType and executionMode.
            if let Some(Value::Array(req)) = m.get_mut("required") {
                req.retain(|k| k != "createdAt" && k != "updatedAt");
            }
            m.insert("additionalProperties".into(), json!(true));
            if let Some(metrics) = m.get_mut("properties").and_then(|p| p.get_mut("metrics")) {
                open_metrics(metrics);
            }
        }
        s
    };
    Some(match route {
        Route::DatasourceEntities => json!({
            "type": "object",
            "properties": {
                "datasource_prefix": {"type": "string"},
                "datasource_suffix": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1},
                "from": {"type": ["string", "null"]},
                "before": {"type": "string", "format": "date-time"}
            },
            "required": ["datasource_prefix"],
            "additionalProperties": false
        }),
        Route::CreateIntegration => json!({
            "type": "object",
            "properties": {
                "installationId": {"type": "string", "minLength": 1},
                "title": {"type": ["string", "null"]},
                "installationAppType": {"type": "string"},
                "version": {"type": "string"},
                "config": {"type": ["object", "null"]},
                "changelogDestination": {"type": ["object", "null"]},
                "actionsProcessingEnabled": {"type": "boolean"},
                "incrementalSyncEnabled": {"type": "boolean"},
                "createPortResourcesOrigin": {"enum": ["Empty", "Ocean", "Default", "Port"]}
            },
            "required": ["installationId"],
            "additionalProperties": true
        }),
        Route::ResyncState => json!({
            "type": "object",
            "properties": {
                "status": {"enum": ["running", "completed", "failed", "aborted"]},
                "lastResyncStart": date_or_null,
                "lastResyncEnd": date_or_null,
                "nextResync": date_or_null,
                "intervalInMinuets": {"type": ["integer", "null"]}
            },
            "required": ["status"],
            "additionalProperties": false
        }),
        Route::KindExamples => json!({
            "type": "object",
            "properties": {"examples": {"type": "array"}},
            "required": ["examples"],
            "additionalProperties": false
        }),
        Route::IngestSyncMetrics => json!({
            "type": "object",
            "properties": {"syncKindsMetrics": {"type": "array", "items": kind_metrics}},
            "required": ["syncKindsMetrics"],
            "additionalProperties": false,
            "$defs": {"metricTree": metric_tree()}
        }),
        Route::IngestKindMetrics => json!({
            "type": "object",
            "properties": {"syncKindMetrics": kind_metrics},
            "required": ["syncKindMetrics"],
            "additionalProperties": false,
            "$defs": {"metricTree": metric_tree()}
        }),
        Route::IngestHeartbeat => json!({
            "type": "object",
            "properties": {"eventId": {"type": "string"}},
            "required": ["eventId"]
        }),
        Route::IngestLogs => json!({
            "type": "object",
            "properties": {"logs": {"type": "array"}},
            "required": ["logs"]
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_becomes_null_type() {
        let mut s = json!({"type": "string", "nullable": true, "enum": ["a"],
                           "properties": {"nullable": {"type": "number"}}});
        openapi_to_json_schema(&mut s);
        assert_eq!(
            s,
            json!({"type": ["string", "null"], "enum": ["a", null],
                   "properties": {"nullable": {"type": "number"}}})
        );
    }

    #[test]
    fn urls() {
        assert!(is_url("https://example.com/x"));
        assert!(is_url("s3://bucket"));
        assert!(!is_url("example.com"));
        assert!(!is_url("http://a b"));
    }
}
