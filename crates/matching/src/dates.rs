//! Birth dates as migrants' records carry them: often estimated, entered
//! as 1 January or 1 July of a guessed year, or as a year alone.

/// A birth date, as precise as the record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthDate {
    pub year: i32,
    pub month: Option<u32>,
    pub day: Option<u32>,
}

/// How two birth dates agree, as the rules' levels name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateLevel {
    /// The same full date, and not one of the estimated conventions.
    Exact,
    /// The same full date with day and month swapped.
    Swapped,
    /// The same year, where one date is estimated or partial, or the day
    /// alone differs.
    Year,
    /// One or two years apart, where one date is estimated or partial, or
    /// the day and month agree.
    Near,
    Different,
}

impl DateLevel {
    pub fn name(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Swapped => "day-month-swapped",
            Self::Year => "same-year",
            Self::Near => "within-two-years",
            Self::Different => "different",
        }
    }
}

impl BirthDate {
    /// Parse a FHIR date: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().splitn(3, '-');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next().map(str::parse).transpose().ok()?;
        let day = parts
            .next()
            .map(|d| d.get(..2).unwrap_or(d).parse())
            .transpose()
            .ok()?;
        Some(Self { year, month, day })
    }

    /// Estimated: partial, or on one of the `conventions` (month, day) that
    /// registrations use when the real date is unknown.
    pub fn estimated(&self, conventions: &[(u32, u32)]) -> bool {
        match (self.month, self.day) {
            (Some(m), Some(d)) => conventions.contains(&(m, d)),
            _ => true,
        }
    }

    /// Compare two birth dates.
    pub fn compare(&self, other: &Self, conventions: &[(u32, u32)]) -> DateLevel {
        let loose = self.estimated(conventions) || other.estimated(conventions);
        let years = (self.year - other.year).abs();
        let same_day = self.month.is_some() && self.month == other.month && self.day == other.day;
        if !loose && years == 0 && same_day {
            return DateLevel::Exact;
        }
        if let (Some(m1), Some(d1), Some(m2), Some(d2)) =
            (self.month, self.day, other.month, other.day)
            && years == 0
            && m1 != d1
            && m1 == d2
            && d1 == m2
        {
            return DateLevel::Swapped;
        }
        let same_month = self.month.is_some() && self.month == other.month;
        if years == 0 && (loose || same_month) {
            return DateLevel::Year;
        }
        if years <= 2 && (loose || same_day) {
            return DateLevel::Near;
        }
        DateLevel::Different
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONVENTIONS: &[(u32, u32)] = &[(1, 1), (7, 1)];

    fn level(a: &str, b: &str) -> DateLevel {
        BirthDate::parse(a)
            .unwrap()
            .compare(&BirthDate::parse(b).unwrap(), CONVENTIONS)
    }

    #[test]
    fn the_same_real_date_is_exact() {
        assert_eq!(level("1990-03-17", "1990-03-17"), DateLevel::Exact);
    }

    #[test]
    fn estimated_dates_agree_only_on_the_year_even_when_equal() {
        // Two people registered with an unknown birthday both get 1 January.
        assert_eq!(level("1990-01-01", "1990-01-01"), DateLevel::Year);
        assert_eq!(level("1990-07-01", "1990-03-17"), DateLevel::Year);
        assert_eq!(level("1990", "1990-03-17"), DateLevel::Year);
        assert_eq!(level("1990-03", "1990-03-17"), DateLevel::Year);
    }

    #[test]
    fn day_and_month_swapped_is_its_own_weak_level() {
        assert_eq!(level("1990-03-11", "1990-11-03"), DateLevel::Swapped);
        // 1990-03-03 swapped is itself: exact, not swapped.
        assert_eq!(level("1990-03-03", "1990-03-03"), DateLevel::Exact);
    }

    #[test]
    fn a_year_or_two_apart_is_near_not_different() {
        assert_eq!(level("1991-03-17", "1990-03-17"), DateLevel::Near);
        assert_eq!(level("1988-01-01", "1990-05-02"), DateLevel::Near);
        assert_eq!(level("1992", "1990"), DateLevel::Near);
        assert_eq!(level("1993", "1990"), DateLevel::Different);
    }

    #[test]
    fn real_dates_far_apart_are_different() {
        assert_eq!(level("1990-03-17", "1990-09-02"), DateLevel::Different);
        assert_eq!(level("1991-03-17", "1990-09-02"), DateLevel::Different);
    }

    #[test]
    fn a_datetime_or_garbage_is_read_or_refused() {
        assert_eq!(
            BirthDate::parse("1990-03-17T10:00:00Z").unwrap().day,
            Some(17)
        );
        assert_eq!(BirthDate::parse("unknown"), None);
    }
}
