//! Istio's template helper functions.
