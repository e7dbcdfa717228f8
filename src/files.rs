//! Writing files in folders that others may write to (a shared group folder,
//! `/tmp`): a new file is created under a fresh random name with `O_EXCL`, so a
//! planted `<path>.tmp` symlink cannot redirect the write, and is renamed over
//! the target in one step, so a failure leaves neither half a file nor a
//! temporary one behind.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Why a file was not written, naming it.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot write {path}: it is a folder; name a file inside it")]
    IsFolder { path: PathBuf },
    #[error("cannot write {path}: {why}")]
    Refused { path: PathBuf, why: &'static str },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Replaces the file at `path` with `bytes`, atomically: readers see the old
/// file or the new one, never a mix, and a failed write changes nothing and
/// leaves no temporary file. The new content goes to a file created with
/// `O_EXCL` under a random name in `path`'s folder, is flushed to disk, then
/// renamed over `path`.
///
/// An existing file keeps its permission bits; a new one gets the usual ones
/// (0666 less the umask). A symlink at `path` is replaced by the file, never
/// followed, so a planted link cannot send the write elsewhere. A folder at
/// `path` is refused.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    replace_file(path, bytes, None)
}

/// [`write_atomically`], the file readable by every user (0644) whatever the
/// umask and its former mode: for a file another service reads (the metrics
/// file, read by node_exporter's own user).
pub fn write_atomically_readable_by_all(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    replace_file(path, bytes, Some(0o644))
}

/// The one way a file is replaced: `mode` forces the new file's permission
/// bits, else an existing file's are kept.
fn replace_file(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let existing = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(FileError::IsFolder {
                path: path.to_path_buf(),
            });
        }
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(path.file_name().unwrap_or_default());
    prefix.push(".");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // tempfile's default is 0600; a report or config is an ordinary file.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(folder).map_err(io)?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        tmp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(io)?;
    }
    if let Some(meta) = existing.as_ref().filter(|m| mode.is_none() && m.is_file()) {
        tmp.as_file()
            .set_permissions(meta.permissions())
            .map_err(io)?;
    }
    // On any error below, dropping `tmp` deletes the temporary file.
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    NamedTempFile::persist(tmp, path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Where [`write_output`] put the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// A regular file, replaced or created.
    File,
    /// Into a pipe or character device (possibly our own standard output).
    Stream,
}

/// Writes `bytes` to an output the user named (`report -o`). A pipe (FIFO) or
/// character device (a terminal, `/dev/null`, `/dev/stdout` on a pipe) is
/// written straight into, never replaced; a regular file, or none yet, is
/// replaced with [`write_atomically`]. Refused: a folder, a block device or
/// socket, and a symlink to anything but a pipe or character device (replacing
/// it would drop the link, writing through it could be a planted redirect).
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<Written, FileError> {
    let link = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return write_atomically(path, bytes).map(|()| Written::File);
        }
        Err(source) => {
            return Err(FileError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let is_link = link.file_type().is_symlink();
    let target = if is_link {
        std::fs::metadata(path).ok()
    } else {
        Some(link)
    };
    let refused = |why| FileError::Refused {
        path: path.to_path_buf(),
        why,
    };
    match target.as_ref().map(kind) {
        Some(Kind::Stream) => write_into(path, bytes, is_link).map(|()| Written::Stream),
        Some(Kind::Folder) => Err(FileError::IsFolder {
            path: path.to_path_buf(),
        }),
        Some(Kind::Regular) if !is_link => write_atomically(path, bytes).map(|()| Written::File),
        Some(Kind::Regular) | None => Err(refused(
            "it is a symbolic link, which is not followed in case someone planted it; name the file it points to, or use -o - for standard output",
        )),
        Some(Kind::Other) => Err(refused(
            "it is a block device or socket, not a file; name a file, or use -o - for standard output",
        )),
    }
}

/// What kind of thing a path is, as far as writing to it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Regular,
    Folder,
    /// A FIFO or character device: written into, never replaced.
    Stream,
    /// A block device or socket.
    Other,
}

fn kind(meta: &Metadata) -> Kind {
    let t = meta.file_type();
    if t.is_file() {
        return Kind::Regular;
    }
    if t.is_dir() {
        return Kind::Folder;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() || t.is_char_device() {
            return Kind::Stream;
        }
    }
    Kind::Other
}

