//! The Mermaid blocks of the Markdown files, each with its `%% diagram: <id>`.

use std::{collections::BTreeSet, path::Path};

use crate::{files_with_suffix, read};

// ---- The diagrams ----------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Diagram {
    /// The Markdown file, relative to the root.
    pub file: String,
    /// 1-based line of the block's first line in `file`.
    pub line: usize,
    pub id: Option<String>,
    pub source: String,
}

impl Diagram {
    /// `file:line` of the block's line `offset`.
    pub fn at(&self, offset: usize) -> String {
        format!("{}:{}", self.file, self.line + offset)
    }

    pub fn name(&self) -> String {
        format!(
            "{} ({})",
            self.id.as_deref().unwrap_or("diagram without id"),
            self.at(0)
        )
    }

    /// A state diagram's arrows: `(from, to)`, with [`START_OR_END`].
    pub fn transitions(&self) -> BTreeSet<(String, String)> {
        self.source
            .lines()
            .filter_map(|line| {
                let (from, rest) = line.split_once("-->")?;
                let to = rest.split(':').next().unwrap_or(rest);
                Some((from.trim().to_owned(), to.trim().to_owned()))
            })
            .collect()
    }

    /// The states the diagram's notes (`note right of <state>: ...`) attach to.
    pub(crate) fn noted_states(&self) -> BTreeSet<String> {
        self.source
            .lines()
            .filter_map(|line| {
                let rest = line.trim().strip_prefix("note ")?;
                let rest = rest.split_once(" of ")?.1;
                Some(rest.split(':').next()?.trim().to_owned())
            })
            .collect()
    }
}

/// The ```` ```mermaid ```` blocks of a Markdown text.
pub fn mermaid_blocks(file: &str, text: &str) -> Result<Vec<Diagram>, String> {
    let mut diagrams = Vec::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    for (index, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim() == "```mermaid" => current = Some((index + 2, Vec::new())),
            None => {}
            Some((start, body)) if line.trim() == "```" => {
                let source = body.join("\n");
                let id = source.lines().find_map(|l| {
                    l.trim()
                        .strip_prefix("%% diagram:")
                        .map(|id| id.trim().to_owned())
                });
                diagrams.push(Diagram {
                    file: file.to_owned(),
                    line: *start,
                    id,
                    source,
                });
                current = None;
            }
            Some((_, body)) => body.push(line),
        }
    }
    match current {
        Some(_) => Err(format!("{file}: a mermaid block is never closed")),
        None => Ok(diagrams),
    }
}

/// The diagrams of `README.md` and `deploy/docs/*.md` (the Mermaid tools'
/// own folder left out).
pub fn all_diagrams(root: &Path) -> Result<Vec<Diagram>, String> {
    let mut files = vec![root.join("README.md")];
    files.extend(files_with_suffix(&root.join("deploy/docs"), ".md")?);
    let mut diagrams = Vec::new();
    for path in files
        .iter()
        .filter(|path| !path.components().any(|c| c.as_os_str() == ".tools"))
    {
        let relative = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        diagrams.extend(mermaid_blocks(&relative, &read(path)?)?);
    }
    Ok(diagrams)
}

/// The first diagram with this id.
pub fn find<'a>(diagrams: &'a [Diagram], id: &str) -> Option<&'a Diagram> {
    diagrams.iter().find(|d| d.id.as_deref() == Some(id))
}
