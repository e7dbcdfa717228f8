//! One sync at a time per database: an exclusive lock on `<db>.lock`, held for
//! the whole sync. The kernel drops it when the process dies, so a lock left by
//! a killed sync never blocks the next one. The store owns it because what it
//! guards is the database: another backend would lock its own way.
//!
//! The lock file sits in the database's folder, which others may write to: a
//! symlink, hard link or anything but a plain file planted under its name is
//! refused, so the holder line can never be written into another file.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held while syncing; released on drop.
#[derive(Debug)]
pub struct SyncLock {
    _file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another sync is running on this database ({holder}); try again when it has finished")]
    Busy { holder: String },
    #[error(
        "the lock file {path} is {what}, not a plain file: refused, in case someone planted it to make the sync write elsewhere; remove it if you did not make it"
    )]
    Planted { path: PathBuf, what: &'static str },
    #[error("cannot open the lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SyncLock {
    /// Takes the lock of the database at `db_path`, waiting up to `wait` for
    /// another sync to finish. Taken before the database is opened, so a
    /// second sync never touches it.
    pub fn acquire(db_path: &Path, wait: Duration) -> Result<SyncLock, LockError> {
        let mut name = db_path.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = open_lock_file(&path)?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    return Err(LockError::Busy {
                        holder: if holder.is_empty() {
                            "holder unknown".to_owned()
                        } else {
                            holder.to_owned()
                        },
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        // Say who holds it, for the message the next sync prints.
        let holder = format!(
            "pid {}, started {}",
            std::process::id(),
            crate::normalize::format_utc(chrono::Utc::now())
        );
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(holder.as_bytes()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(SyncLock { _file: file, path })
    }

    /// The lock file beside the database.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens (creating if needed, mode 0600) the lock file without following a
/// symlink at its name, and refuses it unless it is a plain file with one
/// name: only then may it be truncated and rewritten.
fn open_lock_file(path: &Path) -> Result<File, LockError> {
    let planted = |what| LockError::Planted {
        path: path.to_path_buf(),
        what,
    };
    let io = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let is_symlink = || std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    // Without O_NOFOLLOW (not unix), looking first is the best there is.
    #[cfg(not(unix))]
    if is_symlink() {
        return Err(planted("a symbolic link"));
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(_) if is_symlink() => return Err(planted("a symbolic link")),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(planted("a folder, pipe or device"));
    }
    #[cfg(unix)]
    if std::os::unix::fs::MetadataExt::nlink(&meta) > 1 {
        return Err(planted("a hard link to another file"));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("j.db");
        let first = SyncLock::acquire(&db, Duration::ZERO).expect("first");
        let err = SyncLock::acquire(&db, Duration::from_millis(200)).expect_err("busy");
        let text = err.to_string();
        assert!(text.contains("another sync is running"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        SyncLock::acquire(&db, Duration::ZERO).expect("free again after drop");
    }

    /// Issue 18 item 2: a lock file planted by someone who can write to the
    /// database's folder made the sync truncate and rewrite another file.
    #[cfg(unix)]
    #[test]
    fn a_planted_link_or_pipe_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "not yours\n").expect("victim");
        type Plant = fn(&Path, &Path);
        let plants: [(&str, Plant); 3] = [
            ("symbolic link", |victim, at| {
                std::os::unix::fs::symlink(victim, at).expect("symlink");
            }),
            ("hard link", |victim, at| {
                std::fs::hard_link(victim, at).expect("hard link");
            }),
            ("pipe", |_, at| {
                let status = std::process::Command::new("mkfifo")
                    .arg(at)
                    .status()
                    .expect("mkfifo");
                assert!(status.success());
            }),
        ];
        for (n, (what, plant)) in plants.into_iter().enumerate() {
            let db = dir.path().join(format!("j{n}.db"));
            let lock = dir.path().join(format!("j{n}.db.lock"));
            plant(&victim, &lock);
            let err = SyncLock::acquire(&db, Duration::ZERO).expect_err(what);
            let text = err.to_string();
            assert!(matches!(err, LockError::Planted { .. }), "{what}: {text}");
            assert!(
                text.contains(&lock.display().to_string()) && text.contains(what),
                "{text}"
            );
            assert_eq!(
                std::fs::read_to_string(&victim).expect("read"),
                "not yours\n"
            );
        }
    }
}
