//! Helpers shared by the kind plugins' [`Enricher::enrich`](crate::Enricher::enrich)
//! implementations, so each plugin keeps only what is particular to its kind.
//!
//! Owns the conventions every enriching plugin follows:
//!
//! - cutting a kind's entry out of the product's default mapping
//!   ([`default_entry`]);
//! - what a failed lookup does: a lookup the plugin was not permitted to make
//!   is a bug and fails the item; any other failure is recorded as a message
//!   and the item still maps ([`failed`], [`get`], [`attach_errors`], which
//!   writes the messages to `__EnrichmentErrors`);
//! - completing an item whose `Properties` is only what Cloud Control's list
//!   handler returns with the full model, never overwriting a raw key
//!   ([`ListOnly`], [`is_list_only`]);
//! - CloudFormation's `[{Key, Value}]` tags as a `{Key: Value}` object, with
//!   a message for each malformed tag ([`tags_object`], [`model_tags`]).
//!
//! The messages recorded here are part of what mappings and golden tests
//! see, so their wording must not change without re-checking every plugin's
//! cases. Does not decide which lookups a plugin makes nor which `__` fields
//! it adds; that stays in the plugin.

use serde_json::{Map, Value};

use crate::{Cloud, LookupError, Resource, log};

/// The key under which an item's enrichment error messages are recorded.
pub const ERRORS_KEY: &str = "__EnrichmentErrors";

/// `kind`'s entry of a `resources:` mapping (`mapping`, usually the
/// product's `mappings/default.yaml` included with `include_str!`), as a
/// mapping of its own: `resources:` followed by the line `- kind: KIND` and
/// every line after it up to the next top-level `-` entry.
///
/// Lets a plugin ship the default mapping for its kind cut from the same file
/// the generic plugin ships, so the two cannot drift apart.
///
/// # Errors
///
/// When `mapping` has no line `- kind: KIND` (trailing whitespace ignored).
/// Since the mapping is compiled in, a plugin may treat this as a bug and
/// panic with the message.
pub fn default_entry(mapping: &str, kind: &str) -> Result<String, String> {
    let head = format!("- kind: {kind}");
    let mut lines = mapping.lines().skip_while(|l| l.trim_end() != head);
    let first = lines
        .next()
        .ok_or_else(|| format!("the default mapping has no entry for {kind} (no line `{head}`)"))?;
    let mut out = format!("resources:\n{first}\n");
    for l in lines.take_while(|l| !l.starts_with('-')) {
        out.push_str(l);
        out.push('\n');
    }
    Ok(out)
}

/// Records a failed lookup described by `what` (e.g. `TYPE ID`) in `errors`
/// as `"{what}: {e}"` and logs it at debug level, or fails the item with
/// that message when the plugin was not permitted to make the lookup (a bug
/// in the plugin, not in the cloud).
///
/// # Errors
///
/// `"{what}: {e}"` when `e` is [`LookupError::NotPermitted`].
pub fn failed(
    what: impl std::fmt::Display,
    e: LookupError,
    errors: &mut Vec<Value>,
) -> Result<(), String> {
    let m = format!("{what}: {e}");
    if let LookupError::NotPermitted(_) = e {
        return Err(m);
    }
    log::debug(&m);
    errors.push(Value::String(m));
    Ok(())
}

/// One resource's properties by identifier through [`Cloud::get`]:
/// `Some(model)` when read (always a JSON object), `None` when it does not
/// exist, `Some(null)` when the read failed or answered properties that are
/// not a JSON object (either recorded in `errors`).
///
/// # Errors
///
/// As [`failed`]: only when the lookup was not permitted.
pub fn get(
    cloud: &Cloud,
    type_name: &str,
    id: &str,
    errors: &mut Vec<Value>,
) -> Result<Option<Value>, String> {
    match cloud.get(type_name, id) {
        Ok(Some(Resource {
            properties: p @ Value::Object(_),
            ..
        })) => Ok(Some(p)),
        Ok(Some(_)) => {
            errors.push(
                format!(
                    "{type_name} {id}: the lookup answered properties that are not a JSON object"
                )
                .into(),
            );
            Ok(Some(Value::Null))
        }
        Ok(None) => Ok(None),
        Err(e) => failed(format_args!("{type_name} {id}"), e, errors).map(|()| Some(Value::Null)),
    }
}

/// Writes `errors` to the item's [`ERRORS_KEY`] field, unless there are none
/// (then the item is left without the field).
pub fn attach_errors(item: &mut Map<String, Value>, errors: Vec<Value>) {
    if !errors.is_empty() {
        item.insert(ERRORS_KEY.into(), Value::Array(errors));
    }
}

