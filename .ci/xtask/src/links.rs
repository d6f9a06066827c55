//! The Markdown of the repository stands alone: every relative link and
//! image of `README.md` and of every other `*.md` (outside `target/`,
//! `.git/` and `node_modules/`) resolves to a file or directory inside the
//! repository, and an anchor into a Markdown file names one of its headings
//! (GitHub's slugs) or an explicit `id` / `name`. No link, and no text,
//! points outside: a relative link may not climb above the root, and no
//! line may name a machine path (`/work/`) or, even as plain text, a
//! relative path that climbs above the root (`../elsewhere/notes.md` in the
//! README): what a reader needs is written in the repository.
//!
//! Links are read as CommonMark writes them: inline `[text](dest "title")`
//! and `![alt](dest)`, reference definitions `[label]: dest`, and the
//! `href` / `src` of inline HTML. Fenced code blocks and code spans hold no
//! links (but their text is still checked for outside paths). External
//! links (`https:`, `mailto:` ...) are not followed.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

use crate::read;

/// Directories never searched for Markdown.
const SKIPPED_DIRS: [&str; 3] = ["target", ".git", "node_modules"];

/// Text no Markdown file of the repository may contain, and why.
const FORBIDDEN_TEXT: [(&str, &str); 1] =
    [("/work/", "a path on one machine, outside the repository")];

/// The relative paths in `line` (written in a file of directory `base`) that
/// climb above the repository's root: words starting with `../`, as written
/// in prose, code spans or code blocks.
fn outside_paths<'a>(line: &'a str, base: &str) -> Vec<&'a str> {
    line.split(|c: char| c.is_whitespace() || "()[]<>\"'`,;".contains(c))
        .filter(|word| word.starts_with("../") && resolve(base, word).is_none())
        .collect()
}

/// One Markdown file: its path relative to the root (`/`-separated) and text.
#[derive(Debug, Clone)]
pub struct Doc {
    pub path: String,
    pub text: String,
}

/// One link as written, and the line it is on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub line: usize,
    pub dest: String,
}

/// Checks every Markdown file of the repository at `root`.
pub fn check_repository(root: &Path) -> Result<Vec<String>, String> {
    let docs = markdown_files(root)?
        .into_iter()
        .map(|path| {
            let text = read(&root.join(&path))?;
            Ok(Doc { path, text })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if !docs.iter().any(|doc| doc.path == "README.md") {
        return Err("README.md not found".to_owned());
    }
    Ok(check(&docs, &|relative| root.join(relative).exists()))
}

/// Every `*.md` under `root`, as `/`-separated relative paths, sorted.
pub fn markdown_files(root: &Path) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(relative) = pending.pop() {
        let dir = root.join(&relative);
        let entries = fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            let kind = entry
                .file_type()
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
            if kind.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_str()) {
                    pending.push(path);
                }
            } else if name.ends_with(".md") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The problems of `docs`; `exists` says whether a path relative to the root
/// (`/`-separated, `""` for the root itself) is a file or directory.
pub fn check(docs: &[Doc], exists: &dyn Fn(&str) -> bool) -> Vec<String> {
    let anchors: BTreeMap<&str, BTreeSet<String>> = docs
        .iter()
        .map(|doc| (doc.path.as_str(), anchors(&doc.text)))
        .collect();
    let mut errors = Vec::new();
    for doc in docs {
        let base = doc.path.rsplit_once('/').map_or("", |(dir, _)| dir);
        for (number, line) in doc.text.lines().enumerate() {
            for path in outside_paths(line, base) {
                errors.push(format!(
                    "{}:{}: mentions `{path}`: a path outside the repository",
                    doc.path,
                    number + 1
                ));
            }
            for (text, why) in FORBIDDEN_TEXT {
                if line.contains(text) {
                    errors.push(format!(
                        "{}:{}: mentions `{text}`: {why}",
                        doc.path,
                        number + 1
                    ));
                }
            }
        }
        for link in links(&doc.text) {
            if let Err(problem) = check_link(&doc.path, &link.dest, &anchors, exists) {
                errors.push(format!(
                    "{}:{}: link `{}` {problem}",
                    doc.path, link.line, link.dest
                ));
            }
        }
    }
    errors
}

/// Whether `dest`, written in the file at `from`, resolves inside the
/// repository; the reason when it does not.
fn check_link(
    from: &str,
    dest: &str,
    anchors: &BTreeMap<&str, BTreeSet<String>>,
    exists: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    if dest.is_empty() {
        return Err("is empty".to_owned());
    }
    if let Some(scheme) = scheme(dest) {
        return if scheme.eq_ignore_ascii_case("file") {
            Err("points outside the repository (a file: URL)".to_owned())
        } else {
            Ok(())
        };
    }
    if dest.starts_with('/') {
        return Err(
            "is an absolute path: write it relative to the file, inside the repository".to_owned(),
        );
    }
    let (path, anchor) = match dest.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (dest, None),
    };
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let target = if path.is_empty() {
        from.to_owned()
    } else {
        let base = from.rsplit_once('/').map_or("", |(dir, _)| dir);
        resolve(base, &percent_decode(path))
            .ok_or_else(|| "points outside the repository (`..` above its root)".to_owned())?
    };
    if !exists(&target) {
        return Err(format!("points to `{target}`, which does not exist"));
    }
    match (anchor, anchors.get(target.as_str())) {
        (Some(anchor), Some(known)) if !anchor.is_empty() => {
            let anchor = percent_decode(anchor).to_lowercase();
            if known.contains(&anchor) {
                Ok(())
            } else {
                Err(format!(
                    "names `#{anchor}`, which no heading of `{target}` has"
                ))
            }
        }
        _ => Ok(()),
    }
}

