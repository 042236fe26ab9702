//! Prometheus metrics, rendered in the text exposition format.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request, evaluation and stream metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Connected stream clients.
    pub stream_clients: AtomicI64,
}

impl Metrics {
    /// Records one request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        *self.requests.lock().unwrap_or_else(|p| p.into_inner()).entry((route.to_owned(), method.to_owned(), status)).or_default() += 1;
        let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = l.entry(route.to_owned()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Renders all metrics; `evaluations` are (environment, flag, count).
    pub fn render(&self, evaluations: &[(String, String, u64)], flags: usize, revision: i64) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let esc = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        s.push_str(
            "# HELP gantry_http_requests_total HTTP requests by route, method and status.\n# TYPE gantry_http_requests_total counter\n",
        );
        for ((route, method, status), n) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(s, "gantry_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}", esc(route));
        }
        s.push_str("# HELP gantry_http_request_duration_seconds HTTP request latency by route.\n# TYPE gantry_http_request_duration_seconds histogram\n");
        for (route, h) in self.latency.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let r = esc(route);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(s, "gantry_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(s, "gantry_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(s, "gantry_http_request_duration_seconds_sum{{route=\"{r}\"}} {}", h.sum);
            let _ = writeln!(s, "gantry_http_request_duration_seconds_count{{route=\"{r}\"}} {}", h.count);
        }
        s.push_str("# HELP gantry_flag_evaluations_total Server-side and SDK-reported evaluations per flag and environment.\n# TYPE gantry_flag_evaluations_total counter\n");
        for (env, flag, n) in evaluations {
            let _ = writeln!(s, "gantry_flag_evaluations_total{{environment=\"{}\",flag=\"{}\"}} {n}", esc(env), esc(flag));
        }
        s.push_str("# HELP gantry_stream_clients Connected server-sent event clients.\n# TYPE gantry_stream_clients gauge\n");
        let _ = writeln!(s, "gantry_stream_clients {}", self.stream_clients.load(Ordering::Relaxed));
        s.push_str("# HELP gantry_flags Flags defined.\n# TYPE gantry_flags gauge\n");
        let _ = writeln!(s, "gantry_flags {flags}");
        s.push_str("# HELP gantry_config_revision Current configuration revision.\n# TYPE gantry_config_revision gauge\n");
        let _ = writeln!(s, "gantry_config_revision {revision}");
        s
    }
}
