//! A small BER reader for the PKCS#12 container. DER is the common case, but PFX files from
//! older Windows and Java tools use indefinite lengths and constructed OCTET STRINGs, which
//! OpenSSL reads; strict DER decoders (the `der` crate, Go's `encoding/asn1`) refuse them. Only
//! what PKCS#12 needs: single-byte tags, definite and indefinite lengths, and octet strings in
//! pieces. Nesting and lengths are bounded, nothing panics, and values are borrowed from the
//! input rather than copied.

use std::borrow::Cow;

/// Deeper than any PKCS#12 structure within one parse (each decrypted or unwrapped octet string
/// is parsed on its own, and none nests more than about 8 levels); bounds hostile input, whose
/// indefinite lengths cost a scan per level.
pub const MAX_DEPTH: usize = 16;

pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const OID: u8 = 0x06;
pub const SEQUENCE: u8 = 0x30;
/// `[0]` constructed (EXPLICIT tagging, or IMPLICIT of a constructed type).
pub const CONTEXT_0: u8 = 0xa0;
const CONSTRUCTED: u8 = 0x20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BerError {
    #[error("truncated ASN.1 data")]
    Truncated,
    #[error("ASN.1 nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("unsupported ASN.1 encoding (multi-byte tag or length over 4 bytes)")]
    Unsupported,
    #[error("indefinite length on a primitive ASN.1 value")]
    IndefinitePrimitive,
    #[error("expected ASN.1 tag {expected:#04x}, found {found:#04x}")]
    Tag { expected: u8, found: u8 },
    #[error("expected an ASN.1 value, found the end of its container")]
    Missing,
    #[error("ASN.1 INTEGER is negative or too large")]
    Integer,
}

/// One value: its tag and its content (for indefinite lengths, without the end-of-contents).
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// The whole encoding, header included.
    pub raw: &'a [u8],
    depth: usize,
}

impl<'a> Tlv<'a> {
    /// The values inside a constructed value.
    pub fn children(&self) -> Reader<'a> {
        Reader {
            rest: self.content,
            depth: self.depth + 1,
        }
    }

    pub fn is_constructed(&self) -> bool {
        self.tag & CONSTRUCTED != 0
    }

    /// The bytes of an OCTET STRING (or an IMPLICIT one), joining the pieces of a constructed one.
    pub fn octets(&self) -> Result<Cow<'a, [u8]>, BerError> {
        if !self.is_constructed() {
            return Ok(Cow::Borrowed(self.content));
        }
        let mut joined = Vec::with_capacity(self.content.len());
        let mut pieces = self.children();
        while let Some(piece) = pieces.next()? {
            if piece.tag & !CONSTRUCTED != OCTET_STRING {
                return Err(BerError::Tag {
                    expected: OCTET_STRING,
                    found: piece.tag,
                });
            }
            joined.extend_from_slice(&piece.octets()?);
        }
        Ok(Cow::Owned(joined))
    }

    /// A non-negative INTEGER that fits in a u64.
    pub fn unsigned(&self) -> Result<u64, BerError> {
        if self.tag != INTEGER || self.content.is_empty() || self.content[0] & 0x80 != 0 {
            return Err(BerError::Integer);
        }
        let digits = match self.content.iter().position(|b| *b != 0) {
            Some(i) => &self.content[i..],
            None => return Ok(0),
        };
        if digits.len() > 8 {
            return Err(BerError::Integer);
        }
        Ok(digits.iter().fold(0, |n, b| n << 8 | u64::from(*b)))
    }
}

/// Reads consecutive values.
pub struct Reader<'a> {
    rest: &'a [u8],
    depth: usize,
}

/// Parses one value at the start of `input` (trailing bytes are ignored, as OpenSSL does).
pub fn parse(input: &[u8]) -> Result<Tlv<'_>, BerError> {
    Reader {
        rest: input,
        depth: 0,
    }
    .expect_any()
}

impl<'a> Reader<'a> {
    /// The next value, or None at the end of the container.
    pub fn next(&mut self) -> Result<Option<Tlv<'a>>, BerError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (tlv, used) = read(self.rest, self.depth)?;
        self.rest = &self.rest[used..];
        Ok(Some(tlv))
    }

    pub fn expect_any(&mut self) -> Result<Tlv<'a>, BerError> {
        self.next()?.ok_or(BerError::Missing)
    }

    pub fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, BerError> {
        let tlv = self.expect_any()?;
        if tlv.tag != tag {
            return Err(BerError::Tag {
                expected: tag,
                found: tlv.tag,
            });
        }
        Ok(tlv)
    }

    /// The next value if it has `tag`, else None (and nothing is consumed).
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, BerError> {
        if self.rest.first() != Some(&tag) {
            return Ok(None);
        }
        self.next()
    }
}

