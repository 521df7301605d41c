//! Files Keysmith writes hold secrets (the pepper, the embedded database
//! with sessions and hashes, emails): they are for the service's own user
//! only. Directories 0700, files 0600, whatever the inherited umask.

use std::{
    fs,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::Path,
};

use anyhow::Context;

/// From here on, everything this process creates is private to its user.
pub fn restrict_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates `dir` (and missing parents) as 0700, or tightens it to 0700.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("failed to create {}", dir.display()))?;
    tighten(dir, 0o700)
}

/// Creates `path` empty as 0600 if absent, or tightens it to 0600. SQLite
/// gives its `-wal` and `-shm` files the mode of the database file.
pub fn private_file(path: &Path) -> anyhow::Result<()> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    tighten(path, 0o600)
}

fn tighten(path: &Path, mode: u32) -> anyhow::Result<()> {
    let current = fs::metadata(path)
        .with_context(|| format!("failed to read {}", path.display()))?
        .permissions()
        .mode();
    if current & 0o777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("failed to restrict {} to {mode:o}", path.display()))?;
    }
    Ok(())
}

/// Refuses an existing pepper file that the group or others may read or
/// write: whoever reads it can forge key hashes offline. `allow` (set by
/// `KEYSMITH_ALLOW_READABLE_PEPPER`) turns the refusal into a warning.
pub fn check_pepper_file(path: &Path, allow: bool) -> anyhow::Result<()> {
    let Ok(meta) = fs::metadata(path) else {
        return Ok(()); // absent: it will be created 0600
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    if allow {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the pepper file is readable by others (allowed by KEYSMITH_ALLOW_READABLE_PEPPER)");
        return Ok(());
    }
    anyhow::bail!(
        "the pepper file {} has mode {mode:o}: group and others must have no access (chmod 600 it), \
         or set KEYSMITH_ALLOW_READABLE_PEPPER=1 to accept this",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn private_paths_are_created_or_tightened() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("a/b");
        private_dir(&dir).expect("dir");
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("f");
        fs::write(&file, "x").expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
        private_file(&file).expect("file");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(
            fs::read_to_string(&file).expect("read"),
            "x",
            "contents kept"
        );
    }

    #[test]
    fn a_readable_pepper_is_refused_unless_allowed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let pepper = tmp.path().join("pepper");
        check_pepper_file(&pepper, false).expect("absent is fine");
        fs::write(&pepper, "1 00").expect("write");
        fs::set_permissions(&pepper, fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = check_pepper_file(&pepper, false).expect_err("refused");
        assert!(
            err.to_string().contains("KEYSMITH_ALLOW_READABLE_PEPPER"),
            "{err}"
        );
        check_pepper_file(&pepper, true).expect("allowed");
        fs::set_permissions(&pepper, fs::Permissions::from_mode(0o600)).expect("chmod");
        check_pepper_file(&pepper, false).expect("private");
    }
}
