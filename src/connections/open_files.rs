//! The open-file limit: every connection is a file descriptor, and the
//! usual soft limit (1,024) is far below what a server may be allowed.

use std::sync::OnceLock;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft open-file limit to the hard one (once per process) and
/// returns the soft limit in force (`None`: unlimited).
pub fn raise_open_file_limit() -> Option<u64> {
    static IN_FORCE: OnceLock<Option<u64>> = OnceLock::new();
    *IN_FORCE.get_or_init(|| {
        let limit = getrlimit(Resource::Nofile);
        if limit.current == limit.maximum {
            return limit.current;
        }
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::info!(
                    from = limit.current,
                    to = limit.maximum,
                    "open-file limit raised to its hard limit"
                );
                limit.maximum
            }
            Err(err) => {
                // Some systems refuse "unlimited" for this resource.
                tracing::warn!(error = %err, soft = limit.current, hard = limit.maximum, "failed to raise the open-file limit");
                limit.current
            }
        }
    })
}
