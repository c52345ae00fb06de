//! Checks of the annotations Istio validates before injecting (`validateAnnotations`): one bad
//! value refuses the pod, with every problem listed.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// All invalid annotations of one pod, sorted by annotation name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct InvalidAnnotations {
    pub problems: Vec<String>,
}

type Check = fn(&str) -> Result<(), String>;

fn check_for(name: &str) -> Option<Check> {
    Some(match name {
        "sidecar.istio.io/interceptionMode" => interception_mode,
        "status.sidecar.istio.io/port" => status_port,
        "readiness.status.sidecar.istio.io/initialDelaySeconds"
        | "readiness.status.sidecar.istio.io/periodSeconds"
        | "readiness.status.sidecar.istio.io/failureThreshold" => uint32,
        "traffic.sidecar.istio.io/includeOutboundIPRanges" => include_ip_ranges,
        "traffic.sidecar.istio.io/excludeOutboundIPRanges" => exclude_ip_ranges,
        "traffic.sidecar.istio.io/includeInboundPorts" => include_inbound_ports,
        "traffic.sidecar.istio.io/excludeInboundPorts" => |v| port_list("excludeInboundPorts", v),
        "traffic.sidecar.istio.io/excludeOutboundPorts" => |v| port_list("excludeOutboundPorts", v),
        "traffic.sidecar.istio.io/excludeInterfaces"
        | "traffic.sidecar.istio.io/kubevirtInterfaces"
        | "istio.io/reroute-virtual-interfaces" => interface_names,
        "prometheus.istio.io/merge-metrics" => boolean,
        "proxy.istio.io/config" => proxy_config,
        "sidecar.istio.io/proxyCPU"
        | "sidecar.istio.io/proxyMemory"
        | "sidecar.istio.io/proxyCPULimit"
        | "sidecar.istio.io/proxyMemoryLimit" => quantity,
        _ => return None,
    })
}

/// Validates the annotations Istio validates; others are ignored.
pub fn annotations(annotations: &BTreeMap<String, String>) -> Result<(), InvalidAnnotations> {
    let problems: Vec<String> = annotations
        .iter()
        .filter_map(|(name, value)| {
            let check = check_for(name)?;
            check(value)
                .err()
                .map(|why| format!("invalid value '{value}' for annotation '{name}': {why}"))
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InvalidAnnotations { problems })
    }
}

fn interception_mode(v: &str) -> Result<(), String> {
    match v {
        "REDIRECT" | "TPROXY" | "NONE" => Ok(()),
        _ => Err(format!(
            "interceptionMode invalid, use REDIRECT,TPROXY,NONE: {v}"
        )),
    }
}

/// A port as Go's `strconv.ParseUint(strings.TrimSpace(p), 10, 16)` reads it.
pub fn parse_port(p: &str) -> Result<u16, String> {
    let t = p.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("failed parsing port '{p}': invalid syntax"));
    }
    t.parse::<u16>()
        .map_err(|_| format!("failed parsing port '{p}': value out of range"))
}

fn status_port(v: &str) -> Result<(), String> {
    parse_port(v)
        .map(drop)
        .map_err(|e| format!("excludeInboundPorts invalid: {e}"))
}

fn uint32(v: &str) -> Result<(), String> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && v.parse::<u32>().is_ok() {
        Ok(())
    } else {
        Err(format!("strconv.ParseUint: parsing {v:?}: invalid syntax"))
    }
}

fn boolean(v: &str) -> Result<(), String> {
    parse_go_bool(v)
        .map(drop)
        .ok_or_else(|| format!("strconv.ParseBool: parsing {v:?}: invalid syntax"))
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn cidr_list(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    for cidr in v.split(',') {
        let ok = cidr.split_once('/').is_some_and(|(ip, bits)| {
            let max = match ip.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => 32,
                Ok(IpAddr::V6(_)) => 128,
                Err(_) => return false,
            };
            !bits.is_empty()
                && bits.bytes().all(|b| b.is_ascii_digit())
                && bits.parse::<u32>().is_ok_and(|b| b <= max)
        });
        if !ok {
            return Err(format!(
                "failed parsing cidr '{cidr}': not an address/prefix-length"
            ));
        }
    }
    Ok(())
}

