//! Per-person quotas, so that one account cannot fill the disk or the database: unsent
//! uploads held at once, files uploaded per hour, and drafts kept. Pure functions: the
//! service layer counts, these decide.

use super::RuleViolation;
use crate::domain::Code;

/// Whether `adding` more bytes of uploads fit beside the `held` unsent ones.
pub fn may_hold_uploads(held: u64, adding: u64, limit: u64) -> Result<(), RuleViolation> {
    if held.saturating_add(adding) > limit {
        return Err(RuleViolation::field(
            Code::UploadQuotaExceeded,
            "file",
            format!(
                "file: your unsent uploads would take {} bytes, more than the {limit} you may \
                 hold; send or delete some first. Nothing was uploaded.",
                held.saturating_add(adding)
            ),
        ));
    }
    Ok(())
}

/// Whether `uploaded` files in the current hour (this request's included) are within the
/// hourly limit.
pub fn may_upload_this_hour(uploaded: i64, limit: i64) -> Result<(), RuleViolation> {
    if uploaded > limit {
        return Err(RuleViolation::field(
            Code::UploadRateExceeded,
            "file",
            format!("file: at most {limit} files an hour; try again later. Nothing was uploaded."),
        ));
    }
    Ok(())
}

/// Whether one more draft fits beside `kept` ones.
pub fn may_keep_another_draft(kept: i64, limit: i64) -> Result<(), RuleViolation> {
    if kept >= limit {
        return Err(RuleViolation::new(
            Code::DraftQuotaExceeded,
            format!("You may keep at most {limit} drafts; send or delete some first."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_fit_up_to_the_limit_exactly() {
        assert!(may_hold_uploads(150, 50, 200).is_ok());
        let err = may_hold_uploads(150, 51, 200).unwrap_err();
        assert_eq!(
            (err.code, err.field),
            (Code::UploadQuotaExceeded, Some("file"))
        );
        assert!(may_hold_uploads(u64::MAX, 1, 200).is_err());
    }

    #[test]
    fn the_hourly_upload_limit_counts_this_request() {
        assert!(may_upload_this_hour(200, 200).is_ok());
        assert_eq!(
            may_upload_this_hour(201, 200).unwrap_err().code,
            Code::UploadRateExceeded
        );
    }

    #[test]
    fn drafts_stop_at_the_limit() {
        assert!(may_keep_another_draft(199, 200).is_ok());
        assert_eq!(
            may_keep_another_draft(200, 200).unwrap_err().code,
            Code::DraftQuotaExceeded
        );
    }
}
