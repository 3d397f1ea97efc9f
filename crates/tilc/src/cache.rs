//! The on-disk kernel cache: what tilc remembers between processes.
//!
//! **Where:** `$TILC_CACHE_DIR` when set, else the user's cache folder (`$XDG_CACHE_HOME/tilc`
//! or `~/.cache/tilc` on Linux, `~/Library/Caches/tilc` on macOS, `%LOCALAPPDATA%\tilc` on
//! Windows). Everything lives under a `v1/` folder named after the entry format.
//!
//! **Keys:** a SHA-256 over the source text, the kernel's name, the compile-time values (sorted
//! by name), the target, and the compiler's identity — the crate version plus a build id (the
//! `TILC_BUILD_ID` environment variable at compile time when a packager sets it, else the size
//! and modification time of the running executable, so that a rebuilt program never trusts
//! entries of another build). Tuning entries also hash the shape bucket.
//!
//! **What is cached, honestly:**
//! - `tuning/`: the autotuner's best compile-time values per kernel, target and *shape bucket*
//!   (each integer scalar argument rounded up to a power of two), with every trial's time. This
//!   is what saves real time: a tuning run compiles and times every candidate; a hit compiles
//!   one configuration and times nothing.
//! - `kernels/`: for each compiled kernel, a record (name, target, values, source name) and its
//!   elaborated, verified VM program as text, for inspection with `tilc cache list -v`. For the
//!   CPU and the interpreter it is not loaded back: there is no reader for the VM text, and
//!   Cranelift's JIT code is not relocatable (caching native code would need an object-file
//!   loader and linker); a CPU compile is elaboration plus Cranelift — a few milliseconds for
//!   the library kernels — and [`crate::Compiler`] memoises compiled kernels within a process.
//! - GPU kernels (`sm_90a`, `sm_100a`, `sm_120a`) are loaded back: beside the record lie
//!   `KEY.ptx` and, where ptxas ran, `KEY.cubin`, and the record carries the launch description
//!   (parameter carriers, block, shared memory) and each file's length and SHA-256. A compile
//!   that finds them elaborates the source (milliseconds) and skips the lowering, LLVM and
//!   ptxas (up to seconds per kernel); a file that is missing or does not match its hash makes
//!   the entry a miss, and the kernel is compiled and stored again.
//!
//! **Concurrency:** every file is written to a temporary name in its folder and renamed into
//! place, which is atomic on one file system, so readers see a whole old entry or a whole new
//! one, never a torn file; two processes writing the same key write equivalent entries and the
//! last rename wins. Every entry is a separate file, so no update is read-modify-write; a GPU
//! entry's code files are written before its record, and a reader checks them against the
//! hashes in the record, so a record never vouches for files it was not written with. A file
//! that does not parse is treated as a miss (and listed as unreadable).

use crate::{Error, Result, Target};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The first line of every entry file.
const MAGIC: &str = "tilc-cache 1";

/// The compiler's identity in keys: version and build id.
pub fn compiler_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let build = match option_env!("TILC_BUILD_ID") {
            Some(id) => id.to_string(),
            None => std::env::current_exe()
                .and_then(std::fs::metadata)
                .map(|m| {
                    let t = m.modified().ok().and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).unwrap_or_default();
                    format!("exe-{}-{}.{:09}", m.len(), t.as_secs(), t.subsec_nanos())
                })
                .unwrap_or_else(|_| "unknown".into()),
        };
        format!("tilc {} ({build})", env!("CARGO_PKG_VERSION"))
    })
}

/// What identifies a compiled kernel.
#[derive(Clone, Debug)]
pub(crate) struct KeyParts<'a> {
    pub source: &'a str,
    pub kernel: &'a str,
    /// `(name, value)` pairs; sorted by name before hashing.
    pub defines: &'a [(String, String)],
    pub target: Target,
}