fn include_ip_ranges(v: &str) -> Result<(), String> {
    if v == "*" {
        return Ok(());
    }
    cidr_list(v).map_err(|e| format!("includeIPRanges invalid: {e}"))
}

fn exclude_ip_ranges(v: &str) -> Result<(), String> {
    cidr_list(v).map_err(|e| format!("excludeIPRanges invalid: {e}"))
}

fn port_list(name: &str, v: &str) -> Result<(), String> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(());
    }
    for p in t.split(',') {
        parse_port(p).map_err(|e| format!("{name} invalid: failed parsing port '{p}': {e}"))?;
    }
    Ok(())
}

fn include_inbound_ports(v: &str) -> Result<(), String> {
    if v == "*" {
        return Ok(());
    }
    port_list("includeInboundPorts", v)
}

/// Linux interface names: 1–15 bytes, no `/`, no whitespace, not `.` or `..`.
fn interface_names(v: &str) -> Result<(), String> {
    for name in v.split(',') {
        let bad = name.is_empty()
            || name.len() > 15
            || name == "."
            || name == ".."
            || name.contains('/')
            || name.chars().any(char::is_whitespace);
        if bad {
            return Err(format!("interface name {name:?} is invalid"));
        }
    }
    Ok(())
}

fn proxy_config(v: &str) -> Result<(), String> {
    crate::mesh::parse_proxy_config(v).map(drop).map_err(|e| {
        format!(
            "failed to convert to apply proxy config: {}",
            crate::chain(&e)
        )
    })
}

fn quantity(v: &str) -> Result<(), String> {
    if v.chars().any(char::is_control) {
        return Err("value contains control characters".into());
    }
    crate::quantity::canonical(v)
        .map(drop)
        .ok_or_else(|| "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> Result<(), InvalidAnnotations> {
        annotations(
            &[(name.to_string(), value.to_string())]
                .into_iter()
                .collect(),
        )
    }

    #[test]
    fn traffic_annotations_are_checked() {
        let inc = "traffic.sidecar.istio.io/includeOutboundIPRanges";
        assert!(one(inc, "*").is_ok());
        assert!(one(inc, "10.0.0.0/8,fd00::/8").is_ok());
        let err = one(inc, "10.0.0.0/8,bad").unwrap_err().to_string();
        assert!(
            err.contains("includeIPRanges invalid") && err.contains("'bad'"),
            "{err}"
        );
        assert!(one("traffic.sidecar.istio.io/excludeOutboundIPRanges", "*").is_err());
        assert!(one("traffic.sidecar.istio.io/excludeInboundPorts", "*").is_err());
        assert!(one("traffic.sidecar.istio.io/excludeInboundPorts", "80, 443").is_ok());
        assert!(one("traffic.sidecar.istio.io/excludeOutboundPorts", "70000").is_err());
        assert!(one("traffic.sidecar.istio.io/includeInboundPorts", "*").is_ok());
    }

    #[test]
    fn every_problem_is_reported() {
        let anns = [
            ("sidecar.istio.io/interceptionMode", "SIDEWAYS"),
            ("status.sidecar.istio.io/port", "x"),
            ("unrelated", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(annotations(&anns).unwrap_err().problems.len(), 2);
    }

    #[test]
    fn resource_and_bool_annotations_are_checked() {
        assert!(one("sidecar.istio.io/proxyCPU", "100m").is_ok());
        assert!(one("sidecar.istio.io/proxyCPU", "lots").is_err());
        assert!(one("prometheus.istio.io/merge-metrics", "maybe").is_err());
        assert!(one("prometheus.istio.io/merge-metrics", "F").is_ok());
        assert!(
            one(
                "proxy.istio.io/config",
                "holdApplicationUntilProxyStarts: true"
            )
            .is_ok()
        );
        assert!(one("proxy.istio.io/config", "[nope").is_err());
    }
}