/// `https` of `https://...`: a URL scheme (two characters at least, so a
/// Windows drive letter would not count).
fn scheme(dest: &str) -> Option<&str> {
    let (scheme, _) = dest.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (scheme.len() >= 2
        && first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// `base/path` with `.` and `..` applied; `None` when it climbs above the
/// root. `""` is the root.
fn resolve(base: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// `%20` and friends decoded; anything malformed is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// The lines of `text` outside fenced code blocks, with their numbers
/// (1-based).
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut prose = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        match (fence, marker) {
            (None, Some(c)) if run >= 3 => fence = Some((c, run)),
            (None, _) => prose.push((number + 1, line)),
            (Some((c, open)), Some(m))
                if m == c && run >= open && trimmed[run * c.len_utf8()..].trim().is_empty() =>
            {
                fence = None;
            }
            (Some(_), _) => {}
        }
    }
    prose
}

/// `line` with the contents of its code spans blanked out.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|c| **c == '`').count();
        // The closing run: exactly as many backticks.
        let mut j = i + run;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let other = chars[j..].iter().take_while(|c| **c == '`').count();
                if other == run {
                    close = Some(j);
                    break;
                }
                j += other;
            } else {
                j += 1;
            }
        }
        match close {
            Some(close) => {
                out.extend(std::iter::repeat_n(' ', close + run - i));
                i = close + run;
            }
            None => {
                out.extend(&chars[i..i + run]);
                i += run;
            }
        }
    }
    out
}

/// Every link and image of `text`, outside code.
pub fn links(text: &str) -> Vec<Link> {
    let mut found = Vec::new();
    for (line_number, line) in prose_lines(text) {
        let line = without_code_spans(line);
        let mut push = |dest: String| {
            found.push(Link {
                line: line_number,
                dest,
            })
        };
        // Reference definitions: `[label]: dest` (not footnotes `[^1]:`).
        let trimmed = line.trim_start();
        if line.len() - trimmed.len() <= 3
            && trimmed.starts_with('[')
            && !trimmed.starts_with("[^")
            && let Some(end) = trimmed.find("]:")
            && !trimmed[1..end].contains(']')
        {
            if let Some(dest) = destination(&trimmed[end + 2..]) {
                push(dest);
            }
            continue;
        }
        // Inline links and images: `](dest`.
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            if rest[..at].contains('[')
                && let Some(dest) = destination(&rest[at + 2..])
            {
                push(dest);
            }
            rest = &rest[at + 2..];
        }
        // Inline HTML.
        for attribute in ["href=\"", "src=\""] {
            let mut rest = line.as_str();
            while let Some(at) = rest.find(attribute) {
                let value = &rest[at + attribute.len()..];
                if let Some(end) = value.find('"') {
                    push(value[..end].to_owned());
                }
                rest = &rest[at + attribute.len()..];
            }
        }
    }
    found
}

