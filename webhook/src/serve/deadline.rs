//! The API server's deadline for one review: it appends `?timeout=10s` (its webhook's
//! `timeoutSeconds`, as a Go duration) to the URL and gives up on us after that.

use std::time::Duration;

/// Used when the request names no timeout: the longest `timeoutSeconds` Kubernetes allows.
pub const DEFAULT: Duration = Duration::from_secs(30);

/// The `timeout` query parameter, if present and readable.
pub fn from_query(query: Option<&str>) -> Option<Duration> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("timeout="))
        .and_then(parse_go_duration)
}

/// Parses Go's `time.Duration` text (`10s`, `1m30s`, `1.5s`, `250ms`). Negative or zero
/// durations are refused: they would make every review fail.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += Duration::try_from_secs_f64(number * seconds_per_unit).ok()?;
    }
    (!total.is_zero()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_timeout_the_api_server_appends() {
        assert_eq!(
            from_query(Some("timeout=10s")),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            from_query(Some("a=b&timeout=1m30s")),
            Some(Duration::from_secs(90))
        );
    }

    #[test]
    fn reads_go_duration_units_and_fractions() {
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_go_duration("2us"), Some(Duration::from_micros(2)));
    }

    #[test]
    fn refuses_what_is_not_a_positive_duration() {
        for text in ["", "10", "s", "10x", "-1s", "0s", "1s2", "ten seconds"] {
            assert_eq!(parse_go_duration(text), None, "{text:?}");
        }
        assert_eq!(from_query(None), None);
        assert_eq!(from_query(Some("timeout=")), None);
        assert_eq!(from_query(Some("other=10s")), None);
    }
}
