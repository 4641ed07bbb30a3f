//! Validators: what turns a pattern match into a finding.
//!
//! Each takes the matched text and says whether it is a real instance of its type.
//! They allocate nothing on the common path; digit runs are walked in place.

use sha2::{Digest, Sha256};

/// The ASCII digits of `s`, skipping spaces and dashes, as values 0–9.
fn digits(s: &str) -> impl DoubleEndedIterator<Item = u32> + '_ {
    s.bytes().filter(u8::is_ascii_digit).map(|b| u32::from(b - b'0'))
}

/// The Luhn checksum used by payment cards.
pub fn luhn(s: &str) -> bool {
    let mut sum = 0;
    for (i, d) in digits(s).rev().enumerate() {
        sum += if i % 2 == 1 {
            let x = d * 2;
            if x > 9 { x - 9 } else { x }
        } else {
            d
        };
    }
    sum % 10 == 0
}

/// Whether a card number (digits only) belongs to a known brand with a length it issues.
pub fn card_brand(number: &str) -> Option<&'static str> {
    let len = number.len();
    let prefix = |n: usize| number.get(..n).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
    let brand = match () {
        _ if number.starts_with('4') && matches!(len, 13 | 16 | 19) => "visa",
        _ if ((51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4))) && len == 16 => "mastercard",
        _ if matches!(prefix(2), 34 | 37) && len == 15 => "amex",
        _ if (number.starts_with("6011") || prefix(2) == 65 || (644..=649).contains(&prefix(3)))
            && (16..=19).contains(&len) =>
        {
            "discover"
        }
        // JCB's registered range is 3528–3589, but Luhn-valid 16-digit numbers across
        // 35xx are issued and generated as JCB, and nothing else uses that prefix.
        _ if prefix(2) == 35 && (16..=19).contains(&len) => "jcb",
        _ if (prefix(2) == 36 || prefix(2) == 38 || (300..=305).contains(&prefix(3))) && (14..=19).contains(&len) => {
            "diners"
        }
        _ if prefix(2) == 62 && (16..=19).contains(&len) => "unionpay",
        _ if (prefix(2) == 50 || (56..=69).contains(&prefix(2))) && (12..=19).contains(&len) => "maestro",
        _ => return None,
    };
    Some(brand)
}

/// IBAN lengths by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

/// An IBAN (spaces allowed): its country's length and the mod-97 checksum.
pub fn iban(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if compact.len() < 15 {
        return false;
    }
    let country = std::str::from_utf8(&compact[..2]).unwrap_or_default();
    match IBAN_LENGTHS.iter().find(|(c, _)| *c == country) {
        Some((_, len)) if *len == compact.len() => {}
        _ => return false,
    }
    // Move the first four characters to the end, letters become 10..35, then mod 97.
    let mut rem: u32 = 0;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// A US SSN (`AAA-GG-SSSS`, separators optional) within the ranges ever issued.
pub fn us_ssn(s: &str) -> bool {
    let d: Vec<u32> = digits(s).collect();
    if d.len() != 9 {
        return false;
    }
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    // Well-known advertising and test numbers are not anyone's.
    let famous = matches!(area * 1_000_000 + group * 10_000 + serial, 78_051_120 | 219_099_999 | 123_456_789);
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 && !famous
}

/// A UK national insurance number: valid prefix letters and suffix.
pub fn uk_nino(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if compact.len() != 9 {
        return false;
    }
    let prefix = &compact[..2];
    let banned: [&[u8]; 7] = [b"BG", b"GB", b"NK", b"KN", b"TN", b"NT", b"ZZ"];
    !banned.contains(&prefix)
        && !b"DFIQUV".contains(&prefix[0])
        && !b"DFIOQUV".contains(&prefix[1])
        && compact[2..8].iter().all(u8::is_ascii_digit)
        && b"ABCD".contains(&compact[8])
}

/// An IPv4 address with no octet above 255 and no leading zeros.
pub fn ipv4(s: &str) -> bool {
    let mut n = 0;
    for part in s.split('.') {
        n += 1;
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part.starts_with('0')) {
            return false;
        }
        if part.parse::<u16>().map_or(true, |v| v > 255) {
            return false;
        }
    }
    n == 4
}

/// An IPv6 address in any of its textual forms.
pub fn ipv6(s: &str) -> bool {
    s.matches(':').count() >= 2 && s.parse::<std::net::Ipv6Addr>().is_ok()
}

/// A MAC address with one separator throughout and not all zeros or all ones.
pub fn mac(s: &str) -> bool {
    let sep = s.as_bytes().get(2).copied();
    let consistent = s.bytes().enumerate().filter(|(i, _)| i % 3 == 2).all(|(_, b)| Some(b) == sep);
    let hex: String = s.chars().filter(char::is_ascii_hexdigit).collect();
    consistent && hex != "000000000000" && !hex.eq_ignore_ascii_case("ffffffffffff")
}

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A Bitcoin legacy address (Base58Check with a valid double-SHA-256 checksum).
pub fn base58check(s: &str) -> bool {
    // Decode into a big-endian byte array; 25 bytes for an address.
    let mut bytes = [0u8; 25];
    for c in s.bytes() {
        let Some(mut carry) = BASE58.iter().position(|b| *b == c).map(|v| v as u32) else { return false };
        for byte in bytes.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        if carry != 0 {
            return false;
        }
    }
    let check = Sha256::digest(Sha256::digest(&bytes[..21]));
    check[..4] == bytes[21..]
}

