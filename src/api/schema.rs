//! Bounds of the CRDs' schemas that the Rust types cannot state themselves:
//! `metav1.Condition`'s validation (Kubernetes' own CRDs carry it), limits on
//! label selectors, and the list types server-side apply merges by. Applied
//! with `#[schemars(transform = ...)]`; every string a CEL rule reads must
//! have a maxLength and every list a maxItems, or the API server's cost
//! estimate of the rule grows with what the field could hold.

use schemars::Schema;
use serde_json::{Value, json};

/// Conditions an object carries at most (Ready, Reconciling, Stalled and
/// a few more to come).
pub const MAX_CONDITIONS: u64 = 16;

/// `status.conditions`: a list keyed by `type`, each entry bounded as
/// `metav1.Condition` is in Kubernetes' own OpenAPI (k8s.io/apimachinery
/// types.go markers).
pub fn conditions(schema: &mut Schema) {
    schema.insert("maxItems".into(), json!(MAX_CONDITIONS));
    schema.insert("x-kubernetes-list-type".into(), json!("map"));
    schema.insert("x-kubernetes-list-map-keys".into(), json!(["type"]));
    let Some(properties) = schema
        .get_mut("items")
        .and_then(|items| items.get_mut("properties"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let bounds = [
        (
            "type",
            json!({"maxLength": 316, "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"}),
        ),
        ("status", json!({"enum": ["True", "False", "Unknown"]})),
        (
            "reason",
            json!({"minLength": 1, "maxLength": 1024, "pattern": r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"}),
        ),
        ("message", json!({"maxLength": 32768})),
        ("observedGeneration", json!({"minimum": 0})),
        ("lastTransitionTime", json!({"format": "date-time"})),
    ];
    for (field, extra) in bounds {
        if let (Some(property), Some(extra)) = (
            properties.get_mut(field).and_then(Value::as_object_mut),
            extra.as_object(),
        ) {
            property.extend(extra.clone());
        }
    }
}

/// A namespace selector: as many labels and expressions as a person writes,
/// each as long as Kubernetes allows a label key (253 + 63) and value (63).
pub fn label_selector(schema: &mut Schema) {
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(labels) = properties
        .get_mut("matchLabels")
        .and_then(Value::as_object_mut)
    {
        labels.insert("maxProperties".into(), json!(64));
        if let Some(values) = labels
            .get_mut("additionalProperties")
            .and_then(Value::as_object_mut)
        {
            values.insert("maxLength".into(), json!(63));
        }
    }
    if let Some(expressions) = properties
        .get_mut("matchExpressions")
        .and_then(Value::as_object_mut)
    {
        expressions.insert("maxItems".into(), json!(64));
        expressions.insert("x-kubernetes-list-type".into(), json!("atomic"));
        if let Some(fields) = expressions
            .get_mut("items")
            .and_then(|items| items.get_mut("properties"))
            .and_then(Value::as_object_mut)
        {
            for (field, extra) in [
                ("key", json!({"maxLength": 317})),
                (
                    "operator",
                    json!({"enum": ["In", "NotIn", "Exists", "DoesNotExist"]}),
                ),
                (
                    "values",
                    json!({"maxItems": 64, "items": {"type": "string", "maxLength": 63}}),
                ),
            ] {
                if let (Some(property), Some(extra)) = (
                    fields.get_mut(field).and_then(Value::as_object_mut),
                    extra.as_object(),
                ) {
                    property.extend(extra.clone());
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::Value;

    /// Every string of `schema` has a maxLength (or is an enum or a
    /// timestamp), every list a maxItems and every map a maxProperties: the
    /// API server's CEL cost estimate then stays bounded. Returns the paths
    /// that are not bounded.
    pub fn unbounded(schema: &Value, path: &str, found: &mut Vec<String>) {
        let Some(object) = schema.as_object() else {
            return;
        };
        match object.get("type").and_then(Value::as_str) {
            Some("string")
                if !object.contains_key("maxLength")
                    && !object.contains_key("enum")
                    && object.get("format").and_then(Value::as_str) != Some("date-time") =>
            {
                found.push(path.to_string())
            }
            Some("array") if !object.contains_key("maxItems") => found.push(path.to_string()),
            Some("object")
                if object.contains_key("additionalProperties")
                    && !object.contains_key("maxProperties") =>
            {
                found.push(path.to_string())
            }
            _ => {}
        }
        if let Some(properties) = object.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                unbounded(property, &format!("{path}.{name}"), found);
            }
        }
        if let Some(items) = object.get("items") {
            unbounded(items, &format!("{path}[]"), found);
        }
        if let Some(values) = object.get("additionalProperties") {
            unbounded(values, &format!("{path}{{}}"), found);
        }
    }
}

#[cfg(test)]
mod bounds {
    use kube::CustomResourceExt;
    use serde_json::{Value, json};

    use crate::api::{iam_account::IAMAccount, login_profile::LoginProfile};

    fn schema_of(crd: impl serde::Serialize) -> Value {
        let crd = serde_json::to_value(crd).unwrap();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    /// No CEL rule's cost estimate can creep toward the API server's
    /// budget: everything the rules read is bounded (tests/chart.rs installs
    /// the CRDs into a real API server, which computes the estimate).
    #[test]
    fn every_string_list_and_map_of_both_crds_is_bounded() {
        for (kind, schema) in [
            ("LoginProfile", schema_of(LoginProfile::crd())),
            ("IAMAccount", schema_of(IAMAccount::crd())),
        ] {
            let mut found = Vec::new();
            for part in ["spec", "status"] {
                super::tests::unbounded(&schema["properties"][part], part, &mut found);
            }
            assert!(found.is_empty(), "{kind}: unbounded {found:?}");
        }
    }

    #[test]
    fn conditions_are_a_map_by_type_bounded_like_metav1_condition() {
        for schema in [schema_of(LoginProfile::crd()), schema_of(IAMAccount::crd())] {
            let conditions = &schema["properties"]["status"]["properties"]["conditions"];
            assert_eq!(conditions["x-kubernetes-list-type"], "map");
            assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
            let fields = &conditions["items"]["properties"];
            assert_eq!(
                fields["status"]["enum"],
                json!(["True", "False", "Unknown"])
            );
            assert_eq!(fields["reason"]["maxLength"], 1024);
            assert_eq!(fields["message"]["maxLength"], 32768);
            assert_eq!(fields["lastTransitionTime"]["format"], "date-time");
        }
    }

    #[test]
    fn cel_rules_point_at_their_field() {
        for schema in [schema_of(LoginProfile::crd()), schema_of(IAMAccount::crd())] {
            let rules = schema["properties"]["spec"]["x-kubernetes-validations"]
                .as_array()
                .unwrap();
            for rule in rules {
                assert!(
                    rule["fieldPath"]
                        .as_str()
                        .is_some_and(|p| p.starts_with('.')),
                    "{rule}"
                );
            }
        }
    }
}
