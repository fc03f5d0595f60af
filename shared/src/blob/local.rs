//! Blobs as plain files under a root directory, so a developer can look at them and drop
//! files in by hand. Writes go to a temporary file that is renamed into place, so a
//! reader or a crash never sees half an object.
//!
//! Metadata (etag, content type) sits in a sidecar under `.catalyst-meta/`; the data file
//! is the source of truth, and a sidecar that does not match it (a file copied in by
//! hand, a crash between the two renames) is recomputed.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{BlobStore, Listing, Object, ObjectMeta, PutOptions, validate_key};
use crate::error::{Error, Result};

const TMP_DIR: &str = ".catalyst-tmp";
const META_DIR: &str = ".catalyst-meta";

#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    etag: String,
    size: u64,
    mtime_ns: u128,
    content_type: Option<String>,
}

impl LocalBlobStore {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(root.join(TMP_DIR))
            .map_err(|e| Error::internal(format!("cannot create blob root {}", root.display())).with_source(e))?;
        std::fs::create_dir_all(root.join(META_DIR))
            .map_err(|e| Error::internal(format!("cannot create blob root {}", root.display())).with_source(e))?;
        Ok(LocalBlobStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file holding `key` (the key is validated first).
    pub fn path_of(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn sidecar_path(&self, key: &str) -> PathBuf {
        self.root.join(META_DIR).join(format!("{key}.json"))
    }

    fn put_blocking(&self, key: &str, data: &[u8], options: &PutOptions) -> Result<ObjectMeta> {
        let target = self.path_of(key)?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
        let tmp = write_temp(&self.root.join(TMP_DIR), data)?;
        if options.if_absent {
            // hard_link fails if the target exists: an atomic create-if-absent.
            let linked = std::fs::hard_link(tmp.path(), &target);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::conflict(format!("object `{key}` already exists")).with_code("already_exists"));
                }
                Err(e) => return Err(io_err(e)),
            }
        } else {
            tmp.persist(&target).map_err(|e| io_err(e.error))?;
        }
        let meta = std::fs::metadata(&target).map_err(io_err)?;
        let content_type = options.content_type.clone().or_else(|| guess_type(key));
        let sidecar = Sidecar { etag: etag_of(data), size: meta.len(), mtime_ns: mtime_ns(&meta), content_type };
        self.write_sidecar(key, &sidecar)?;
        Ok(to_meta(key, &sidecar, &meta))
    }

    fn write_sidecar(&self, key: &str, sidecar: &Sidecar) -> Result<()> {
        let path = self.sidecar_path(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
        let tmp = write_temp(&self.root.join(TMP_DIR), &serde_json::to_vec(sidecar).expect("serializable"))?;
        tmp.persist(&path).map_err(|e| io_err(e.error))?;
        Ok(())
    }

    /// Metadata for `key`, recomputing (and repairing) the sidecar when stale.
    fn meta_blocking(&self, key: &str, data: Option<&[u8]>) -> Result<ObjectMeta> {
        let path = self.path_of(key)?;
        let fs_meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Err(Error::not_found(format!("no object `{key}`"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!("no object `{key}`")));
            }
            Err(e) => return Err(io_err(e)),
        };
        let stored: Option<Sidecar> =
            std::fs::read(self.sidecar_path(key)).ok().and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(s) = stored.as_ref().filter(|s| s.size == fs_meta.len() && s.mtime_ns == mtime_ns(&fs_meta)) {
            return Ok(to_meta(key, s, &fs_meta));
        }
        let etag = match data {
            Some(d) => etag_of(d),
            None => etag_of(&std::fs::read(&path).map_err(io_err)?),
        };
        let sidecar = Sidecar {
            etag,
            size: fs_meta.len(),
            mtime_ns: mtime_ns(&fs_meta),
            content_type: stored.and_then(|s| s.content_type).or_else(|| guess_type(key)),
        };
        // Best effort: a read must not fail because the cache could not be written.
        let _ = self.write_sidecar(key, &sidecar);
        Ok(to_meta(key, &sidecar, &fs_meta))
    }

    fn list_blocking(&self, prefix: &str, cursor: Option<&str>, limit: usize) -> Result<Listing> {
        // Walk only the deepest directory the prefix names, then filter by the full prefix.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        if !dir_part.is_empty() {
            validate_key(dir_part)?;
        }
        let start = self.root.join(dir_part);
        let mut keys = Vec::new();
        collect_files(&self.root, &start, &mut keys)?;
        keys.retain(|k| k.starts_with(prefix) && cursor.is_none_or(|c| k.as_str() > c));
        keys.sort();
        let limit = limit.max(1);
        let more = keys.len() > limit;
        keys.truncate(limit);
        let mut objects = Vec::with_capacity(keys.len());
        for key in &keys {
            match self.meta_blocking(key, None) {
                Ok(m) => objects.push(m),
                // Deleted between the walk and now: not part of the listing.
                Err(e) if e.kind() == crate::error::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let next = if more { keys.last().cloned() } else { None };
        Ok(Listing { objects, next })
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(()),
        Err(e) => return Err(io_err(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err)?;
        let path = entry.path();
        let rel = path.strip_prefix(root).expect("walk stays under root");
        let Some(rel) = rel.to_str() else { continue }; // not a valid key
        if rel == TMP_DIR || rel == META_DIR {
            continue;
        }
        let ft = entry.file_type().map_err(io_err)?;
        if ft.is_dir() {
            collect_files(root, &path, out)?;
        } else if ft.is_file() && validate_key(rel).is_ok() {
            out.push(rel.to_string());
        }
    }
    Ok(())
}

fn write_temp(dir: &Path, data: &[u8]) -> Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err)?;
    tmp.write_all(data).map_err(io_err)?;
    tmp.as_file().sync_data().map_err(io_err)?;
    Ok(tmp)
}

