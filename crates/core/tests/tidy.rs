//! Code-base rules checked on every test run: every Rust file of the workspace starts with a
//! module doc (`//!`), so the next engineer learns what a file is for from its first line.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    assert!(files.len() > 50, "found only {} Rust files under {}", files.len(), crates.display());
    let undocumented: Vec<String> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).map_or(true, |text| !text.starts_with("//!")))
        .map(|f| f.display().to_string())
        .collect();
    assert!(undocumented.is_empty(), "files without a leading `//!` module doc:\n{}", undocumented.join("\n"));
}
