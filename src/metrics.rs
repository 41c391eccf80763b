//! Prometheus metrics: requests and latencies by route, sign-in failures, open event
//! streams and the heap in use.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub sign_in_failures: IntCounter,
    event_streams: IntGauge,
    heap_in_use: IntGauge,
    audit_anchor: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "confide_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "confide_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route", "method"],
        )
        .expect("metric definition");
        let sign_in_failures = IntCounter::new(
            "confide_sign_in_failures_total",
            "Failed sign-ins (wrong credentials or throttled)",
        )
        .expect("metric definition");
        registry
            .register(Box::new(requests.clone()))
            .expect("register metric");
        registry
            .register(Box::new(latency.clone()))
            .expect("register metric");
        let event_streams = IntGauge::new(
            "confide_event_streams_open",
            "Event streams (Server-Sent Events) open on this node",
        )
        .expect("metric definition");
        let heap_in_use = IntGauge::new(
            "confide_heap_in_use_bytes",
            "Bytes the allocator has handed out and not had back (glibc on Linux only)",
        )
        .expect("metric definition");
        let audit_anchor = IntGaugeVec::new(
            Opts::new(
                "confide_audit_anchor",
                "The audit chain's head at the last anchor: the value is its seq, the label its hash",
            ),
            &["hash"],
        )
        .expect("metric definition");
        for metric in [
            Box::new(sign_in_failures.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(event_streams.clone()),
            Box::new(audit_anchor.clone()),
        ] {
            registry.register(metric).expect("register metric");
        }
        if heap_in_use_bytes().is_some() {
            registry
                .register(Box::new(heap_in_use.clone()))
                .expect("register metric");
        }
        Self {
            registry,
            requests,
            latency,
            sign_in_failures,
            event_streams,
            heap_in_use,
            audit_anchor,
        }
    }

    /// Shows the audit chain's head `seq`:`hash` (and only it).
    pub fn set_audit_anchor(&self, seq: i64, hash: &str) {
        self.audit_anchor.reset();
        self.audit_anchor.with_label_values(&[hash]).set(seq);
    }

    /// The metrics as Prometheus text, with `streams` event streams open.
    pub fn render(&self, streams: usize) -> String {
        self.event_streams.set(streams as i64);
        if let Some(bytes) = heap_in_use_bytes() {
            self.heap_in_use.set(bytes);
        }
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if encoder
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// What glibc's allocator has handed out and not had back: small blocks in its arenas and
/// blocks of their own mapping. This is what the process's data takes, without the free
/// space the allocator keeps (which the resident size counts).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_in_use_bytes() -> Option<i64> {
    // SAFETY: mallinfo2 only reads the allocator's counters (under its locks).
    let info = unsafe { libc::mallinfo2() };
    i64::try_from(info.uordblks.saturating_add(info.hblkhd)).ok()
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_in_use_bytes() -> Option<i64> {
    None
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