/// Whether `props` holds no more than the list handler's identifier `keys`
/// (also true when it is not an object at all).
pub fn is_list_only(props: &Value, keys: &[&str]) -> bool {
    props
        .as_object()
        .is_none_or(|p| p.keys().all(|k| keys.contains(&k.as_str())))
}

/// A Cloud Control type whose list handler returns only identifier keys, and
/// how to complete an item of it with the full model
/// ([`ListOnly::complete`]).
#[derive(Debug, Clone, Copy)]
pub struct ListOnly<'a> {
    /// The type read by the item's `Identifier` (`AWS::S3::Bucket`); the
    /// plugin must declare it with [`Info::lookup`](crate::Info::lookup).
    pub type_name: &'a str,
    /// The keys the list handler returns (`["BucketName"]`).
    pub keys: &'a [&'a str],
    /// What one resource is called in messages (`"bucket"`).
    pub noun: &'a str,
    /// Appended in parentheses to the "not found" message, for types where
    /// not found usually has a particular cause.
    pub not_found_note: Option<&'a str>,
}

impl ListOnly<'_> {
    /// Whether [`ListOnly::complete`] would read the model of the raw item `item`, or record
    /// why it cannot: `Properties` missing, null, not an object, or only [`ListOnly::keys`].
    /// Reads the item's index, not a parsed tree, for
    /// [`Enricher::needs`](crate::Enricher::needs).
    pub fn needs_model(&self, item: &crate::Input<'_>) -> bool {
        match item.field("Properties") {
            crate::jq::Field::Object(keys) => keys.iter().all(|k| self.keys.contains(&k.as_ref())),
            _ => true,
        }
    }

    /// Reads the full model by the item's `Identifier` when `Properties` is
    /// missing, null or only [`ListOnly::keys`], and adds its properties to
    /// `Properties`, keeping every raw key as it was. Returns whether the
    /// item now carries the full model (true at once when `Properties`
    /// already had more than the list keys).
    ///
    /// Records in `errors`, and returns false, when `Properties` is not an
    /// object, the item has no string `Identifier`, the resource is not found
    /// in the item's `__Region`, or the read failed.
    ///
    /// # Errors
    ///
    /// As [`get`]: only when the lookup was not permitted.
    pub fn complete(
        &self,
        item: &mut Map<String, Value>,
        cloud: &Cloud,
        errors: &mut Vec<Value>,
    ) -> Result<bool, String> {
        let type_name = self.type_name;
        match item.get("Properties") {
            None | Some(Value::Null) => {}
            Some(p @ Value::Object(_)) if is_list_only(p, self.keys) => {}
            Some(Value::Object(_)) => return Ok(true),
            Some(_) => {
                errors.push(
                    format!(
                        "Properties is not a JSON object; the {}'s model was not read",
                        self.noun
                    )
                    .into(),
                );
                return Ok(false);
            }
        }
        let Some(id) = item
            .get("Identifier")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            errors.push(format!("the item has no Identifier to read {type_name} by").into());
            return Ok(false);
        };
        let full = match get(cloud, type_name, &id, errors)? {
            Some(Value::Object(full)) => full,
            Some(_) => return Ok(false),
            None => {
                let region = item
                    .get("__Region")
                    .and_then(Value::as_str)
                    .unwrap_or("this region");
                let m = match self.not_found_note {
                    Some(note) => format!("{type_name} {id}: not found in {region} ({note})"),
                    None => format!("{type_name} {id}: not found in {region}"),
                };
                errors.push(m.into());
                return Ok(false);
            }
        };
        let props = item
            .entry("Properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if props.is_null() {
            *props = Value::Object(Map::new());
        }
        if let Value::Object(props) = props {
            for (k, v) in full {
                props.entry(k).or_insert(v);
            }
        }
        Ok(true)
    }
}

/// `[{Key, Value}]` (CloudFormation's and Organizations' tag shape) as
/// `{Key: Value}`, so a mapping can say `.__Tags.team`. `path` names where
/// the tags were read (`Properties.Tags`) in the messages recorded in
/// `errors`: null when `tags` is not a list; a tag without a string `Key` is
/// left out; a tag without `Value` maps to null.
pub fn tags_object(tags: &Value, path: &str, errors: &mut Vec<Value>) -> Value {
    let Some(tags) = tags.as_array() else {
        errors.push(format!("{path} is not a list of {{Key, Value}}").into());
        return Value::Null;
    };
    let mut out = Map::new();
    for (i, t) in tags.iter().enumerate() {
        match t.get("Key").and_then(Value::as_str) {
            Some(k) => {
                out.insert(k.into(), t.get("Value").cloned().unwrap_or(Value::Null));
            }
            None => errors.push(format!("{path}[{i}] has no string Key").into()),
        }
    }
    Value::Object(out)
}

