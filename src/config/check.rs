//! What a configuration must satisfy beyond its types: ranges, addresses and URLs.

use std::net::SocketAddr;

use super::Config;

impl Config {
    pub(super) fn check(&self) -> Result<(), String> {
        let a = &self.auth;
        // Bounded so that every derived duration stays far from overflow.
        let s = &self.server;
        let ranges: [(&str, i64, i64, i64); 27] = [
            (
                "server.max_connections_per_address",
                s.max_connections_per_address.min(i64::MAX as usize) as i64,
                1,
                1_000_000,
            ),
            (
                "server.send_timeout_secs",
                s.send_timeout_secs.min(i64::MAX as u64) as i64,
                1,
                3600,
            ),
            (
                "server.header_read_timeout_secs",
                s.header_read_timeout_secs.min(i64::MAX as u64) as i64,
                1,
                600,
            ),
            (
                "server.request_timeout_secs",
                s.request_timeout_secs.min(i64::MAX as u64) as i64,
                1,
                3600,
            ),
            (
                "server.body_idle_timeout_secs",
                s.body_idle_timeout_secs.min(i64::MAX as u64) as i64,
                1,
                3600,
            ),
            (
                "server.max_connections",
                s.max_connections.min(i64::MAX as usize) as i64,
                1,
                1_000_000,
            ),
            ("auth.trusted_device_days", a.trusted_device_days, 1, 3650),
            (
                "limits.form_body_max_bytes",
                self.limits.form_body_max_bytes.min(i64::MAX as usize) as i64,
                1024,
                64 << 20,
            ),
            (
                "limits.pending_upload_max_bytes",
                self.limits.pending_upload_max_bytes.min(i64::MAX as u64) as i64,
                1,
                1 << 40,
            ),
            (
                "limits.uploads_per_hour",
                self.limits.uploads_per_hour,
                1,
                1_000_000,
            ),
            (
                "limits.drafts_per_person",
                self.limits.drafts_per_person,
                1,
                1_000_000,
            ),
            (
                "notifications.coalesce_minutes",
                self.notifications.coalesce_minutes,
                0,
                24 * 60,
            ),
            (
                "notifications.delay_seconds",
                self.notifications.delay_seconds,
                0,
                24 * 3600,
            ),
            (
                "notifications.max_attempts",
                self.notifications.max_attempts,
                1,
                100,
            ),
            (
                "auth.session_idle_minutes",
                a.session_idle_minutes,
                1,
                7 * 24 * 60,
            ),
            ("auth.session_max_hours", a.session_max_hours, 1, 24 * 365),
            (
                "auth.failure_window_minutes",
                a.failure_window_minutes,
                1,
                7 * 24 * 60,
            ),
            (
                "auth.max_failures_per_account",
                a.max_failures_per_account,
                1,
                1_000_000,
            ),
            (
                "auth.max_failures_per_address",
                a.max_failures_per_address,
                1,
                1_000_000,
            ),
            (
                "auth.max_concurrent_hashes",
                a.max_concurrent_hashes as i64,
                1,
                256,
            ),
            (
                "database.max_connections",
                self.database.max_connections as i64,
                1,
                1000,
            ),
            (
                "database.busy_timeout_ms",
                self.database.busy_timeout_ms as i64,
                1,
                600_000,
            ),
            (
                "limits.json_body_max_bytes",
                self.limits.json_body_max_bytes as i64,
                1024,
                64 << 20,
            ),
            (
                "limits.body_max_chars",
                self.limits.body_max_chars as i64,
                10,
                1_000_000,
            ),
            (
                "limits.attachment_max_bytes",
                self.limits.attachment_max_bytes.min(i64::MAX as u64) as i64,
                1,
                1 << 30,
            ),
            (
                "limits.attachments_per_upload",
                self.limits.attachments_per_upload as i64,
                1,
                1000,
            ),
            (
                "limits.pending_attachment_hours",
                self.limits.pending_attachment_hours,
                1,
                24 * 365,
            ),
        ];
        for (key, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(format!(
                    "configuration key {key} must be between {min} and {max}, not {value}"
                ));
            }
        }
        if !(10..=1000).contains(&self.search.commit_interval_ms) {
            return Err(
                "configuration key search.commit_interval_ms must be between 10 and 1000".into(),
            );
        }
        if !(10..=1000).contains(&self.search.poll_interval_ms) {
            return Err(
                "configuration key search.poll_interval_ms must be between 10 and 1000".into(),
            );
        }
        if !(16..=4096).contains(&self.search.writer_memory_mb) {
            return Err(
                "configuration key search.writer_memory_mb must be between 16 and 4096".into(),
            );
        }
        if !(10..=60_000).contains(&self.notifications.poll_interval_ms) {
            return Err(
                "configuration key notifications.poll_interval_ms must be between 10 and 60000"
                    .into(),
            );
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "configuration key mail.from is not an email address: {:?}",
                self.mail.from
            ));
        }
        if !self.sms.url.is_empty()
            && !self.sms.url.starts_with("http://")
            && !self.sms.url.starts_with("https://")
        {
            return Err("configuration key sms.url must start with http:// or https://".into());
        }
        for kind in &self.limits.attachment_types {
            if crate::domain::attachments::Kind::parse(kind).is_none() {
                return Err(format!(
                    "configuration key limits.attachment_types: unknown type {kind:?} (known: {})",
                    crate::domain::attachments::Kind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if !self.storage.attachments.is_empty() {
            crate::blobs::parse_s3_url(&self.storage.attachments)
                .map_err(|e| format!("configuration key storage.attachments: {e}"))?;
        }
        let url = &self.server.public_url;
        if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(
                "configuration key server.public_url must start with http:// or https://".into(),
            );
        }
        if !self.metrics.bind.is_empty() && self.metrics.bind.parse::<SocketAddr>().is_err() {
            return Err(format!(
                "configuration key metrics.bind is not an address such as 127.0.0.1:9090: {:?}",
                self.metrics.bind
            ));
        }
        Ok(())
    }
}
