//! Prometheus text exposition, hand-rolled over atomics: a handful of counters and one
//! histogram do not earn a metrics framework. Istio's names and buckets
//! (`pkg/kube/inject/monitoring.go`, spec §6.3) so existing dashboards keep working.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Istio's buckets for `sidecar_injection_time_seconds`.
const TIME_BUCKETS: [f64; 8] = [0.1, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0];

/// Counters shared by the routes, the reloaders and `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Every request to `/inject` (Istio: `sidecar_injection_requests_total`).
    pub requests: AtomicU64,
    /// Every AdmissionReview answered, allowed or not (Istio counts denials here too).
    pub success: AtomicU64,
    /// Pods allowed unchanged.
    pub skip: AtomicU64,
    /// Requests refused over HTTP and reviews denied.
    pub failure: AtomicU64,
    time: Histogram,
    config_reloads_ok: AtomicU64,
    config_reloads_failed: AtomicU64,
    config_last_success: AtomicI64,
    cert_reloads_ok: AtomicU64,
    cert_reloads_failed: AtomicU64,
    cert_not_after: AtomicI64,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; TIME_BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds, so it can stay an integer atomic.
    sum_micros: AtomicU64,
}

/// What a reload attempt did, for the reload counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    Succeeded,
    Failed,
}

impl Metrics {
    pub fn observe_time(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in TIME_BUCKETS.iter().zip(&self.time.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.time.count.fetch_add(1, Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.time.sum_micros.fetch_add(micros, Relaxed);
    }

    /// A configuration load; `now` is Unix seconds, recorded on success.
    pub fn config_reload(&self, outcome: Reload, now: i64) {
        match outcome {
            Reload::Succeeded => {
                self.config_reloads_ok.fetch_add(1, Relaxed);
                self.config_last_success.store(now, Relaxed);
            }
            Reload::Failed => {
                self.config_reloads_failed.fetch_add(1, Relaxed);
            }
        }
    }

    /// A certificate load; `not_after` is the served certificate's expiry on success.
    pub fn cert_reload(&self, outcome: Reload, not_after: Option<i64>) {
        match outcome {
            Reload::Succeeded => {
                self.cert_reloads_ok.fetch_add(1, Relaxed);
                if let Some(not_after) = not_after {
                    self.cert_not_after.store(not_after, Relaxed);
                }
            }
            Reload::Failed => {
                self.cert_reloads_failed.fetch_add(1, Relaxed);
            }
        }
    }

    /// The exposition text. `now` (Unix seconds) gives the certificate's remaining lifetime.
    pub fn render(&self, now: i64) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            &mut out,
            "sidecar_injection_requests_total",
            "Total number of sidecar injection requests.",
            self.requests.load(Relaxed),
        );
        counter(
            &mut out,
            "sidecar_injection_success_total",
            "Total number of successful sidecar injection requests.",
            self.success.load(Relaxed),
        );
        counter(
            &mut out,
            "sidecar_injection_skip_total",
            "Total number of skipped sidecar injection requests.",
            self.skip.load(Relaxed),
        );
        counter(
            &mut out,
            "sidecar_injection_failure_total",
            "Total number of failed sidecar injection requests.",
            self.failure.load(Relaxed),
        );
        self.render_time(&mut out);

        let _ = writeln!(
            out,
            "# HELP sidecar_injector_build_info Build information; the value is always 1.\n\
             # TYPE sidecar_injector_build_info gauge\n\
             sidecar_injector_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let reloads = |out: &mut String, what: &str, ok: &AtomicU64, failed: &AtomicU64| {
            let name = format!("sidecar_injector_{what}_reloads_total");
            let _ = writeln!(
                out,
                "# HELP {name} Loads of the {what} files, by result (a failed load keeps the previous one).\n\
                 # TYPE {name} counter\n\
                 {name}{{result=\"success\"}} {}\n\
                 {name}{{result=\"failure\"}} {}",
                ok.load(Relaxed),
                failed.load(Relaxed)
            );
        };
        reloads(
            &mut out,
            "config",
            &self.config_reloads_ok,
            &self.config_reloads_failed,
        );
        let _ = writeln!(
            out,
            "# HELP sidecar_injector_config_last_reload_success_timestamp_seconds When the configuration in use was loaded.\n\
             # TYPE sidecar_injector_config_last_reload_success_timestamp_seconds gauge\n\
             sidecar_injector_config_last_reload_success_timestamp_seconds {}",
            self.config_last_success.load(Relaxed)
        );
        reloads(
            &mut out,
            "cert",
            &self.cert_reloads_ok,
            &self.cert_reloads_failed,
        );
        let not_after = self.cert_not_after.load(Relaxed);
        let _ = writeln!(
            out,
            "# HELP sidecar_injector_cert_expiry_timestamp_seconds When the serving certificate in use expires.\n\
             # TYPE sidecar_injector_cert_expiry_timestamp_seconds gauge\n\
             sidecar_injector_cert_expiry_timestamp_seconds {not_after}\n\
             # HELP sidecar_injector_cert_expiry_seconds Seconds until the serving certificate in use expires (negative once expired).\n\
             # TYPE sidecar_injector_cert_expiry_seconds gauge\n\
             sidecar_injector_cert_expiry_seconds {}",
            not_after - now
        );
        out
    }

