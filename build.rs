//! Build information for `keysmith --version` and the `keysmith_build_info`
//! metric: the git commit and the date of the build's source. The date is the
//! commit's, not the wall clock, so the same source builds the same binary. Outside a git checkout (a source tarball, a Docker
//! context without `.git`) both read `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let date = git(&["log", "-1", "--format=%cs"]);
    println!(
        "cargo:rustc-env=KEYSMITH_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!(
        "cargo:rustc-env=KEYSMITH_BUILD_DATE={}",
        date.as_deref().unwrap_or("unknown")
    );
    // A new commit moves HEAD or the branch it points to (loose or packed).
    // Only files that exist: cargo reruns the script on every build for a
    // missing one.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = ["HEAD", "packed-refs"]
        .into_iter()
        .chain(branch.as_deref())
        .filter_map(|name| git(&["rev-parse", "--git-path", name]))
        .filter(|path| std::path::Path::new(path).exists());
    for path in watched {
        println!("cargo:rerun-if-changed={path}");
    }
}