impl KeyParts<'_> {
    /// The hex SHA-256 key, with `extra` (a shape bucket) mixed in when given.
    pub fn key(&self, extra: Option<&str>) -> String {
        let mut defines: Vec<&(String, String)> = self.defines.iter().collect();
        defines.sort();
        let mut h = Sha256::new();
        // Each part is length-prefixed so that no two different inputs hash the same bytes.
        let mut part = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        part(compiler_id().as_bytes());
        part(self.target.name().as_bytes());
        part(self.kernel.as_bytes());
        part(self.source.as_bytes());
        for (n, v) in defines {
            part(n.as_bytes());
            part(v.as_bytes());
        }
        part(extra.unwrap_or("").as_bytes());
        hex(&h.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The hex SHA-256 of `bytes`.
fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The header field naming a record's companion file with extension `ext`.
fn file_field(ext: &str) -> String {
    format!("file.{ext}")
}

/// Formats defines as `A=1,B=2` (sorted).
pub(crate) fn defines_text(defines: &[(String, String)]) -> String {
    let mut d: Vec<String> = defines.iter().map(|(n, v)| format!("{n}={v}")).collect();
    d.sort();
    d.join(",")
}

/// Parses `A=1,B=2`.
pub(crate) fn parse_defines_text(s: &str) -> Option<Vec<(String, String)>> {
    s.split(',').filter(|p| !p.is_empty()).map(|p| p.split_once('=').map(|(n, v)| (n.to_string(), v.to_string()))).collect()
}

/// Which kind of entry a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A compiled kernel's record and VM program.
    Kernel,
    /// Autotuning results for one shape bucket.
    Tuning,
}

/// One entry of the cache, as `tilc cache list` shows it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// What it holds.
    pub kind: EntryKind,
    /// The file.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// The header fields (`kernel`, `target`, `defines`, `bucket`, `best`, …), in file order.
    pub fields: Vec<(String, String)>,
    /// The text after the header (VM program, or the trials).
    pub body: String,
}

impl Entry {
    /// A header field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Parses an entry file; `None` when it is not one.
fn parse_entry(text: &str) -> Option<(Vec<(String, String)>, String)> {
    let rest = text.strip_prefix(MAGIC)?.strip_prefix('\n')?;
    let (head, body) = rest.split_once("\n---\n").unwrap_or((rest.trim_end_matches("\n---"), ""));
    let fields = head.lines().map(|l| l.split_once(": ").map(|(k, v)| (k.to_string(), v.to_string()))).collect::<Option<Vec<_>>>()?;
    Some((fields, body.to_string()))
}

fn format_entry(fields: &[(&str, String)], body: &str) -> String {
    let mut s = format!("{MAGIC}\n");
    for (k, v) in fields {
        // Header values are single lines.
        let _ = writeln!(s, "{k}: {}", v.replace('\n', " "));
    }
    s.push_str("---\n");
    s.push_str(body);
    s
}

/// A cache folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The folder used when none is given: `$TILC_CACHE_DIR`, else `tilc` in the user's cache
    /// folder; `None` when neither exists (no home directory).
    pub fn default_dir() -> Option<PathBuf> {
        match std::env::var_os("TILC_CACHE_DIR") {
            Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
            _ => dirs::cache_dir().map(|d| d.join("tilc")),
        }
    }

    /// The cache in [`Cache::default_dir`].
    pub fn open_default() -> Result<Cache> {
        Cache::default_dir().map(Cache::at).ok_or_else(|| Error::Cache("no cache folder: set TILC_CACHE_DIR or HOME".into()))
    }

    /// The cache in folder `dir` (created on the first write).
    pub fn at(dir: impl Into<PathBuf>) -> Cache {
        Cache { root: dir.into() }
    }

    /// The folder given to [`Cache::at`].
    pub fn dir(&self) -> &Path {
        &self.root
    }

    fn kind_dir(&self, kind: EntryKind) -> PathBuf {
        self.root.join("v1").join(match kind {
            EntryKind::Kernel => "kernels",
            EntryKind::Tuning => "tuning",
        })
    }

    fn entry_path(&self, kind: EntryKind, key: &str) -> PathBuf {
        self.kind_dir(kind).join(format!("{key}.txt"))
    }

    /// Writes `text` to `path` atomically: a uniquely named temporary file in the same folder,
    /// then a rename over the destination.
    fn write_atomic(path: &Path, text: &str) -> Result<()> {
        Cache::write_atomic_bytes(path, text.as_bytes())
    }

