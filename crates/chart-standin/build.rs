//! Embeds the fixture chart sources (`charts/**`) into the library, so the packaged
//! charts come out of the binary itself wherever it runs (the demo copies only the
//! binary). `cargo:rerun-if-changed=charts` makes cargo rescan the whole directory, so
//! editing a template rebuilds the crate.

use std::{env, fs, io, path::Path};

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).expect("walk stays under root");
            out.push(rel.to_str().expect("UTF-8 file names under charts/").replace('\\', "/"));
        }
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let root = Path::new(&manifest_dir).join("charts");
    println!("cargo:rerun-if-changed=charts");
    let mut files = Vec::new();
    walk(&root, &root, &mut files)?;
    files.sort();
    let mut src = String::from(
        "/// Every file under `charts/`, path relative to it, sorted.\npub(crate) static FILES: &[(&str, &[u8])] = &[\n",
    );
    for rel in &files {
        let abs = root.join(rel);
        src.push_str(&format!("    ({rel:?}, include_bytes!({:?})),\n", abs.to_str().expect("UTF-8 path")));
    }
    src.push_str("];\n");
    fs::write(Path::new(&env::var("OUT_DIR").expect("set by cargo")).join("fixture_files.rs"), src)
}