fn etag_of(data: &[u8]) -> String {
    hex::encode(&Sha256::digest(data)[..16])
}

fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified().ok().and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos())
}

fn guess_type(key: &str) -> Option<String> {
    mime_guess::from_path(key).first().map(|m| m.essence_str().to_string())
}

fn to_meta(key: &str, s: &Sidecar, fs_meta: &std::fs::Metadata) -> ObjectMeta {
    ObjectMeta {
        key: key.to_string(),
        size: s.size,
        etag: s.etag.clone(),
        content_type: s.content_type.clone(),
        last_modified: fs_meta.modified().ok().map(DateTime::<Utc>::from),
    }
}

fn io_err(e: std::io::Error) -> Error {
    Error::internal("local blob storage I/O failed").with_source(e)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal("blob task failed").with_source(e))?
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    fn location(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn put(&self, key: &str, data: Bytes, options: PutOptions) -> Result<ObjectMeta> {
        validate_key(key)?;
        let this = self.clone();
        let key = key.to_string();
        blocking(move || this.put_blocking(&key, &data, &options)).await
    }

    async fn get(&self, key: &str) -> Result<Object> {
        let path = self.path_of(key)?;
        let this = self.clone();
        let key = key.to_string();
        blocking(move || {
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory) => {
                    return Err(Error::not_found(format!("no object `{key}`")));
                }
                Err(e) => return Err(io_err(e)),
            };
            let meta = this.meta_blocking(&key, Some(&data))?;
            Ok(Object { meta, data: Bytes::from(data) })
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        validate_key(key)?;
        let this = self.clone();
        let key = key.to_string();
        blocking(move || this.meta_blocking(&key, None)).await
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>, limit: usize) -> Result<Listing> {
        let this = self.clone();
        let prefix = prefix.to_string();
        let cursor = cursor.map(str::to_string);
        blocking(move || this.list_blocking(&prefix, cursor.as_deref(), limit)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        let sidecar = self.sidecar_path(key);
        blocking(move || {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(e)),
            }
            let _ = std::fs::remove_file(sidecar);
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        super::super::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn files_dropped_by_hand_are_visible_with_a_content_etag() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("uploads/resumes/u1")).unwrap();
        std::fs::write(dir.path().join("uploads/resumes/u1/cv.md"), b"# Jane").unwrap();
        let meta = store.head("uploads/resumes/u1/cv.md").await.unwrap();
        assert_eq!(meta.etag, etag_of(b"# Jane"));
        assert_eq!(meta.content_type.as_deref(), Some("text/markdown"));
        let listing = store.list("uploads/", None, 10).await.unwrap();
        assert_eq!(listing.objects.len(), 1);
        // Reserved directories never show up in listings.
        assert!(listing.objects.iter().all(|o| !o.key.starts_with(".catalyst")));
    }

    #[tokio::test]
    async fn concurrent_writers_leave_one_whole_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..16u8 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.put("race/obj", Bytes::from(vec![i; 256 * 1024]), PutOptions::default()).await.unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let obj = store.get("race/obj").await.unwrap();
        assert_eq!(obj.data.len(), 256 * 1024);
        assert!(obj.data.iter().all(|b| *b == obj.data[0]), "bytes from two writers were mixed");
        // No temp files are left behind.
        assert_eq!(std::fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(), 0);
    }
}