    fn render_time(&self, out: &mut String) {
        let name = "sidecar_injection_time_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Total time taken for injection in seconds.\n# TYPE {name} histogram"
        );
        for (bound, bucket) in TIME_BUCKETS.iter().zip(&self.time.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.time.count.load(Relaxed);
        let sum = self.time.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of one sample line, as a scraper would read it.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_istio_bounds() {
        let metrics = Metrics::default();
        metrics.observe_time(Duration::from_millis(50));
        metrics.observe_time(Duration::from_secs(2));
        metrics.observe_time(Duration::from_secs(90));
        let text = metrics.render(0);
        let bucket = |le: &str| {
            sample(
                &text,
                &format!("sidecar_injection_time_seconds_bucket{{le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("0.1"), Some(1.0));
        assert_eq!(bucket("1"), Some(1.0));
        assert_eq!(bucket("3"), Some(2.0));
        assert_eq!(bucket("60"), Some(2.0));
        assert_eq!(bucket("+Inf"), Some(3.0));
        assert_eq!(
            sample(&text, "sidecar_injection_time_seconds_count"),
            Some(3.0)
        );
        assert_eq!(
            sample(&text, "sidecar_injection_time_seconds_sum"),
            Some(92.05)
        );
    }

    #[test]
    fn reload_counters_and_certificate_expiry() {
        let metrics = Metrics::default();
        metrics.config_reload(Reload::Succeeded, 1_000);
        metrics.config_reload(Reload::Failed, 2_000);
        metrics.cert_reload(Reload::Succeeded, Some(5_000));
        metrics.cert_reload(Reload::Failed, None);
        let text = metrics.render(4_000);
        assert_eq!(
            sample(
                &text,
                "sidecar_injector_config_reloads_total{result=\"success\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "sidecar_injector_config_reloads_total{result=\"failure\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "sidecar_injector_config_last_reload_success_timestamp_seconds"
            ),
            Some(1000.0)
        );
        assert_eq!(
            sample(&text, "sidecar_injector_cert_expiry_timestamp_seconds"),
            Some(5000.0)
        );
        assert_eq!(
            sample(&text, "sidecar_injector_cert_expiry_seconds"),
            Some(1000.0)
        );
    }

    #[test]
    fn every_series_has_help_and_type() {
        let text = Metrics::default().render(0);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
                .unwrap_or(name);
            assert!(text.contains(&format!("# TYPE {family} ")), "{line}");
            assert!(text.contains(&format!("# HELP {family} ")), "{line}");
        }
    }
}