/// Writes into an existing pipe or character device: no creation, no
/// truncation, and the file actually opened is checked again, so a pipe swapped
/// for a regular file (or a link to one) after the first look is never written.
/// A pipe that no one reads is refused rather than waited on: a pipe planted
/// under the report's name must not hang a cron run.
fn write_into(path: &Path, bytes: &[u8], through_link: bool) -> Result<(), FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    let open = |nonblocking: bool| {
        let mut flags = if through_link { 0 } else { libc::O_NOFOLLOW };
        if nonblocking {
            flags |= libc::O_NONBLOCK;
        }
        let mut options = OpenOptions::new();
        options.write(true);
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, flags);
        options.open(path)
    };
    #[cfg(not(unix))]
    let open = |_: bool| {
        let _ = through_link;
        OpenOptions::new().write(true).open(path)
    };
    // Opening a pipe's write end without blocking fails (ENXIO) when it has
    // no reader; the probe is closed again and the real open blocks as usual.
    #[cfg(unix)]
    match open(true) {
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(FileError::Refused {
                path: path.to_path_buf(),
                why: "it is a pipe that no one is reading; start the reader first",
            });
        }
        Err(e) => return Err(io(e)),
        Ok(_probe) => {}
    }
    let mut file: File = open(false).map_err(io)?;
    if kind(&file.metadata().map_err(io)?) != Kind::Stream {
        return Err(FileError::Refused {
            path: path.to_path_buf(),
            why: "it changed while being opened; nothing was written",
        });
    }
    file.write_all(bytes).map_err(io)?;
    file.flush().map_err(io)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const VICTIM: &str = "not yours\n";

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).expect("read")
    }

    #[test]
    fn a_file_is_replaced_whole_and_keeps_its_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.txt");
        write_atomically(&path, b"first").expect("new file");
        assert_eq!(read(&path), "first");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        write_atomically(&path, b"second").expect("replace");
        assert_eq!(read(&path), "second");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }

    #[test]
    fn a_symlink_at_the_path_is_replaced_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, VICTIM).expect("victim");
        let path = dir.path().join("out.txt");
        std::os::unix::fs::symlink(&victim, &path).expect("plant");
        write_atomically(&path, b"mine").expect("write");
        assert_eq!(read(&victim), VICTIM);
        assert_eq!(read(&path), "mine");
        assert!(!std::fs::symlink_metadata(&path).expect("meta").is_symlink());
    }

    #[test]
    fn a_folder_is_refused_and_nothing_is_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).expect("mkdir");
        let errors = [
            write_atomically(&folder, b"x").expect_err("folder"),
            write_output(&folder, b"x").expect_err("folder"),
        ];
        for err in errors {
            assert!(matches!(err, FileError::IsFolder { .. }), "{err}");
            assert!(err.to_string().contains("is a folder"), "{err}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn output_through_a_link_goes_only_into_a_pipe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("pipe");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(status.success());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).expect("link");
        let err = write_output(&link, b"x").expect_err("no reader");
        assert!(err.to_string().contains("no one is reading"), "{err}");
        // Held open for reading and writing, the pipe has a reader at once;
        // once it is closed, the reader sees the end.
        let keeper = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .expect("keeper");
        // Opened here, while the keeper is a writer, so it never waits.
        let mut read_end = File::open(&fifo).expect("read end");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut read_end, &mut text).expect("read pipe");
            text
        });
        let written = write_output(&link, b"through the pipe").expect("written into the pipe");
        assert_eq!(written, Written::Stream);
        drop(keeper);
        assert_eq!(reader.join().expect("reader"), "through the pipe");

        let victim = dir.path().join("victim");
        std::fs::write(&victim, VICTIM).expect("victim");
        let to_file = dir.path().join("to-file");
        std::os::unix::fs::symlink(&victim, &to_file).expect("link");
        let err = write_output(&to_file, b"x").expect_err("link to a file");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(read(&victim), VICTIM);
        assert!(
            std::fs::symlink_metadata(&to_file)
                .expect("meta")
                .is_symlink()
        );
    }
}
