//! Label selectors evaluated as the API server does (`metav1.LabelSelectorAsSelector`): every
//! `matchLabels` pair and every `matchExpressions` requirement must hold; an empty selector
//! matches everything.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("unknown selector operator {0:?}")]
    UnknownOperator(String),
    #[error("operator {operator} on {key:?} needs {needs}")]
    BadValues {
        key: String,
        operator: String,
        needs: &'static str,
    },
}

/// Whether `labels` satisfy `selector`.
pub fn matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, SelectorError> {
    let pairs_hold = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let mut all_hold = pairs_hold;
    for req in selector.match_expressions.iter().flatten() {
        // Evaluate every requirement, so a malformed one is reported even after a mismatch.
        all_hold &= requirement_holds(req, labels)?;
    }
    Ok(all_hold)
}

fn requirement_holds(
    req: &LabelSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> Result<bool, SelectorError> {
    let values = req.values.as_deref().unwrap_or_default();
    let bad = |needs| SelectorError::BadValues {
        key: req.key.clone(),
        operator: req.operator.clone(),
        needs,
    };
    let value = labels.get(&req.key);
    match req.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => Err(bad("at least one value")),
        "Exists" | "DoesNotExist" if !values.is_empty() => Err(bad("no values")),
        "In" => Ok(value.is_some_and(|v| values.contains(v))),
        // NotIn also matches when the label is absent.
        "NotIn" => Ok(!value.is_some_and(|v| values.contains(v))),
        "Exists" => Ok(value.is_some()),
        "DoesNotExist" => Ok(value.is_none()),
        other => Err(SelectorError::UnknownOperator(other.to_owned())),
    }
}

/// Labels from `key=value` pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    fn exprs(reqs: Vec<LabelSelectorRequirement>) -> LabelSelector {
        LabelSelector {
            match_expressions: Some(reqs),
            match_labels: None,
        }
    }

    #[test]
    fn not_in_matches_an_absent_label() {
        let sel = exprs(vec![req("sidecar.istio.io/inject", "NotIn", &["false"])]);
        assert_eq!(matches(&sel, &labels(&[])), Ok(true));
        assert_eq!(
            matches(&sel, &labels(&[("sidecar.istio.io/inject", "true")])),
            Ok(true)
        );
        assert_eq!(
            matches(&sel, &labels(&[("sidecar.istio.io/inject", "false")])),
            Ok(false)
        );
    }

    #[test]
    fn every_requirement_and_pair_must_hold() {
        let mut sel = exprs(vec![
            req("istio.io/rev", "In", &["default"]),
            req("istio-injection", "DoesNotExist", &[]),
        ]);
        sel.match_labels = Some(labels(&[("team", "a")]));
        let ok = labels(&[("istio.io/rev", "default"), ("team", "a")]);
        assert_eq!(matches(&sel, &ok), Ok(true));
        let mut with_injection = ok.clone();
        with_injection.insert("istio-injection".into(), "enabled".into());
        assert_eq!(matches(&sel, &with_injection), Ok(false));
        assert_eq!(
            matches(&sel, &labels(&[("istio.io/rev", "default")])),
            Ok(false)
        );
    }

    #[test]
    fn an_empty_selector_matches_everything() {
        assert_eq!(
            matches(&LabelSelector::default(), &labels(&[("a", "b")])),
            Ok(true)
        );
    }

    #[test]
    fn malformed_requirements_are_errors() {
        let sel = exprs(vec![req("a", "In", &[])]);
        assert!(matches!(
            matches(&sel, &labels(&[])),
            Err(SelectorError::BadValues { .. })
        ));
        let sel = exprs(vec![req("a", "Exists", &["x"])]);
        assert!(matches!(
            matches(&sel, &labels(&[])),
            Err(SelectorError::BadValues { .. })
        ));
        let sel = exprs(vec![req("a", "Equals", &["x"])]);
        assert_eq!(
            matches(&sel, &labels(&[])),
            Err(SelectorError::UnknownOperator("Equals".into()))
        );
    }
}
