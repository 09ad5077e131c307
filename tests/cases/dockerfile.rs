//! The image's dependency layer builds against stub sources: every `[[bench]]` and
//! `[[example]]` target of Cargo.toml and every workspace member must get a stub there,
//! or `docker build` fails at the manifest (no Docker engine runs here to find out).

use std::path::Path;

#[test]
fn the_dockerfile_stubs_every_bench_and_example_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let stub_loop = dockerfile
        .lines()
        .find(|l| l.contains("for b in") && l.contains("benches/$b.rs"))
        .expect("the bench stub loop");
    let mut section = "";
    let mut checked = 0;
    for line in manifest.lines() {
        if line.starts_with("[[") {
            section = line.trim();
        } else if let Some(name) = line
            .strip_prefix("name = \"")
            .and_then(|r| r.strip_suffix('"'))
            && section == "[[bench]]"
        {
            assert!(
                stub_loop
                    .split_whitespace()
                    .any(|w| w.trim_end_matches(';') == name),
                "bench `{name}` has no stub in the Dockerfile: {stub_loop}"
            );
            checked += 1;
        } else if let Some(path) = line
            .strip_prefix("path = \"")
            .and_then(|r| r.strip_suffix('"'))
            && section == "[[example]]"
        {
            assert!(
                dockerfile.contains(&format!("> {path}")),
                "example `{path}` has no stub in the Dockerfile"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "no targets found in Cargo.toml");
}

/// Every workspace member's manifest is copied into the dependency layer and its library
/// stubbed, and its sources are copied for the real build.
#[test]
fn the_dockerfile_copies_and_stubs_every_workspace_member() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let members = manifest
        .lines()
        .find_map(|l| l.strip_prefix("members = ["))
        .expect("a [workspace] members list");
    let mut checked = 0;
    for member in members
        .trim_end_matches(']')
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| *m != ".")
    {
        assert!(
            dockerfile.contains(&format!("COPY {member}/Cargo.toml {member}/")),
            "{member}: its manifest is not copied"
        );
        assert!(
            dockerfile.contains(&format!("touch src/lib.rs {member}/src/lib.rs"))
                || dockerfile.contains(&format!(" {member}/src/lib.rs")),
            "{member}: its library is not stubbed"
        );
        checked += 1;
    }
    assert!(checked >= 2, "no member checked");
    assert!(dockerfile.contains("COPY crates ./crates"));
}
