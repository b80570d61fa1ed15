//! Certificate chain ordering for PFX-backed secrets (`--construct-pem-chain`): leaf, then
//! intermediates, then root, linking each certificate to its issuer by Authority and Subject Key
//! Identifier exactly as the Go provider does, including its fallback to the original order when
//! the chain is incomplete.

use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

/// More certificates than any real chain; bounds the work on hostile input.
pub const MAX_CERTIFICATES: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("failed to parse certificate {0} of the chain: {1}")]
    Parse(usize, String),
    #[error("no leaf found")]
    NoLeaf,
    #[error("constructing chain resulted in cycle")]
    Cycle,
    #[error(
        "the certificate chain has {0} certificates; at most {MAX_CERTIFICATES} are supported"
    )]
    TooMany(usize),
}

/// Whether the certificates formed one complete chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Reordered leaf → root.
    Complete,
    /// Not one chain (missing key identifiers, extra or missing certificates): original order.
    Incomplete,
}

/// A certificate's Authority and Subject Key Identifiers.
#[derive(Default)]
struct KeyIds {
    authority: Option<Vec<u8>>,
    subject: Option<Vec<u8>>,
}

fn key_ids(der: &[u8]) -> Result<KeyIds, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let mut ids = KeyIds::default();
    for ext in cert.iter_extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                ids.authority = a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            ParsedExtension::SubjectKeyIdentifier(k) => ids.subject = Some(k.0.to_vec()),
            _ => {}
        }
    }
    Ok(ids)
}

/// Orders DER certificates leaf → root, or returns them unchanged when they are not one chain.
pub fn order(certs: Vec<Vec<u8>>) -> Result<(Vec<Vec<u8>>, Order), ChainError> {
    let n = certs.len();
    if n > MAX_CERTIFICATES {
        return Err(ChainError::TooMany(n));
    }
    if n <= 1 {
        return Ok((certs, Order::Complete));
    }
    let ids = certs
        .iter()
        .enumerate()
        .map(|(i, der)| key_ids(der).map_err(|e| ChainError::Parse(i, e)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut parent = vec![None; n];
    let mut is_parent = vec![false; n];
    for i in 0..n {
        let Some(aki) = &ids[i].authority else {
            continue;
        };
        // j != i: a self-signed root's AKI equals its own SKI and must not be its own parent.
        if let Some(j) = (0..n).find(|&j| j != i && ids[j].subject.as_ref() == Some(aki)) {
            parent[i] = Some(j);
            is_parent[j] = true;
        }
    }
    let leaf = (0..n).find(|&i| !is_parent[i]).ok_or(ChainError::NoLeaf)?;
    let mut chain = vec![leaf];
    let mut current = leaf;
    while let Some(next) = parent[current] {
        if chain.len() >= n {
            return Err(ChainError::Cycle);
        }
        chain.push(next);
        current = next;
    }
    if chain.len() != n {
        return Ok((certs, Order::Incomplete));
    }
    let mut slots: Vec<Option<Vec<u8>>> = certs.into_iter().map(Some).collect();
    Ok((
        chain
            .into_iter()
            .map(|i| slots[i].take().expect("each index once"))
            .collect(),
        Order::Complete,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyIdMethod, KeyPair};

    /// A certificate with Subject Key Identifier `ski` and Authority Key Identifier `aki`.
    fn cert(ski: &[u8], aki: &[u8]) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_identifier_method = KeyIdMethod::PreSpecified(ski.to_vec());
        params.use_authority_key_identifier_extension = true;
        let mut issuer_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        issuer_params.key_identifier_method = KeyIdMethod::PreSpecified(aki.to_vec());
        let issuer = Issuer::new(issuer_params, KeyPair::generate().unwrap());
        params
            .signed_by(&KeyPair::generate().unwrap(), &issuer)
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn orders_by_key_identifiers() {
        let (root, inter, leaf) = (cert(b"r", b"r"), cert(b"i", b"r"), cert(b"l", b"i"));
        let (ordered, outcome) = order(vec![root.clone(), leaf.clone(), inter.clone()]).unwrap();
        assert_eq!(outcome, Order::Complete);
        assert_eq!(ordered, vec![leaf.clone(), inter.clone(), root.clone()]);
        let incomplete = order(vec![root.clone(), leaf.clone()]).unwrap();
        assert_eq!(incomplete, (vec![root, leaf], Order::Incomplete));
    }

    #[test]
    fn no_leaf_and_cycle_errors() {
        let (a, b) = (cert(b"a", b"b"), cert(b"b", b"a"));
        assert_eq!(
            order(vec![a.clone(), b.clone()]).unwrap_err(),
            ChainError::NoLeaf
        );
        assert_eq!(ChainError::NoLeaf.to_string(), "no leaf found");
        let l = cert(b"l", b"a");
        assert_eq!(order(vec![l, a, b]).unwrap_err(), ChainError::Cycle);
        assert_eq!(
            ChainError::Cycle.to_string(),
            "constructing chain resulted in cycle"
        );
    }

    #[test]
    fn bounded_and_robust() {
        assert!(matches!(
            order(vec![vec![0x30, 0x00]; 2]),
            Err(ChainError::Parse(0, _))
        ));
        assert_eq!(
            order(vec![vec![]; MAX_CERTIFICATES + 1]).unwrap_err(),
            ChainError::TooMany(MAX_CERTIFICATES + 1)
        );
    }
}