/// The destination at the start of `text` (after `](` or `]:`): `<...>`, or
/// up to whitespace or the `)` that closes the link.
fn destination(text: &str) -> Option<String> {
    let text = text.trim_start();
    if let Some(inner) = text.strip_prefix('<') {
        return inner.find('>').map(|end| inner[..end].to_owned());
    }
    let mut depth = 0usize;
    let mut end = text.len();
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => {
                end = i;
                break;
            }
            ')' => depth -= 1,
            c if c.is_whitespace() => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    Some(text[..end].to_owned())
}

/// The anchors a Markdown file offers: its headings' GitHub slugs (a
/// repeated slug gets `-1`, `-2`...) and every `id="..."` / `name="..."`.
pub fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        for attribute in ["id=\"", "name=\""] {
            let mut rest = line;
            while let Some(at) = rest.find(attribute) {
                let value = &rest[at + attribute.len()..];
                if let Some(end) = value.find('"') {
                    anchors.insert(value[..end].to_lowercase());
                }
                rest = &rest[at + attribute.len()..];
            }
        }
        let Some(heading) = heading(line) else {
            continue;
        };
        let slug = slug(heading);
        let count = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *count == 0 {
            slug
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// The text of an ATX heading (`## Text ##`).
fn heading(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &trimmed[level..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim();
    // A closing sequence of `#` preceded by a space.
    let without_closing = rest.trim_end_matches('#');
    Some(
        if without_closing.len() < rest.len()
            && (without_closing.is_empty() || without_closing.ends_with([' ', '\t']))
        {
            without_closing.trim_end()
        } else {
            rest
        },
    )
}

/// GitHub's anchor of a heading: its text (links as their text, no code or
/// emphasis marks) in lower case, without punctuation but `-` and `_`,
/// spaces made `-`.
pub fn slug(heading: &str) -> String {
    let mut text = String::with_capacity(heading.len());
    let mut rest = heading;
    // `[text](dest)` reads as `text`.
    while let Some(open) = rest.find('[') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find("](") {
            Some(close) => {
                text.push_str(&after[..close]);
                let dest = &after[close + 2..];
                rest = dest.find(')').map_or("", |end| &dest[end + 1..]);
            }
            None => {
                text.push('[');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    text.chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{assert_reported, workspace_root};

    fn doc(path: &str, text: &str) -> Doc {
        Doc {
            path: path.to_owned(),
            text: text.to_owned(),
        }
    }

    /// A small repository: these paths exist.
    fn small_repository(path: &str) -> bool {
        [
            "",
            "README.md",
            "deploy",
            "deploy/docs",
            "deploy/docs/api.md",
            "deploy/docs/architecture.md",
            "deploy/run-local.sh",
            "gateway/src/lib.rs",
        ]
        .contains(&path)
    }

    fn errors_of(docs: &[Doc]) -> String {
        check(docs, &small_repository).join("\n")
    }

    #[test]
    fn links_are_read_outside_code() {
        let text = "# Title\n\
             See [the API](deploy/docs/api.md \"title\") and ![chart](<deploy/a b.svg>).\n\
             `[not a link](nowhere.md)` and [a (paren)](x(1).md).\n\
             ```sh\n[in code](nowhere.md)\n```\n\
             [ref]: deploy/run-local.sh\n\
             [^note]: a footnote\n\
             <img src=\"deploy/logo.png\"> <a href=\"https://example.com\">x</a>\n";
        let dests: Vec<(usize, String)> = links(text)
            .into_iter()
            .map(|link| (link.line, link.dest))
            .collect();
        assert_eq!(
            dests,
            [
                (2, "deploy/docs/api.md"),
                (2, "deploy/a b.svg"),
                (3, "x(1).md"),
                (7, "deploy/run-local.sh"),
                (9, "https://example.com"),
                (9, "deploy/logo.png"),
            ]
            .map(|(line, dest)| (line, dest.to_owned()))
        );
    }

    #[test]
    fn slugs_are_githubs() {
        assert_eq!(slug("A tour of the REST API"), "a-tour-of-the-rest-api");
        assert_eq!(
            slug("Secure by default (`DEV_MODE`)"),
            "secure-by-default-dev_mode"
        );
        assert_eq!(
            slug("Inside a service: grpc → app → domain + store"),
            "inside-a-service-grpc--app--domain--store"
        );
        assert_eq!(slug("[Links](x.md) and *more*"), "links-and-more");
        let anchors =
            anchors("# A\n## A\n```\n# not a heading\n```\n### B ###\n<a id=\"Here\"></a>\n");
        assert_eq!(anchors, ["a", "a-1", "b", "here"].map(str::to_owned).into());
    }

    #[test]
    fn good_links_pass() {
        let docs = [
            doc(
                "README.md",
                "# Top\n[api](deploy/docs/api.md#products), [arch](./deploy/docs/architecture.md), \
                 [dir](deploy/), [code](gateway/src/lib.rs#L10), [here](#top), \
                 [web](https://example.com/x.md), [mail](mailto:a@b.c)\n",
            ),
            doc(
                "deploy/docs/api.md",
                "## Products\n[back](../../README.md#top), [arch](architecture.md)\n",
            ),
            doc("deploy/docs/architecture.md", "# Architecture\n"),
        ];
        assert_eq!(errors_of(&docs), "");
    }

    /// Every kind of broken link and outside reference is reported, with its
    /// file and line.
    #[test]
    fn broken_links_and_outside_paths_are_reported() {
        let docs = [
            doc(
                "README.md",
                "# Top\n\
                 [gone](deploy/docs/missing.md)\n\
                 [up](../../elsewhere.md)\n\
                 [absolute](/work/main/README.md)\n\
                 [anchor](deploy/docs/api.md#no-such-heading)\n\
                 [local](#nowhere)\n\
                 [file](file:///etc/passwd)\n\
                 Notes kept in ../notes/contract.md, next to the checkout.\n\
                 ![image](deploy/chart.svg)\n",
            ),
            doc("deploy/docs/api.md", "## Products\n[empty]()\n"),
        ];
        let errors = errors_of(&docs);
        assert_reported(
            &errors,
            &[
                "README.md:2: link `deploy/docs/missing.md` points to `deploy/docs/missing.md`, which does not exist",
                "README.md:3: link `../../elsewhere.md` points outside the repository",
                "README.md:3: mentions `../../elsewhere.md`",
                "README.md:4: link `/work/main/README.md` is an absolute path",
                "README.md:4: mentions `/work/`",
                "README.md:5: link `deploy/docs/api.md#no-such-heading` names `#no-such-heading`, which no heading of `deploy/docs/api.md` has",
                "README.md:6: link `#nowhere` names `#nowhere`",
                "README.md:7: link `file:///etc/passwd` points outside the repository",
                "README.md:8: mentions `../notes/contract.md`",
                "README.md:9: link `deploy/chart.svg` points to `deploy/chart.svg`, which does not exist",
                "deploy/docs/api.md:2: link `` is empty",
            ],
        );
        assert_eq!(errors.lines().count(), 11, "{errors}");
    }

    #[test]
    fn the_repository_has_markdown_to_check() {
        let files = markdown_files(&workspace_root()).unwrap();
        assert!(files.contains(&"README.md".to_owned()), "{files:?}");
        assert!(
            files.contains(&"deploy/docs/architecture.md".to_owned()),
            "{files:?}"
        );
        assert!(files.iter().all(|f| !f.starts_with("target/")));
    }
}
