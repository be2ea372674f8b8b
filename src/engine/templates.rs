//! Finding workflow templates by name: a repository's `.spool/templates/` first, then
//! extra directories, then the templates shipped inside spool.

use crate::store::TemplateRow;
use spool_core::template::{compile, content_hash, TemplateError};
use spool_core::workflow::Program;
use std::path::{Path, PathBuf};

/// Templates compiled into the binary (`templates/*.toml` of this repository).
const SHIPPED: &[(&str, &str)] = &[
    ("noop", include_str!("../../templates/noop.toml")),
    ("demo", include_str!("../../templates/demo.toml")),
    ("implement", include_str!("../../templates/implement.toml")),
    ("review", include_str!("../../templates/review.toml")),
    ("triage", include_str!("../../templates/triage.toml")),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateLoadError {
    #[error("no template named {name:?} (looked in {searched})")]
    NotFound { name: String, searched: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(#[from] TemplateError),
}

/// Where templates come from, in lookup order.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    dirs: Vec<PathBuf>,
}

impl Templates {
    pub fn new(dirs: Vec<PathBuf>) -> Templates {
        Templates { dirs }
    }

    /// `<repo>/.spool/templates`, then the shipped ones.
    pub fn for_repo(repo_root: &Path) -> Templates {
        Templates::new(vec![repo_root.join(".spool").join("templates")])
    }

    /// Loads and compiles `name` (a template name, or a path to a `.toml` file).
    pub fn load(&self, name: &str) -> Result<(TemplateRow, Program), TemplateLoadError> {
        let as_path = Path::new(name);
        let candidates: Vec<PathBuf> = if name.ends_with(".toml") {
            vec![as_path.to_path_buf()]
        } else {
            self.dirs
                .iter()
                .map(|d| d.join(format!("{name}.toml")))
                .collect()
        };
        for path in &candidates {
            match std::fs::read_to_string(path) {
                Ok(source) => return build(&path.display().to_string(), source),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(TemplateLoadError::Read {
                        path: path.clone(),
                        source,
                    })
                }
            }
        }
        if let Some((_, source)) = SHIPPED.iter().find(|(n, _)| *n == name) {
            return build(&format!("<shipped>/{name}.toml"), source.to_string());
        }
        let mut searched: Vec<String> =
            candidates.iter().map(|p| p.display().to_string()).collect();
        searched.push("shipped templates".into());
        Err(TemplateLoadError::NotFound {
            name: name.to_string(),
            searched: searched.join(", "),
        })
    }
}

fn build(file: &str, source: String) -> Result<(TemplateRow, Program), TemplateLoadError> {
    let program = compile(file, &source)?;
    Ok((
        TemplateRow {
            hash: content_hash(source.as_bytes()),
            name: program.name.clone(),
            file: file.to_string(),
            source,
        },
        program,
    ))
}

/// Recompiles a pinned template row (after a restart, or for a run started elsewhere).
pub fn compile_row(row: &TemplateRow) -> Result<Program, TemplateError> {
    compile(&row.file, &row.source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_templates_shadow_shipped_ones_and_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Templates::new(vec![dir.path().to_path_buf()]);
        let (row, program) = t.load("noop").expect("shipped noop");
        assert_eq!(program.steps.len(), 10);
        assert!(row.file.starts_with("<shipped>"));
        std::fs::write(
            dir.path().join("noop.toml"),
            "[[step]]\nid = \"only\"\nkind = \"activity\"\nactivity_type = \"noop\"\n",
        )
        .expect("write");
        let (row, program) = t.load("noop").expect("repo noop");
        assert_eq!(program.steps.len(), 1);
        assert_eq!(row.hash, content_hash(row.source.as_bytes()));
        std::fs::write(
            dir.path().join("bad.toml"),
            "[[step]]\nid = \"x\"\nkind = \"nope\"\n",
        )
        .expect("write");
        let err = t.load("bad").expect_err("invalid").to_string();
        assert!(err.contains("bad.toml:3"), "{err}");
        assert!(matches!(
            t.load("missing"),
            Err(TemplateLoadError::NotFound { .. })
        ));
    }

    #[test]
    fn shipped_templates_compile() {
        for (name, _) in SHIPPED {
            Templates::default()
                .load(name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
