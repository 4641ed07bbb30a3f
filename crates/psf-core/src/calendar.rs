//! Dates the PSF sets deadlines by.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

/// Business days (Monday to Friday) after an incident within which its post-incident
/// review is due (PSF 7.3).
pub const REVIEW_BUSINESS_DAYS: u32 = 5;

/// The date a post-incident review is due for an incident declared at `declared_ms`
/// (ms since the epoch): [`REVIEW_BUSINESS_DAYS`] business days after that day, in UTC.
pub fn review_due(declared_ms: i64) -> Date {
    let day = Timestamp::from_millisecond(declared_ms).unwrap_or(Timestamp::UNIX_EPOCH).to_zoned(TimeZone::UTC).date();
    let mut due = day;
    let mut left = REVIEW_BUSINESS_DAYS;
    while left > 0 {
        due = due.tomorrow().unwrap_or(due);
        if !matches!(due.weekday(), Weekday::Saturday | Weekday::Sunday) {
            left -= 1;
        }
    }
    due
}

/// Whether, on `today`, the review of an incident declared at `declared_ms` is past due.
pub fn review_past_due(declared_ms: i64, today: Date) -> bool {
    today > review_due(declared_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(date: Date) -> i64 {
        date.to_zoned(TimeZone::UTC).map(|z| z.timestamp().as_millisecond()).unwrap()
    }

    #[test]
    fn reviews_are_due_five_business_days_later() {
        // 2026-11-20 is a Friday: Mon 23 … Fri 27.
        assert_eq!(review_due(ms(jiff::civil::date(2026, 11, 20))), jiff::civil::date(2026, 11, 27));
        // A Wednesday: Thu, Fri, Mon, Tue, Wed.
        assert_eq!(review_due(ms(jiff::civil::date(2026, 11, 25))), jiff::civil::date(2026, 12, 2));
        // Declared on a Saturday: Mon … Fri.
        assert_eq!(review_due(ms(jiff::civil::date(2026, 11, 21))), jiff::civil::date(2026, 11, 27));
    }
}