/// Reads one TLV; returns it and the number of bytes it used (end-of-contents included).
fn read(input: &[u8], depth: usize) -> Result<(Tlv<'_>, usize), BerError> {
    if depth > MAX_DEPTH {
        return Err(BerError::TooDeep);
    }
    let (&tag, rest) = input.split_first().ok_or(BerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(BerError::Unsupported);
    }
    let (&first, rest) = rest.split_first().ok_or(BerError::Truncated)?;
    let header = 2;
    if first == 0x80 {
        if tag & CONSTRUCTED == 0 {
            return Err(BerError::IndefinitePrimitive);
        }
        // Children up to the end-of-contents octets (00 00).
        let body = rest;
        let mut used = 0;
        loop {
            match body.get(used..used + 2) {
                Some([0, 0]) => break,
                Some(_) => used += read(&body[used..], depth + 1)?.1,
                None => return Err(BerError::Truncated),
            }
        }
        let tlv = Tlv {
            tag,
            content: &body[..used],
            raw: &input[..header + used + 2],
            depth,
        };
        return Ok((tlv, header + used + 2));
    }
    let (len, header) = if first < 0x80 {
        (usize::from(first), header)
    } else {
        let n = usize::from(first & 0x7f);
        if n > 4 {
            return Err(BerError::Unsupported);
        }
        let bytes = rest.get(..n).ok_or(BerError::Truncated)?;
        let len = bytes.iter().fold(0usize, |l, b| l << 8 | usize::from(*b));
        (len, header + n)
    };
    let end = header.checked_add(len).ok_or(BerError::Truncated)?;
    let raw = input.get(..end).ok_or(BerError::Truncated)?;
    let tlv = Tlv {
        tag,
        content: &raw[header..],
        raw,
        depth,
    };
    Ok((tlv, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_and_indefinite_lengths() {
        let der = [0x30, 0x06, 0x02, 0x01, 0x03, 0x04, 0x01, 0xaa];
        let seq = parse(&der).unwrap();
        let mut r = seq.children();
        assert_eq!(r.expect(INTEGER).unwrap().unsigned(), Ok(3));
        assert_eq!(
            r.expect(OCTET_STRING).unwrap().octets().unwrap(),
            &[0xaa][..]
        );
        assert!(r.next().unwrap().is_none());
        assert_eq!(seq.raw, &der[..]);

        // The same in BER: indefinite SEQUENCE, octet string in two constructed pieces.
        let ber = [
            0x30, 0x80, 0x02, 0x01, 0x03, 0x24, 0x80, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0x00,
            0x00, 0x00, 0x00, 0xff,
        ];
        let seq = parse(&ber).unwrap();
        assert_eq!(seq.raw.len(), ber.len() - 1, "trailing byte not part of it");
        let mut r = seq.children();
        assert_eq!(r.expect(INTEGER).unwrap().unsigned(), Ok(3));
        let s = r.expect(0x24).unwrap();
        assert_eq!(s.octets().unwrap(), &[0xaa, 0xbb][..]);
        assert!(r.next().unwrap().is_none());

        let long = [0x04, 0x82, 0x00, 0x02, 0x01, 0x02];
        assert_eq!(parse(&long).unwrap().content, &[1, 2]);
    }

    #[test]
    fn hostile_input_is_an_error() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x02],
            &[0x30, 0x80, 0x02, 0x01, 0x00],
            &[0x04, 0x80, 0x00, 0x00],
            &[0x1f, 0x01, 0x00],
            &[0x04, 0x85, 1, 1, 1, 1, 1],
            &[0x04, 0x84, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(parse(bad).is_err(), "{bad:02x?}");
        }
        let mut deep = [0x30, 0x80].repeat(MAX_DEPTH + 2);
        deep.extend(vec![0; 2 * (MAX_DEPTH + 2)]);
        assert_eq!(parse(&deep).unwrap_err(), BerError::TooDeep);
        // Definite-length nesting is bounded when walked.
        let mut nested = vec![0x04, 0x00];
        for _ in 0..MAX_DEPTH + 2 {
            let mut outer = vec![0x24, nested.len() as u8];
            outer.extend(&nested);
            nested = outer;
        }
        assert_eq!(
            parse(&nested).unwrap().octets().unwrap_err(),
            BerError::TooDeep
        );
        let wrong = parse(&[0x24, 0x03, 0x02, 0x01, 0x00]).unwrap();
        assert!(matches!(wrong.octets(), Err(BerError::Tag { .. })));
    }

    #[test]
    fn integers() {
        let int = |c: &[u8]| {
            let mut der = vec![INTEGER, c.len() as u8];
            der.extend(c);
            parse(&der).unwrap().unsigned()
        };
        assert_eq!(int(&[0x07, 0xd0]), Ok(2000));
        assert_eq!(int(&[0x00, 0x80]), Ok(128));
        assert_eq!(int(&[0x00]), Ok(0));
        assert_eq!(int(&[0xff]), Err(BerError::Integer));
        assert_eq!(int(&[]), Err(BerError::Integer));
        assert_eq!(int(&[1; 9]), Err(BerError::Integer));
    }
}
