//! FHIR date, dateTime and instant values as half-open ranges of Unix
//! milliseconds, `[lo, hi)`, at the precision they were written with.
//! "1990" covers the whole year, "1990-05" the month, "1990-05-03" the day,
//! and "1990-05-03T10:00:00Z" one second.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A value's range, `[lo, hi)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub lo: i64,
    pub hi: i64,
}

/// Lowest and highest representable instants, for open-ended periods.
pub(crate) const MIN_MS: i64 = -62_135_596_800_000; // 0001-01-01
pub(crate) const MAX_MS: i64 = 253_402_300_800_000; // 10000-01-01

/// Parse a FHIR date, dateTime or instant (a time without a zone is read as
/// UTC, which FHIR allows for search values). None when it is not a date.
pub(crate) fn parse(s: &str) -> Option<Range> {
    let (date_part, time_part) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut fields = date_part.split('-');
    let year: i32 = digits(fields.next()?, 4)?.try_into().ok()?;
    let month = match fields.next() {
        Some(m) => Some(digits(m, 2)?),
        None => None,
    };
    let day = match fields.next() {
        Some(d) => Some(digits(d, 2)?),
        None => None,
    };
    if fields.next().is_some() {
        return None;
    }
    let month_of = |m: u32| Month::try_from(u8::try_from(m).ok()?).ok();
    match (month, day, time_part) {
        (None, None, None) => {
            let lo = Date::from_calendar_date(year, Month::January, 1).ok()?;
            let hi = Date::from_calendar_date(year + 1, Month::January, 1).ok()?;
            Some(Range {
                lo: day_ms(lo),
                hi: day_ms(hi),
            })
        }
        (Some(m), None, None) => {
            let month = month_of(m)?;
            let lo = Date::from_calendar_date(year, month, 1).ok()?;
            let (ny, nm) = if month == Month::December {
                (year + 1, Month::January)
            } else {
                (year, month.next())
            };
            let hi = Date::from_calendar_date(ny, nm, 1).ok()?;
            Some(Range {
                lo: day_ms(lo),
                hi: day_ms(hi),
            })
        }
        (Some(m), Some(d), None) => {
            let date = Date::from_calendar_date(year, month_of(m)?, u8::try_from(d).ok()?).ok()?;
            let lo = day_ms(date);
            Some(Range {
                lo,
                hi: lo + 86_400_000,
            })
        }
        (Some(m), Some(d), Some(t)) => {
            let date = Date::from_calendar_date(year, month_of(m)?, u8::try_from(d).ok()?).ok()?;
            parse_time(date, t)
        }
        _ => None,
    }
}

/// `hh:mm[:ss[.fff]][Z|±hh:mm]` on `date`.
fn parse_time(date: Date, t: &str) -> Option<Range> {
    let (clock, offset) = split_zone(t)?;
    let mut parts = clock.split(':');
    let hour = u8::try_from(digits(parts.next()?, 2)?).ok()?;
    let minute = u8::try_from(digits(parts.next()?, 2)?).ok()?;
    let (second, millis, width) = match parts.next() {
        None => (0u8, 0u16, 60_000),
        Some(sec) => match sec.split_once('.') {
            None => (u8::try_from(digits(sec, 2)?).ok()?, 0, 1_000),
            Some((whole, frac)) => {
                if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let ms: u16 = format!("{frac:0<3}")[..3].parse().ok()?;
                (u8::try_from(digits(whole, 2)?).ok()?, ms, 1)
            }
        },
    };
    if parts.next().is_some() {
        return None;
    }
    let time = Time::from_hms_milli(hour, minute, second, millis).ok()?;
    let at = PrimitiveDateTime::new(date, time).assume_offset(offset);
    let lo = unix_ms(at);
    Some(Range { lo, hi: lo + width })
}

fn split_zone(t: &str) -> Option<(&str, UtcOffset)> {
    if let Some(clock) = t.strip_suffix('Z') {
        return Some((clock, UtcOffset::UTC));
    }
    if let Some(pos) = t.rfind(['+', '-']) {
        let (clock, zone) = t.split_at(pos);
        let sign: i8 = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':')?;
        let h = i8::try_from(digits(h, 2)?).ok()?;
        let m = i8::try_from(digits(m, 2)?).ok()?;
        return Some((clock, UtcOffset::from_hms(sign * h, sign * m, 0).ok()?));
    }
    Some((t, UtcOffset::UTC))
}

/// Exactly `width` ASCII digits.
fn digits(s: &str, width: usize) -> Option<u32> {
    (s.len() == width && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn day_ms(date: Date) -> i64 {
    unix_ms(date.midnight().assume_utc())
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(if at.year() < 0 {
        MIN_MS
    } else {
        MAX_MS
    })
}

/// Now, as a FHIR instant with millisecond precision, and in Unix milliseconds.
pub(crate) fn now() -> (String, i64) {
    let ms = unix_ms(OffsetDateTime::now_utc());
    (instant_of_millis(ms), ms)
}

/// Unix milliseconds as a FHIR instant in UTC with millisecond precision.
pub(crate) fn instant_of_millis(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_covers_the_whole_year() {
        let r = parse("1990").unwrap();
        assert_eq!(r.lo, parse("1990-01-01").unwrap().lo);
        assert_eq!(r.hi, parse("1991-01-01").unwrap().lo);
    }

    #[test]
    fn a_month_ends_where_the_next_begins_including_december() {
        assert_eq!(
            parse("1990-02").unwrap().hi,
            parse("1990-03-01").unwrap().lo
        );
        assert_eq!(
            parse("1990-12").unwrap().hi,
            parse("1991-01-01").unwrap().lo
        );
    }

    #[test]
    fn a_date_time_with_offset_is_converted_to_utc() {
        let a = parse("2020-01-01T10:00:00+02:00").unwrap();
        let b = parse("2020-01-01T08:00:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.hi - a.lo, 1_000);
    }

    #[test]
    fn fractional_seconds_have_millisecond_precision() {
        let r = parse("2020-01-01T08:00:00.5Z").unwrap();
        assert_eq!(r.lo, parse("2020-01-01T08:00:00Z").unwrap().lo + 500);
        assert_eq!(r.hi - r.lo, 1);
    }

    #[test]
    fn invalid_dates_are_rejected() {
        for bad in [
            "1990-13",
            "1990-02-30",
            "90",
            "1990-1-1",
            "2020-01-01T25:00:00Z",
            "abc",
            "1990-01-01T10",
        ] {
            assert!(parse(bad).is_none(), "{bad} should not parse");
        }
    }
}
