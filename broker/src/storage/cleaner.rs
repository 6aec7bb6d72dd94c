//! Log compaction (`cleanup.policy=compact`).

use std::fs;
use std::io;
use std::path::Path;

/// Completes a swap the cleaner started (`.swap` is whole and synced) and
/// discards half-written `.cleaned` files.
pub fn finish_interrupted_swaps(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".cleaned") || name.ends_with(".tmp") {
            fs::remove_file(&path)?;
        } else if let Some(log) = name.strip_suffix(".swap") {
            let target = dir.join(log);
            fs::rename(&path, &target)?;
            if let Some(base) = log.strip_suffix(".log") {
                // The old indexes describe the old file; force a rebuild.
                for ext in ["index", "timeindex"] {
                    match fs::remove_file(dir.join(format!("{base}.{ext}"))) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(())
}