    fn write_atomic_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = path.parent().expect("entry paths have a folder");
        std::fs::create_dir_all(dir).map_err(|e| Error::Cache(format!("cannot create `{}`: {e}", dir.display())))?;
        let tmp = dir.join(format!(".tmp-{}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), path.file_name().and_then(|n| n.to_str()).unwrap_or("entry")));
        let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Cache(format!("cannot write `{}`: {e}", path.display())));
        }
        Ok(())
    }

    fn read_entry(&self, kind: EntryKind, path: &Path) -> Option<Entry> {
        let text = std::fs::read_to_string(path).ok()?;
        let (fields, body) = parse_entry(&text)?;
        Some(Entry { kind, path: path.to_path_buf(), bytes: text.len() as u64, fields, body })
    }

    /// Records a compiled kernel (skipped when the entry exists).
    pub(crate) fn record_kernel(&self, key: &str, fields: &[(&str, String)], vm_text: &str) -> Result<()> {
        let path = self.entry_path(EntryKind::Kernel, key);
        if path.exists() {
            return Ok(());
        }
        Cache::write_atomic(&path, &format_entry(fields, vm_text))
    }

    /// Stores a compiled kernel's record with companion files (`(extension, bytes)`, such as the
    /// PTX and the cubin of a GPU kernel) as `KEY.EXT` beside it: the files first, then the
    /// record naming each with its length and SHA-256. Overwrites an older entry of the key.
    pub(crate) fn store_kernel_files(&self, key: &str, fields: &[(&str, String)], vm_text: &str, files: &[(&str, &[u8])]) -> Result<()> {
        let dir = self.kind_dir(EntryKind::Kernel);
        let names: Vec<String> = files.iter().map(|(ext, _)| file_field(ext)).collect();
        let mut all: Vec<(&str, String)> = fields.to_vec();
        for ((ext, bytes), name) in files.iter().zip(&names) {
            let file = format!("{key}.{ext}");
            Cache::write_atomic_bytes(&dir.join(&file), bytes)?;
            all.push((name.as_str(), format!("{file} {} {}", bytes.len(), sha256(bytes))));
        }
        Cache::write_atomic(&self.entry_path(EntryKind::Kernel, key), &format_entry(&all, vm_text))
    }

    /// The kernel record of `key` and its companion files by extension, when the record exists
    /// and every file it names is present with the recorded length and SHA-256.
    pub(crate) fn kernel_files(&self, key: &str) -> Option<(Entry, HashMap<String, Vec<u8>>)> {
        let entry = self.read_entry(EntryKind::Kernel, &self.entry_path(EntryKind::Kernel, key))?;
        let dir = self.kind_dir(EntryKind::Kernel);
        let mut files = HashMap::new();
        for (name, value) in &entry.fields {
            let Some(ext) = name.strip_prefix("file.") else { continue };
            let mut parts = value.split(' ');
            let (file, len, hash) = (parts.next()?, parts.next()?.parse::<usize>().ok()?, parts.next()?);
            // Only a file of this key, in this folder.
            if file != format!("{key}.{ext}") {
                return None;
            }
            let bytes = std::fs::read(dir.join(file)).ok()?;
            if bytes.len() != len || sha256(&bytes) != hash {
                return None;
            }
            files.insert(ext.to_string(), bytes);
        }
        Some((entry, files))
    }

    /// The tuning entry of `key`, if present and readable.
    pub(crate) fn tuning(&self, key: &str) -> Option<Entry> {
        self.read_entry(EntryKind::Tuning, &self.entry_path(EntryKind::Tuning, key))
    }

    /// Stores a tuning entry.
    pub(crate) fn store_tuning(&self, key: &str, fields: &[(&str, String)], trials: &str) -> Result<()> {
        Cache::write_atomic(&self.entry_path(EntryKind::Tuning, key), &format_entry(fields, trials))
    }

    /// Every entry, tuning results first, each kind sorted by kernel name; files that do not
    /// parse are returned in the second list.
    pub fn entries(&self) -> Result<(Vec<Entry>, Vec<PathBuf>)> {
        let mut entries = Vec::new();
        let mut broken = Vec::new();
        for kind in [EntryKind::Tuning, EntryKind::Kernel] {
            let dir = self.kind_dir(kind);
            let list = match std::fs::read_dir(&dir) {
                Ok(l) => l,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::Cache(format!("cannot read `{}`: {e}", dir.display()))),
            };
            let mut of_kind = Vec::new();
            for item in list.flatten() {
                let path = item.path();
                let name = item.file_name();
                // Temporary files, and the companion files of kernel records (counted with
                // their record below).
                if name.to_string_lossy().starts_with(".tmp-") || path.extension().is_some_and(|e| e != "txt") {
                    continue;
                }
                match self.read_entry(kind, &path) {
                    Some(mut e) => {
                        let dir = path.parent().unwrap_or(Path::new(""));
                        for (field, value) in &e.fields {
                            if field.starts_with("file.")
                                && let Some(file) = value.split(' ').next()
                                && let Ok(m) = std::fs::metadata(dir.join(file))
                            {
                                e.bytes += m.len();
                            }
                        }
                        of_kind.push(e)
                    }
                    None => broken.push(path),
                }
            }
            of_kind.sort_by(|a, b| (a.field("kernel"), a.field("bucket"), &a.path).cmp(&(b.field("kernel"), b.field("bucket"), &b.path)));
            entries.extend(of_kind);
        }
        Ok((entries, broken))
    }

    /// Deletes every entry (and stray temporary files); returns how many files were removed.
    pub fn clear(&self) -> Result<usize> {
        let mut removed = 0;
        for kind in [EntryKind::Tuning, EntryKind::Kernel] {
            let dir = self.kind_dir(kind);
            let list = match std::fs::read_dir(&dir) {
                Ok(l) => l,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::Cache(format!("cannot read `{}`: {e}", dir.display()))),
            };
            for item in list.flatten() {
                match std::fs::remove_file(item.path()) {
                    Ok(()) => removed += 1,
                    // Another process cleared it first.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::Cache(format!("cannot remove `{}`: {e}", item.path().display()))),
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_garbage_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        cache.store_tuning("abc", &[("kernel", "k".into()), ("best", "BM=32".into())], "BM=32 1.0 us\n").unwrap();
        let e = cache.tuning("abc").unwrap();
        assert_eq!(e.field("best"), Some("BM=32"));
        assert_eq!(e.body, "BM=32 1.0 us\n");
        std::fs::write(cache.entry_path(EntryKind::Tuning, "bad"), "garbage").unwrap();
        assert!(cache.tuning("bad").is_none());
        let (entries, broken) = cache.entries().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(broken.len(), 1);
        assert_eq!(cache.clear().unwrap(), 2);
        assert!(cache.entries().unwrap().0.is_empty());
    }

    #[test]
    fn kernel_files_round_trip_and_a_damaged_file_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let ptx = b".version 8.0\n.target sm_90a\n";
        let cubin = [0x7f, b'E', b'L', b'F', 0, 1, 2];
        cache.store_kernel_files("k1", &[("kernel", "gemm".into()), ("params", "i32 ptr/16".into())], "vm text\n", &[("ptx", ptx), ("cubin", &cubin)]).unwrap();
        let (entry, files) = cache.kernel_files("k1").unwrap();
        assert_eq!(entry.field("params"), Some("i32 ptr/16"));
        assert_eq!(entry.body, "vm text\n");
        assert_eq!(files["ptx"], ptx);
        assert_eq!(files["cubin"], cubin);
        // `cache list` shows one entry, counting the companion files' bytes, and nothing broken.
        let (entries, broken) = cache.entries().unwrap();
        assert_eq!((entries.len(), broken.len()), (1, 0));
        assert!(entries[0].bytes > (ptx.len() + cubin.len()) as u64, "{}", entries[0].bytes);
        // A changed byte in a companion file makes the entry a miss, as does a missing one.
        let cubin_path = cache.kind_dir(EntryKind::Kernel).join("k1.cubin");
        std::fs::write(&cubin_path, [0x7f, b'E', b'L', b'F', 0, 1, 3]).unwrap();
        assert!(cache.kernel_files("k1").is_none());
        std::fs::remove_file(&cubin_path).unwrap();
        assert!(cache.kernel_files("k1").is_none());
        assert!(cache.kernel_files("absent").is_none());
        // Storing again repairs it; clearing removes the record and its files.
        cache.store_kernel_files("k1", &[("kernel", "gemm".into())], "", &[("ptx", ptx), ("cubin", &cubin)]).unwrap();
        assert!(cache.kernel_files("k1").is_some());
        assert_eq!(cache.clear().unwrap(), 3);
        assert!(cache.kernel_files("k1").is_none());
    }

    #[test]
    fn keys_separate_every_part() {
        let defs = vec![("BM".to_string(), "64".to_string())];
        let base = KeyParts { source: "src", kernel: "k", defines: &defs, target: Target::Cpu };
        let k0 = base.key(None);
        assert_eq!(k0.len(), 64);
        let other_defs = vec![("BM".to_string(), "32".to_string())];
        let variants = [
            KeyParts { source: "src2", ..base.clone() }.key(None),
            KeyParts { kernel: "k2", ..base.clone() }.key(None),
            KeyParts { defines: &other_defs, ..base.clone() }.key(None),
            KeyParts { target: Target::Interp, ..base.clone() }.key(None),
            base.key(Some("m=16")),
        ];
        for v in variants {
            assert_ne!(v, k0);
        }
        // Define order does not matter.
        let two = vec![("A".to_string(), "1".to_string()), ("B".to_string(), "2".to_string())];
        let two_rev = vec![two[1].clone(), two[0].clone()];
        assert_eq!(KeyParts { defines: &two, ..base.clone() }.key(None), KeyParts { defines: &two_rev, ..base.clone() }.key(None));
    }
}
