//! What a configuration must satisfy beyond its types: ranges, addresses and URLs.

use std::net::SocketAddr;

use super::Config;

/// A numeric key that must lie within `min..=max`.
struct Range {
    key: &'static str,
    value: fn(&Config) -> i64,
    min: i64,
    max: i64,
}

/// The numeric keys and their bounds, checked in this order (the first key out of range is
/// the one reported). Bounded so that every derived duration stays far from overflow.
const RANGES: [Range; 32] = [
    Range {
        key: "encryption.refresh_seconds",
        value: |c| c.encryption.refresh_seconds.min(i64::MAX as u64) as i64,
        min: 1,
        max: 3600,
    },
    Range {
        key: "audit.anchor_interval_minutes",
        value: |c| c.audit.anchor_interval_minutes.min(i64::MAX as u64) as i64,
        min: 1,
        max: 10_080,
    },
    Range {
        key: "live.poll_interval_ms",
        value: |c| c.live.poll_interval_ms.min(i64::MAX as u64) as i64,
        min: 10,
        max: 60_000,
    },
    Range {
        key: "live.keep_alive_secs",
        value: |c| c.live.keep_alive_secs.min(i64::MAX as u64) as i64,
        min: 1,
        max: 300,
    },
    Range {
        key: "live.changes_retention_days",
        value: |c| c.live.changes_retention_days.min(i64::MAX as u64) as i64,
        min: 1,
        max: 3650,
    },
    Range {
        key: "server.max_connections_per_address",
        value: |c| c.server.max_connections_per_address.min(i64::MAX as usize) as i64,
        min: 1,
        max: 1_000_000,
    },
    Range {
        key: "server.send_timeout_secs",
        value: |c| c.server.send_timeout_secs.min(i64::MAX as u64) as i64,
        min: 1,
        max: 3600,
    },
    Range {
        key: "server.header_read_timeout_secs",
        value: |c| c.server.header_read_timeout_secs.min(i64::MAX as u64) as i64,
        min: 1,
        max: 600,
    },
    Range {
        key: "server.request_timeout_secs",
        value: |c| c.server.request_timeout_secs.min(i64::MAX as u64) as i64,
        min: 1,
        max: 3600,
    },
    Range {
        key: "server.body_idle_timeout_secs",
        value: |c| c.server.body_idle_timeout_secs.min(i64::MAX as u64) as i64,
        min: 1,
        max: 3600,
    },
    Range {
        key: "server.max_connections",
        value: |c| c.server.max_connections.min(i64::MAX as usize) as i64,
        min: 1,
        max: 1_000_000,
    },
    Range {
        key: "auth.trusted_device_days",
        value: |c| c.auth.trusted_device_days,
        min: 1,
        max: 3650,
    },
    Range {
        key: "limits.form_body_max_bytes",
        value: |c| c.limits.form_body_max_bytes.min(i64::MAX as usize) as i64,
        min: 1024,
        max: 64 << 20,
    },
    Range {
        key: "limits.pending_upload_max_bytes",
        value: |c| c.limits.pending_upload_max_bytes.min(i64::MAX as u64) as i64,
        min: 1,
        max: 1 << 40,
    },
    Range {
        key: "limits.uploads_per_hour",
        value: |c| c.limits.uploads_per_hour,
        min: 1,
        max: 1_000_000,
    },
    Range {
        key: "limits.drafts_per_person",
        value: |c| c.limits.drafts_per_person,
        min: 1,
        max: 1_000_000,
    },
    Range {
        key: "notifications.coalesce_minutes",
        value: |c| c.notifications.coalesce_minutes,
        min: 0,
        max: 24 * 60,
    },
    Range {
        key: "notifications.delay_seconds",
        value: |c| c.notifications.delay_seconds,
        min: 0,
        max: 24 * 3600,
    },
    Range {
        key: "notifications.max_attempts",
        value: |c| c.notifications.max_attempts,
        min: 1,
        max: 100,
    },
    Range {
        key: "auth.session_idle_minutes",
        value: |c| c.auth.session_idle_minutes,
        min: 1,
        max: 7 * 24 * 60,
    },
    Range {
        key: "auth.session_max_hours",
        value: |c| c.auth.session_max_hours,
        min: 1,
        max: 24 * 365,
    },
    Range {
        key: "auth.failure_window_minutes",
        value: |c| c.auth.failure_window_minutes,
        min: 1,
        max: 7 * 24 * 60,
    },
    Range {
        key: "auth.max_failures_per_account",
        value: |c| c.auth.max_failures_per_account,
        min: 1,
        max: 1_000_000,
    },
    Range {
        key: "auth.max_failures_per_address",
        value: |c| c.auth.max_failures_per_address,
        min: 1,
        max: 1_000_000,
    },
    Range {
        key: "auth.max_concurrent_hashes",
        value: |c| c.auth.max_concurrent_hashes as i64,
        min: 1,
        max: 256,
    },
    Range {
        key: "database.max_connections",
        value: |c| c.database.max_connections as i64,
        min: 1,
        max: 1000,
    },
    Range {
        key: "database.busy_timeout_ms",
        value: |c| c.database.busy_timeout_ms as i64,
        min: 1,
        max: 600_000,
    },
    Range {
        key: "limits.json_body_max_bytes",
        value: |c| c.limits.json_body_max_bytes as i64,
        min: 1024,
        max: 64 << 20,
    },
    Range {
        key: "limits.body_max_chars",
        value: |c| c.limits.body_max_chars as i64,
        min: 10,
        max: 1_000_000,
    },
    Range {
        key: "limits.attachment_max_bytes",
        value: |c| c.limits.attachment_max_bytes.min(i64::MAX as u64) as i64,
        min: 1,
        max: 1 << 30,
    },
    Range {
        key: "limits.attachments_per_upload",
        value: |c| c.limits.attachments_per_upload as i64,
        min: 1,
        max: 1000,
    },
    Range {
        key: "limits.pending_attachment_hours",
        value: |c| c.limits.pending_attachment_hours,
        min: 1,
        max: 24 * 365,
    },
];

impl Config {
    /// Checks what the types cannot say; the error names the first offending key. The
    /// checks run in a fixed order, so that a file with several mistakes always reports
    /// the same one first.
    pub(super) fn check(&self) -> Result<(), String> {
        self.check_ranges()?;
        self.check_pace()?;
        self.check_senders()?;
        self.check_attachments()?;
        self.check_addresses()?;
        Ok(())
    }

    /// Every key of [`RANGES`] within its bounds.
    fn check_ranges(&self) -> Result<(), String> {
        for range in &RANGES {
            let (key, value, min, max) = (range.key, (range.value)(self), range.min, range.max);
            if !(min..=max).contains(&value) {
                return Err(format!(
                    "configuration key {key} must be between {min} and {max}, not {value}"
                ));
            }
        }
        Ok(())
    }

    /// The search indexer's and the notification sender's intervals and memory.
    fn check_pace(&self) -> Result<(), String> {
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
        Ok(())
    }

    /// The sender of emails is an address; the SMS gateway, if any, an HTTP(S) URL.
    fn check_senders(&self) -> Result<(), String> {
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
        Ok(())
    }

    /// Every accepted attachment type is one Confide knows; an object store for them, if
    /// any, is a valid `s3://` URL.
    fn check_attachments(&self) -> Result<(), String> {
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
        Ok(())
    }

    /// The public URL, if set, is HTTP(S); the metrics address, if set, is an address.
    fn check_addresses(&self) -> Result<(), String> {
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
