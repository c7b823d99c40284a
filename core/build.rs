//! Embeds `clickhouse/schema/NNNN_name.sql` into the binary, so `dvmdash migrate` works wherever
//! the binary is copied (containers included).

use std::{env, fs, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../clickhouse/schema");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<(u32, String, PathBuf)> = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            println!("cargo:rerun-if-changed={}", path.display());
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(".sql") else {
                continue;
            };
            let version: u32 = stem
                .split('_')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("migration {name} must start with a number, like 0001_name.sql"));
            files.push((
                version,
                stem.to_owned(),
                fs::canonicalize(&path).expect("migration path"),
            ));
        }
    }
    files.sort();
    for w in files.windows(2) {
        assert!(w[0].0 != w[1].0, "two migrations share version {}", w[0].0);
    }
    let mut out = String::from(
        "/// (version, name, sql) of every migration, in order.\npub static MIGRATIONS: &[(u32, &str, &str)] = &[\n",
    );
    for (v, name, path) in &files {
        out.push_str(&format!(
            "    ({v}, {name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("migrations.rs");
    fs::write(dest, out).expect("writing migrations.rs");
}
