//! Just enough DER to read a certificate's `notAfter`, for the expiry metric. A full X.509
//! parser would be a large dependency for one date; rustls has already validated the
//! structure when it loaded the key pair.

/// The certificate is not the DER we expect.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("certificate DER: {0}")]
pub struct X509Error(&'static str);

/// `notAfter` of a DER certificate, in seconds since the Unix epoch.
pub fn not_after(der: &[u8]) -> Result<i64, X509Error> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
    //   signature, issuer, validity SEQUENCE { notBefore, notAfter }, ... }, ... }
    let (cert, _) = element(der, 0x30)?;
    let (mut tbs, _) = element(cert, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = any(tbs)?.1;
    }
    let (_serial, rest) = element(tbs, 0x02)?;
    let (_signature, rest) = element(rest, 0x30)?;
    let (_issuer, rest) = element(rest, 0x30)?;
    let (validity, _) = element(rest, 0x30)?;
    let (_not_before, rest) = any(validity)?;
    match rest.first() {
        Some(0x17) => time(element(rest, 0x17)?.0, 2),
        Some(0x18) => time(element(rest, 0x18)?.0, 4),
        _ => Err(X509Error("notAfter is not a UTCTime or GeneralizedTime")),
    }
}

/// Splits one element of the given tag off the front: (contents, rest).
fn element(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), X509Error> {
    if input.first() != Some(&tag) {
        return Err(X509Error("unexpected tag"));
    }
    any(input)
}

/// Splits one element of any tag off the front: (contents, rest).
fn any(input: &[u8]) -> Result<(&[u8], &[u8]), X509Error> {
    let short = *input.get(1).ok_or(X509Error("truncated"))?;
    let (len, header) = if short < 0x80 {
        (usize::from(short), 2)
    } else {
        let count = usize::from(short & 0x7f);
        if count == 0 || count > 4 {
            return Err(X509Error("unsupported length"));
        }
        let bytes = input.get(2..2 + count).ok_or(X509Error("truncated"))?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + count)
    };
    let end = header
        .checked_add(len)
        .ok_or(X509Error("length overflow"))?;
    let contents = input.get(header..end).ok_or(X509Error("truncated"))?;
    Ok((contents, &input[end..]))
}

/// `YYMMDDHHMMSSZ` (UTCTime, `year_digits` 2) or `YYYYMMDDHHMMSSZ` (GeneralizedTime, 4).
fn time(text: &[u8], year_digits: usize) -> Result<i64, X509Error> {
    let bad = X509Error("malformed time");
    if text.len() != year_digits + 11 || text.last() != Some(&b'Z') {
        return Err(bad);
    }
    let digits = &text[..text.len() - 1];
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    let num = |range: std::ops::Range<usize>| {
        digits[range]
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'))
    };
    let mut year = num(0..year_digits);
    if year_digits == 2 {
        // RFC 5280 §4.1.2.5.1: two-digit years 50–99 are 19xx, 00–49 are 20xx.
        year += if year >= 50 { 1900 } else { 2000 };
    }
    let at = year_digits;
    let (month, day) = (num(at..at + 2), num(at + 2..at + 4));
    let (hour, minute, second) = (
        num(at + 4..at + 6),
        num(at + 6..at + 8),
        num(at + 8..at + 10),
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad);
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_expiring(not_after: time::OffsetDateTime) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["a.example".into()]).unwrap();
        params.not_after = not_after;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_utctime_not_after() {
        let at = time::macros::datetime!(2031-07-09 13:14:15 UTC);
        assert_eq!(not_after(&cert_expiring(at)), Ok(at.unix_timestamp()));
    }

    #[test]
    fn reads_generalized_time_not_after_past_2049() {
        let at = time::macros::datetime!(2061-02-28 00:00:01 UTC);
        assert_eq!(not_after(&cert_expiring(at)), Ok(at.unix_timestamp()));
    }

    #[test]
    fn every_truncated_certificate_is_an_error_not_a_panic() {
        let der = cert_expiring(time::macros::datetime!(2030-01-01 00:00:00 UTC));
        for end in 0..der.len() {
            // The validity sits early in the DER; later prefixes are malformed as a whole but
            // their notAfter may still be readable. What matters: no panic, and a prefix that
            // cuts the outer length short is rejected.
            let _ = not_after(&der[..end]);
        }
        assert!(not_after(&der[..der.len() - 1]).is_err());
        assert!(not_after(b"not a certificate").is_err());
    }
}
