//! The wall clock: reading the CMOS real-time clock's registers (BCD or
//! binary, 12- or 24-hour) into seconds since the Unix epoch, which the
//! hypervisor publishes in every shared-info page (`wc_sec`) as the wall
//! time at system time zero.

/// The RTC's registers as read: seconds, minutes, hours, day, month, year
/// (two digits), century (0 when the firmware has no century register),
/// and status register B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtcRegisters {
    /// Register 0x00.
    pub seconds: u8,
    /// Register 0x02.
    pub minutes: u8,
    /// Register 0x04 (bit 7 is PM in 12-hour mode).
    pub hours: u8,
    /// Register 0x07.
    pub day: u8,
    /// Register 0x08.
    pub month: u8,
    /// Register 0x09.
    pub year: u8,
    /// The century register, or 0.
    pub century: u8,
    /// Status register B: bit 2 binary mode, bit 1 24-hour mode.
    pub status_b: u8,
}

fn from_bcd(value: u8) -> u8 {
    (value >> 4) * 10 + (value & 0x0f)
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Seconds since the epoch, or `None` if the registers hold no valid date.
pub fn unix_seconds(registers: &RtcRegisters) -> Option<u64> {
    let binary = registers.status_b & 0x04 != 0;
    let decode = |value: u8| if binary { value } else { from_bcd(value) };
    let pm = registers.hours & 0x80 != 0;
    let mut hours = decode(registers.hours & 0x7f);
    if registers.status_b & 0x02 == 0 {
        // 12-hour mode: 12 AM is 0, 12 PM is 12.
        hours %= 12;
        if pm {
            hours += 12;
        }
    }
    let (seconds, minutes) = (decode(registers.seconds), decode(registers.minutes));
    let (day, month) = (decode(registers.day), decode(registers.month));
    let century = if registers.century != 0 { u32::from(decode(registers.century)) } else { 20 };
    let year = century * 100 + u32::from(decode(registers.year));
    if seconds > 59 || minutes > 59 || hours > 23 || !(1..=31).contains(&day) || !(1..=12).contains(&month) {
        return None;
    }
    let days = days_from_civil(i64::from(year), u32::from(month), u32::from(day));
    let total = days * 86_400 + i64::from(hours) * 3_600 + i64::from(minutes) * 60 + i64::from(seconds);
    u64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bcd(seconds: u8, minutes: u8, hours: u8, day: u8, month: u8, year: u8) -> RtcRegisters {
        RtcRegisters { seconds, minutes, hours, day, month, year, century: 0x20, status_b: 0x02 }
    }

    #[test]
    fn bcd_24_hour() {
        // 2026-11-27 21:04:42 UTC (`date -u -d "2026-11-27 21:04:42" +%s`)
        assert_eq!(unix_seconds(&bcd(0x42, 0x04, 0x21, 0x27, 0x11, 0x26)), Some(1_795_813_482));
        // The epoch and a leap day.
        let epoch = RtcRegisters { century: 0x19, ..bcd(0, 0, 0, 1, 1, 0x70) };
        assert_eq!(unix_seconds(&epoch), Some(0));
        assert_eq!(unix_seconds(&bcd(0, 0, 0, 0x29, 0x02, 0x24)), Some(1_709_164_800));
    }

    #[test]
    fn binary_and_12_hour_modes() {
        let binary = RtcRegisters { status_b: 0x06, century: 20, ..bcd(42, 4, 21, 27, 11, 26) };
        assert_eq!(unix_seconds(&binary), Some(1_795_813_482));
        let pm = RtcRegisters { status_b: 0x00, ..bcd(0x42, 0x04, 0x89, 0x27, 0x11, 0x26) };
        assert_eq!(unix_seconds(&pm), Some(1_795_813_482));
        let midnight = RtcRegisters { status_b: 0x00, ..bcd(0, 0, 0x12, 0x27, 0x11, 0x26) };
        assert_eq!(unix_seconds(&midnight).map(|s| s % 86_400), Some(0));
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(unix_seconds(&bcd(0x60, 0, 0, 1, 1, 0)), None);
        assert_eq!(unix_seconds(&bcd(0, 0, 0, 0, 1, 0)), None);
        assert_eq!(unix_seconds(&bcd(0, 0, 0, 1, 0x13, 0)), None);
        assert_eq!(unix_seconds(&bcd(0, 0, 0x24, 1, 1, 0)), None);
    }
}