/// A full model's `Tags` as [`tags_object`] reads them at
/// `Properties.Tags`; no `Tags` in a full model means no tags (`{}`).
pub fn model_tags(props: &Value, errors: &mut Vec<Value>) -> Value {
    match props.get("Tags") {
        Some(tags) => tags_object(tags, "Properties.Tags", errors),
        None => Value::Object(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MAPPING: &str =
        "resources:\n- kind: A::B\n  port: 1\n\n- kind: C::D \n  port: 2\n  x:\n  - y\n- kind: E\n";

    #[test]
    fn needs_model_agrees_with_is_list_only() {
        let l = ListOnly {
            type_name: "AWS::S3::Bucket",
            keys: &["BucketName"],
            noun: "bucket",
            not_found_note: None,
        };
        for (props, needs) in [
            (json!({"BucketName": "b"}), true),
            (json!({}), true),
            (Value::Null, true),
            (json!("text"), true),
            (json!({"BucketName": "b", "Arn": "x"}), false),
            (
                json!({"Arn": "x", "Tags": [{"Key": "k", "Value": "\"v\""}]}),
                false,
            ),
        ] {
            let text = json!({"Identifier": "b", "Properties": props}).to_string();
            let item = crate::Input::new(&text).unwrap();
            assert_eq!(l.needs_model(&item), needs, "{text}");
            if props.is_object() {
                assert_eq!(is_list_only(&props, l.keys), needs, "{text}");
            }
        }
        assert!(l.needs_model(&crate::Input::new(r#"{"Identifier":"b"}"#).unwrap()));
    }

    #[test]
    fn default_entry_cuts_one_kind() {
        assert_eq!(
            default_entry(MAPPING, "A::B").unwrap(),
            "resources:\n- kind: A::B\n  port: 1\n\n"
        );
        assert_eq!(
            default_entry(MAPPING, "C::D").unwrap(),
            "resources:\n- kind: C::D \n  port: 2\n  x:\n  - y\n"
        );
        assert_eq!(
            default_entry(MAPPING, "E").unwrap(),
            "resources:\n- kind: E\n"
        );
    }

    #[test]
    fn default_entry_names_a_missing_kind() {
        let e = default_entry(MAPPING, "X::Y").unwrap_err();
        assert!(e.contains("X::Y"), "{e}");
    }

    #[test]
    fn tags_become_an_object() {
        let mut errors = Vec::new();
        let tags = json!([{"Key": "a", "Value": "1"}, {"Key": "b"}, {"Value": "x"}, 3]);
        assert_eq!(
            tags_object(&tags, "Tags", &mut errors),
            json!({"a": "1", "b": null})
        );
        assert_eq!(
            errors,
            vec![
                json!("Tags[2] has no string Key"),
                json!("Tags[3] has no string Key")
            ]
        );
    }

    #[test]
    fn malformed_tags_are_null() {
        let mut errors = Vec::new();
        assert_eq!(
            model_tags(&json!({"Tags": {"a": 1}}), &mut errors),
            Value::Null
        );
        assert_eq!(
            errors,
            vec![json!("Properties.Tags is not a list of {Key, Value}")]
        );
    }

    #[test]
    fn no_tags_in_a_model_is_no_tags() {
        let mut errors = Vec::new();
        assert_eq!(model_tags(&json!({}), &mut errors), json!({}));
        assert_eq!(model_tags(&Value::Null, &mut errors), json!({}));
        assert!(errors.is_empty());
    }

    #[test]
    fn list_only_shapes() {
        assert!(is_list_only(&json!({"Name": "x"}), &["Name", "Arn"]));
        assert!(is_list_only(&json!({}), &["Name"]));
        assert!(is_list_only(&Value::Null, &["Name"]));
        assert!(!is_list_only(&json!({"Name": "x", "Tags": []}), &["Name"]));
    }

    #[test]
    fn errors_are_attached_only_when_present() {
        let mut item = Map::new();
        attach_errors(&mut item, Vec::new());
        assert!(item.is_empty());
        attach_errors(&mut item, vec![json!("m")]);
        assert_eq!(Value::Object(item), json!({"__EnrichmentErrors": ["m"]}));
    }
}
