//! The Path A worker bundle in the bucket: content-addressed, with a manifest of sha256 sums.
//!
//! ```text
//! bundles/<version>/manifest.json   this manifest
//! bundles/<version>/SHA256SUMS      the sums in `sha256sum -c` form
//! bundles/<version>/<file>          each file
//! bundles/current                   the version workers install (text)
//! ```
//!
//! The version is the first 16 hex digits of the sha256 of the sorted `sum  name` lines, so the
//! same files always give the same version and any change gives a new one.

use std::path::Path;

use anyhow::Context as _;
use common::aws::{SdkResultExt, error_code};
use sha2::{Digest, Sha256};

use crate::s3;

/// Bucket prefix of the bundles.
pub const BUNDLE_PREFIX: &str = "bundles/";
/// The pointer object naming the version to install.
pub const CURRENT_KEY: &str = "bundles/current";
/// Name of the worker binary in a bundle.
pub const WORKER_BINARY: &str = "transcription-worker";
/// Name of the engine script in a bundle.
pub const ENGINE_SCRIPT: &str = "whisper_engine.py";

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BundleFile {
    /// File name inside the bundle.
    pub name: String,
    /// Hex sha256 of the contents.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether it is executable.
    pub executable: bool,
}

/// The manifest of a bundle.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Content-addressed version.
    pub version: String,
    /// The files.
    pub files: Vec<BundleFile>,
    /// When it was built.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Cargo profile the worker was built with (`release`, or `dev` for local runs).
    pub profile: String,
    /// Highest GLIBC symbol version the worker binary needs, e.g. `2.34`.
    pub worker_glibc: Option<String>,
    /// Git revision of the source, with `-dirty` for uncommitted changes.
    pub git_revision: Option<String>,
}

impl Manifest {
    /// The `sha256sum -c` lines.
    pub fn sums(&self) -> String {
        let mut files = self.files.clone();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        files.iter().map(|f| format!("{}  {}\n", f.sha256, f.name)).collect()
    }

    /// The key of `name` in this bundle.
    pub fn key(&self, name: &str) -> String {
        file_key(&self.version, name)
    }
}

/// The key of `name` in bundle `version`.
pub fn file_key(version: &str, name: &str) -> String {
    format!("{BUNDLE_PREFIX}{version}/{name}")
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The version of a bundle with `files`.
pub fn version_of(files: &[BundleFile]) -> String {
    let mut lines: Vec<String> =
        files.iter().map(|f| format!("{}  {}\n", f.sha256, f.name)).collect();
    lines.sort();
    sha256_hex(lines.concat().as_bytes())[..16].to_string()
}

/// The version `current` points at, if any.
pub async fn read_current(s3: &s3::Client, bucket: &str) -> anyhow::Result<Option<String>> {
    Ok(get_text(s3, bucket, CURRENT_KEY).await?.map(|t| t.trim().to_string()))
}

/// The manifest of `version`, if uploaded.
pub async fn read_manifest(
    s3: &s3::Client,
    bucket: &str,
    version: &str,
) -> anyhow::Result<Option<Manifest>> {
    let key = file_key(version, "manifest.json");
    match get_bytes(s3, bucket, &key).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("`s3://{bucket}/{key}` is not a bundle manifest")),
    }
}

/// The object at `key`, or `None` when it does not exist.
pub async fn get_bytes(
    s3: &s3::Client,
    bucket: &str,
    key: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    let out = match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => out,
        Err(e) if error_code(&e).is_some_and(|c| c == "NoSuchKey" || c == "NotFound") => {
            return Ok(None);
        }
        Err(e) => return Err(e).aws_context(|| format!("failed to read `s3://{bucket}/{key}`")),
    };
    let data = out
        .body
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("failed to read `s3://{bucket}/{key}`: {e}"))?;
    Ok(Some(data.into_bytes().to_vec()))
}

async fn get_text(s3: &s3::Client, bucket: &str, key: &str) -> anyhow::Result<Option<String>> {
    Ok(get_bytes(s3, bucket, key).await?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Downloads bundle `version` into `dir` (reusing files whose sums match) and checks every sum.
pub async fn fetch(
    s3: &s3::Client,
    bucket: &str,
    version: &str,
    dir: &Path,
) -> anyhow::Result<Manifest> {
    let manifest = read_manifest(s3, bucket, version)
        .await?
        .with_context(|| format!("bundle `{version}` has no manifest in `s3://{bucket}`"))?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    for file in &manifest.files {
        let path = dir.join(&file.name);
        if std::fs::read(&path).is_ok_and(|b| sha256_hex(&b) == file.sha256) {
            continue;
        }
        let key = manifest.key(&file.name);
        let bytes = get_bytes(s3, bucket, &key)
            .await?
            .with_context(|| format!("bundle file `s3://{bucket}/{key}` is missing"))?;
        let sum = sha256_hex(&bytes);
        if sum != file.sha256 {
            anyhow::bail!(
                "`s3://{bucket}/{key}` has sha256 {sum}, the manifest says {}",
                file.sha256
            );
        }
        std::fs::write(&path, &bytes)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        #[cfg(unix)]
        if file.executable {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(manifest)
}

/// The highest `GLIBC_x.y` symbol version named in an ELF binary's bytes.
///
/// The dynamic string table lists every version a binary needs (`GLIBC_2.34`, ...); scanning
/// the bytes finds them without an ELF parser.
pub fn highest_glibc(bytes: &[u8]) -> Option<(u32, u32)> {
    let needle = b"GLIBC_";
    let mut best: Option<(u32, u32)> = None;
    let mut i = 0;
    while let Some(pos) = bytes[i..].windows(needle.len()).position(|w| w == needle) {
        let start = i + pos + needle.len();
        let end = bytes[start..]
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'.'))
            .map_or(bytes.len(), |n| start + n);
        let text = String::from_utf8_lossy(&bytes[start..end]);
        let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
        if let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) {
            best = best.max(Some((major, minor)));
        }
        i = end.max(start);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, sum: &str) -> BundleFile {
        BundleFile { name: name.into(), sha256: sum.into(), size: 1, executable: false }
    }

    #[test]
    fn version_depends_on_contents_not_order() {
        let a = [file("a", "11"), file("b", "22")];
        let b = [file("b", "22"), file("a", "11")];
        assert_eq!(version_of(&a), version_of(&b));
        assert_ne!(version_of(&a), version_of(&[file("a", "11"), file("b", "23")]));
        assert_eq!(version_of(&a).len(), 16);
    }

    #[test]
    fn highest_glibc_version_is_found_among_symbols() {
        let bytes = b"\0GLIBC_2.2.5\0GLIBC_2.34\0memcpy\0GLIBC_2.17\0GLIBC_PRIVATE\0";
        assert_eq!(highest_glibc(bytes), Some((2, 34)));
        assert_eq!(highest_glibc(b"no versions"), None);
    }

    #[test]
    fn sums_are_in_sha256sum_form() {
        let m = Manifest {
            version: "v".into(),
            files: vec![file("z", "99"), file("a", "11")],
            created_at: chrono::Utc::now(),
            profile: "dev".into(),
            worker_glibc: None,
            git_revision: None,
        };
        assert_eq!(m.sums(), "11  a\n99  z\n");
    }
}