/// A bech32 or bech32m segwit address (`bc1…`) with a valid checksum.
pub fn bech32(s: &str) -> bool {
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let lower = s.to_ascii_lowercase();
    let Some((hrp, data)) = lower.rsplit_once('1') else { return false };
    if data.len() < 6 {
        return false;
    }
    let mut values = Vec::with_capacity(hrp.len() * 2 + 1 + data.len());
    values.extend(hrp.bytes().map(|b| u32::from(b >> 5)));
    values.push(0);
    values.extend(hrp.bytes().map(|b| u32::from(b & 31)));
    for c in data.bytes() {
        match CHARSET.iter().position(|x| *x == c) {
            Some(v) => values.push(v as u32),
            None => return false,
        }
    }
    let mut chk: u32 = 1;
    const GEN: [u32; 5] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3];
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ v;
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk == 1 || chk == 0x2bc8_30a3
}

/// A calendar date in one of the common written forms; returns whether it is real and
/// in the past century or so (a birth date).
pub fn birth_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split(['/', '.', '-', ' ']).filter(|p| !p.is_empty()).collect();
    if parts.len() != 3 {
        return false;
    }
    let nums: Vec<Option<u32>> = parts.iter().map(|p| p.trim_end_matches(',').parse().ok()).collect();
    let (y, a, b) = match (nums[0], nums[1], nums[2]) {
        (Some(y), Some(m), Some(d)) if parts[0].len() == 4 => (y, m, d),
        (Some(a), Some(b), Some(y)) => (if y < 100 { y + 1900 } else { y }, a, b),
        (Some(d), None, Some(y)) | (None, Some(d), Some(y)) => {
            // "12 March 1984" or "March 12, 1984".
            let month = parts.iter().find_map(|p| month(p));
            match month {
                Some(m) => (y, m, d),
                None => return false,
            }
        }
        _ => return false,
    };
    let valid = |m: u32, d: u32| (1..=12).contains(&m) && (1..=31).contains(&d);
    (1900..=2030).contains(&y) && (valid(a, b) || valid(b, a))
}

fn month(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let w = word.to_ascii_lowercase();
    MONTHS.iter().position(|m| w.starts_with(m)).map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_brands() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert_eq!(card_brand("4111111111111111"), Some("visa"));
        assert_eq!(card_brand("378282246310005"), Some("amex"));
        assert_eq!(card_brand("5555555555554444"), Some("mastercard"));
        assert_eq!(card_brand("2720418695252980"), Some("mastercard"));
        assert_eq!(card_brand("3502162941615515"), Some("jcb"));
        assert_eq!(card_brand("1234567890123456"), None);
    }

    #[test]
    fn ibans() {
        assert!(iban("GB82WEST12345698765432"));
        assert!(iban("DE89 3704 0044 0532 0130 00"));
        assert!(!iban("GB82WEST12345698765431"));
        assert!(!iban("DE89 3704 0044 0532 0130"));
        assert!(!iban("XX82WEST12345698765432"));
    }

    #[test]
    fn ssns() {
        assert!(us_ssn("536-22-8726"));
        for bad in ["000-12-3456", "666-12-3456", "901-12-3456", "536-00-8726", "536-22-0000", "078-05-1120"] {
            assert!(!us_ssn(bad), "{bad}");
        }
    }

    #[test]
    fn ninos() {
        assert!(uk_nino("AB123456C"));
        assert!(uk_nino("AB 12 34 56 C"));
        assert!(!uk_nino("GB123456C"));
        assert!(!uk_nino("DA123456C"));
        assert!(!uk_nino("AB123456E"));
    }

    #[test]
    fn ips_and_macs() {
        assert!(ipv4("192.168.0.1") && ipv4("8.8.8.8"));
        assert!(!ipv4("256.1.1.1") && !ipv4("01.2.3.4") && !ipv4("1.2.3"));
        assert!(ipv6("2001:db8::1") && ipv6("fe80::1ff:fe23:4567:890a"));
        assert!(!ipv6("12:30") && !ipv6("2001:db8:::1"));
        assert!(mac("00:1A:2B:3C:4D:5E") && mac("00-1a-2b-3c-4d-5e"));
        assert!(!mac("00:1A-2B:3C:4D:5E") && !mac("00:00:00:00:00:00"));
    }

    #[test]
    fn crypto() {
        assert!(base58check("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"));
        assert!(!base58check("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3"));
        assert!(bech32("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"));
        assert!(!bech32("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdx"));
    }

    #[test]
    fn birth_dates() {
        assert!(birth_date("10/23/1951") && birth_date("1984-03-12") && birth_date("12 March 1984"));
        assert!(birth_date("March 12, 1984"));
        assert!(!birth_date("13/13/1951") && !birth_date("1/2/3/4") && !birth_date("10/23/1751"));
    }
}
