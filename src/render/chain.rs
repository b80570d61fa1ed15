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

/// The key identifiers of certificate `index` of the chain.
fn key_ids(index: usize, der: &[u8]) -> Result<KeyIds, ChainError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| ChainError::Parse(index, e.to_string()))?;
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
        .map(|(i, der)| key_ids(i, der))
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

    /// DER of every PEM block in `text`.
    fn ders(text: &str) -> Vec<Vec<u8>> {
        use base64::Engine;
        text.split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|block| {
                let body: String = block
                    .lines()
                    .take_while(|l| !l.starts_with("-----END"))
                    .collect();
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap()
            })
            .collect()
    }

    /// The Go provider's TestFetchCertChain and TestFetchCertChainWithLeafMissingSKI
    /// (tests/fixtures/go-provider): every input order gives Go's expected chain.
    #[test]
    fn go_provider_fetch_cert_chain_cases() {
        const GO: &str = "tests/fixtures/go-provider";
        let read = |f: &str| {
            std::fs::read_to_string(format!("{}/{GO}/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        };
        for (dir, names) in [
            ("fetch-cert-chain", &["root", "intermediate", "server"][..]),
            (
                "fetch-cert-chain-leaf-missing-ski",
                &["root", "intermediate1", "intermediate2", "server"][..],
            ),
        ] {
            let certs: Vec<Vec<u8>> = names
                .iter()
                .flat_map(|n| ders(&read(&format!("{dir}/{n}.pem"))))
                .collect();
            let expected = ders(&read(&format!("{dir}/expected.pem")));
            assert_eq!(expected.len(), certs.len());
            for input in testkit::pki::permutations(&certs) {
                assert_eq!(
                    order(input).unwrap(),
                    (expected.clone(), Order::Complete),
                    "{dir}"
                );
            }
        }
        // TestFetchCertChainWarning: the server and the root without the intermediate.
        let server = ders(&read("fetch-cert-chain/server.pem"));
        let root = ders(&read("fetch-cert-chain/root.pem"));
        let input = [server, root].concat();
        let expected = ders(&read("fetch-cert-chain-warning/expected.pem"));
        assert_eq!(order(input).unwrap(), (expected, Order::Incomplete));
    }

    /// A self-signed leaf without Authority Key Identifier (Key Vault's "Self" issuer) links to
    /// nothing: alone it is the chain, beside unrelated certificates the order is kept.
    #[test]
    fn self_signed_leaf_without_aki() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["self.test".into()]).unwrap();
        // A Subject Key Identifier (ExplicitNoCa writes one) but no Authority Key Identifier.
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = false;
        let leaf = params.self_signed(&key).unwrap().der().to_vec();
        let ids = key_ids(0, &leaf).unwrap();
        assert!(ids.authority.is_none() && ids.subject.is_some());
        assert_eq!(
            order(vec![leaf.clone()]).unwrap(),
            (vec![leaf.clone()], Order::Complete)
        );
        let other = cert(b"o", b"x");
        assert_eq!(
            order(vec![other.clone(), leaf.clone()]).unwrap(),
            (vec![other, leaf], Order::Incomplete)
        );
    }

    /// Negative serial numbers (openssl writes them with -set_serial) do not stop the ordering.
    #[test]
    fn negative_serial_numbers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("leaf.ext"),
            "authorityKeyIdentifier=keyid\n",
        )
        .unwrap();
        let run = |command: &str| {
            std::process::Command::new("openssl")
                .current_dir(dir.path())
                .args(command.split(' '))
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        let made = run(&format!("req -x509 {ec} -keyout ca.key -subj /CN=neg-ca -set_serial -1 -days 1 -out ca.pem"))
            && run(&format!("req -new {ec} -keyout leaf.key -subj /CN=neg-leaf -out leaf.csr"))
            && run("x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial -0x7f112233445566778899aabbccddeeff00112233 -days 1 -extfile leaf.ext -out leaf.pem");
        if !made {
            eprintln!("openssl not found: skipping the negative serial check");
            return;
        }
        let read = |f: &str| ders(&std::fs::read_to_string(dir.path().join(f)).unwrap()).remove(0);
        let (ca, leaf) = (read("ca.pem"), read("leaf.pem"));
        // The serials really are negative: INTEGER content with the sign bit set.
        for der in [&ca, &leaf] {
            let (_, c) = X509Certificate::from_der(der).unwrap();
            assert!(c.tbs_certificate.raw_serial()[0] & 0x80 != 0);
        }
        assert_eq!(
            order(vec![ca.clone(), leaf.clone()]).unwrap(),
            (vec![leaf, ca], Order::Complete)
        );
    }
}
