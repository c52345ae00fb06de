//! `mesh-init`: installs Istio's traffic-capture rules. (Being written.)
fn main() {}
