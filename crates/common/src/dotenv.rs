//! Reading and updating `.env` files.
//!
//! The format is the dotenv dialect that stays sourceable from bash. These are the rules, in
//! the order the parser applies them:
//!
//! 1. The file is UTF-8. One leading byte-order mark (U+FEFF) is removed. Each physical line
//!    loses one trailing `\r`, so files with Windows line endings read exactly like Unix ones.
//!    Line numbers in messages count physical lines from 1.
//! 2. Blank lines and lines whose first non-blank character is `#` are comments.
//! 3. An entry is `[export <spaces>]KEY=VALUE`. The word `export` must be followed by at least
//!    one space or tab, so keys such as `exporter` or `export_dir` stay intact.
//! 4. A key matches `[A-Za-z_][A-Za-z0-9_]*`. Any other character is an error that names it,
//!    including invisible ones such as a byte-order mark in the middle of the file.
//! 5. Spaces around `=` are allowed and ignored: `KEY = value` is `KEY=value`.
//! 6. Values:
//!    - unquoted: runs to the end of the line; a `#` that follows a space or tab starts a
//!      comment (`tag#1` keeps its `#`); surrounding spaces are trimmed; `KEY=` is present
//!      and empty.
//!    - single-quoted: taken literally, with no escapes or substitution; may span lines.
//!    - double-quoted: `\"`, `\\`, `\$`, `\n` and `\t` are escapes; may span lines.
//!    - after a closing quote only spaces and an optional `# comment` may follow.
//! 7. Unquoted and double-quoted values substitute `${NAME}` and `$NAME` with the value of an
//!    earlier key in the file, or else with the variable from the environment given to the
//!    parser. A reference to a name defined nowhere becomes empty and produces a warning that
//!    names both keys; write `\$` or use single quotes for a literal dollar sign.
//! 8. A key defined twice keeps its last value and produces a warning.
//!
//! The `dotenvy` crate was measured against these cases and not used for parsing: it rejects
//! `"tok$abc"` in double quotes, substitutes from the process environment without saying so,
//! and reports byte offsets rather than keys and lines.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

/// One `KEY=VALUE` entry and where it was defined.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, without any `export` prefix.
    pub key: String,
    /// The value after quoting, escapes and substitution.
    pub value: String,
    /// Physical line (from 1) on which the entry starts.
    pub line: usize,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if crate::settings::is_secret_key(&self.key) {
            crate::settings::mask(&self.value)
        } else {
            self.value.clone()
        };
        write!(f, "{}={:?} (line {})", self.key, value, self.line)
    }
}

/// A problem found while parsing, tied to a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Physical line (from 1).
    pub line: usize,
    /// The key concerned, when the line got far enough to have one.
    pub key: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The parsed contents of a `.env` file.
#[derive(Debug, Default, Clone)]
pub struct EnvFile {
    /// Entries in file order; a key defined twice appears once, with its last value.
    pub entries: Vec<Entry>,
    /// Lines that could not be parsed. Entries on other lines are still read.
    pub errors: Vec<Diagnostic>,
    /// Things that parsed but probably do not mean what the author intended.
    pub warnings: Vec<Diagnostic>,
}

impl EnvFile {
    /// The entry for `key`, if the file defines it.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// Reads and parses `path`. A missing file is an I/O error; parse problems are in the result.
pub fn read(path: &Path, env: &HashMap<String, String>) -> std::io::Result<EnvFile> {
    let bytes = fs::read(path)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 (byte {}); re-save the file as UTF-8", e.utf8_error().valid_up_to()),
        )
    })?;
    Ok(parse(&text, env))
}

/// Parses dotenv text. `env` supplies variables for substitution that the file does not define.
pub fn parse(text: &str, env: &HashMap<String, String>) -> EnvFile {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut parser = Parser { lines: &lines, env, out: EnvFile::default() };
    let mut index = 0;
    while index < lines.len() {
        index = parser.line(index);
    }
    parser.out
}

struct Parser<'a> {
    lines: &'a [&'a str],
    env: &'a HashMap<String, String>,
    out: EnvFile,
}

impl Parser<'_> {
    /// Parses the entry starting at `index` and returns the index of the next unread line.
    fn line(&mut self, index: usize) -> usize {
        let number = index + 1;
        let trimmed = self.lines[index].trim_start_matches([' ', '\t']);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return index + 1;
        }
        let rest = strip_export(trimmed);
        let Some((raw_key, after)) = rest.split_once('=') else {
            self.error(number, None, no_equals_message(rest));
            return index + 1;
        };
        let key = raw_key.trim_end_matches([' ', '\t']);
        if let Err(message) = check_key(key) {
            self.error(number, None, message);
            return index + 1;
        }
        let value_text = after.trim_start_matches([' ', '\t']);
        match self.value(key, value_text, index) {
            Ok((value, next)) => {
                self.insert(Entry { key: key.to_string(), value, line: number });
                next
            }
            Err((message, next)) => {
                self.error(number, Some(key), message);
                next
            }
        }
    }

    fn value(
        &mut self,
        key: &str,
        text: &str,
        index: usize,
    ) -> Result<(String, usize), (String, usize)> {
        match text.chars().next() {
            Some(quote @ ('\'' | '"')) => self.quoted(key, quote, &text[1..], index),
            _ => {
                let raw = strip_inline_comment(text).trim_end_matches([' ', '\t']);
                let value = self.substitute(key, raw, index + 1, false);
                Ok((value, index + 1))
            }
        }
    }

    /// Reads a quoted value that may continue over several lines.
    fn quoted(
        &mut self,
        key: &str,
        quote: char,
        first: &str,
        index: usize,
    ) -> Result<(String, usize), (String, usize)> {
        let mut raw = String::new();
        let mut current = first;
        let mut at = index;
        loop {
            if let Some(end) = closing_quote(current, quote) {
                raw.push_str(&current[..end]);
                let tail = current[end + 1..].trim_start_matches([' ', '\t']);
                if !tail.is_empty() && !tail.starts_with('#') {
                    let message = format!(
                        "unexpected `{}` after the closing quote of {key}; \
                         put it inside the quotes or start a comment with ` #`",
                        tail.trim_end()
                    );
                    return Err((message, at + 1));
                }
                break;
            }
            raw.push_str(current);
            at += 1;
            let Some(next) = self.lines.get(at) else {
                let message = format!(
                    "the value of {key} opens a {} quote that is never closed; \
                     add the closing {quote}",
                    if quote == '"' { "double" } else { "single" }
                );
                return Err((message, self.lines.len()));
            };
            raw.push('\n');
            current = next;
        }
        let value = if quote == '\'' { raw } else { self.substitute(key, &raw, index + 1, true) };
        Ok((value, at + 1))
    }

    /// Applies `${NAME}`/`$NAME` substitution, and with `escapes` the double-quote escapes.
    fn substitute(&mut self, key: &str, raw: &str, line: usize, escapes: bool) -> String {
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if escapes || chars.peek() == Some(&'$') => match chars.next() {
                    Some('n') if escapes => out.push('\n'),
                    Some('t') if escapes => out.push('\t'),
                    Some(e @ ('"' | '\\' | '$')) => out.push(e),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => out.push('\\'),
                },
                '$' => match reference(&mut chars) {
                    Some(name) => out.push_str(&self.lookup(key, &name, line)),
                    None => out.push('$'),
                },
                _ => out.push(c),
            }
        }
        out
    }

    fn lookup(&mut self, key: &str, name: &str, line: usize) -> String {
        if let Some(entry) = self.out.get(name) {
            return entry.value.clone();
        }
        if let Some(value) = self.env.get(name) {
            return value.clone();
        }
        self.out.warnings.push(Diagnostic {
            line,
            key: Some(key.to_string()),
            message: format!(
                "{key} refers to ${name}, which is defined neither in the file nor in the \
                 environment, so it was replaced by nothing; write \\$ or use single quotes \
                 for a literal dollar sign"
            ),
        });
        String::new()
    }

    fn insert(&mut self, entry: Entry) {
        if let Some(old) = self.out.entries.iter_mut().find(|e| e.key == entry.key) {
            self.out.warnings.push(Diagnostic {
                line: entry.line,
                key: Some(entry.key.clone()),
                message: format!(
                    "{} is defined again (first on line {}); the later value wins",
                    entry.key, old.line
                ),
            });
            *old = entry;
        } else {
            self.out.entries.push(entry);
        }
    }

    fn error(&mut self, line: usize, key: Option<&str>, message: String) {
        self.out.errors.push(Diagnostic { line, key: key.map(str::to_string), message });
    }
}

fn strip_export(line: &str) -> &str {
    match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start_matches([' ', '\t']),
        _ => line,
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("a line starts with `=` and has no key; write KEY=value".to_string());
    }
    for (i, c) in key.chars().enumerate() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if ok {
            continue;
        }
        return Err(if c == '\u{feff}' {
            format!(
                "key `{}` contains the invisible character U+FEFF (a byte-order mark); \
                 re-save the file as UTF-8 without BOM",
                key.replace('\u{feff}', "")
            )
        } else if c.is_whitespace() || c.is_control() || !c.is_ascii() {
            format!(
                "key `{}` contains the character U+{:04X}; keys use only letters, digits and `_`",
                key.escape_debug(),
                c as u32
            )
        } else {
            format!("key `{key}` contains `{c}`; keys use only letters, digits and `_`")
        });
    }
    Ok(())
}

fn no_equals_message(line: &str) -> String {
    let word = line.split_whitespace().next().unwrap_or(line);
    format!(
        "`{}` is not a KEY=value entry; add `=` or start the line with `#`",
        word.escape_debug()
    )
}

/// Cuts an unquoted value at a `#` that follows a space or tab.
fn strip_inline_comment(text: &str) -> &str {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && i > 0 && (bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') {
            return &text[..i];
        }
    }
    text
}

/// Byte index of the closing quote in `text`, honouring backslash escapes in double quotes.
fn closing_quote(text: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if quote == '"' && escaped {
            escaped = false;
        } else if quote == '"' && c == '\\' {
            escaped = true;
        } else if c == quote {
            return Some(i);
        }
    }
    None
}

/// Reads a variable name after `$`: `{NAME}` or `NAME`. `None` leaves the `$` literal.
fn reference(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    let braced = chars.peek() == Some(&'{');
    let mut probe = chars.clone();
    if braced {
        probe.next();
    }
    let mut name = String::new();
    while let Some(&c) = probe.peek() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (!name.is_empty() && c.is_ascii_digit());
        if !ok {
            break;
        }
        name.push(c);
        probe.next();
    }
    if name.is_empty() || (braced && probe.next() != Some('}')) {
        return None;
    }
    *chars = probe;
    Some(name)
}

/// Sets `updates` in the `.env` file at `path`, keeping every other line, comment and the order.
///
/// An existing entry is rewritten in place (keeping its `export` prefix); a new key is appended.
/// The file is replaced atomically: a temporary file in the same folder, mode 0600, then a
/// rename, so an interrupted write never leaves a half-written `.env`.
pub fn update(path: &Path, updates: &[(&str, &str)]) -> std::io::Result<()> {
    let original = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let updated = apply_updates(&original, updates);
    write_atomically(path, &updated)
}

/// Returns `text` with `updates` applied; see [`update`].
pub fn apply_updates(text: &str, updates: &[(&str, &str)]) -> String {
    let bom = text.starts_with('\u{feff}');
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let crlf = body.contains("\r\n");
    let mut lines: Vec<String> =
        body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l).to_string()).collect();
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    let parsed = parse(body, &HashMap::new());
    let export_style =
        parsed.entries.is_empty() || lines.iter().any(|l| l.trim_start().starts_with("export "));

    // Replace from the bottom so earlier line numbers stay valid.
    let mut replacements: Vec<(usize, usize, String)> = Vec::new();
    let mut appended: Vec<String> = Vec::new();
    for (key, value) in updates {
        match parsed.get(key) {
            Some(entry) => {
                let start = entry.line - 1;
                let end = entry_end(&lines, start);
                let export = lines[start].trim_start().starts_with("export");
                replacements.push((start, end, format_entry(key, value, export)));
            }
            None => appended.push(format_entry(key, value, export_style)),
        }
    }
    replacements.sort_by_key(|r| std::cmp::Reverse(r.0));
    for (start, end, line) in replacements {
        lines.splice(start..=end, [line]);
    }
    lines.extend(appended);

    let newline = if crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    if bom {
        out.push('\u{feff}');
    }
    for line in lines {
        out.push_str(&line);
        out.push_str(newline);
    }
    out
}

/// The last physical line of the entry starting at `start` (quoted values may span lines).
fn entry_end(lines: &[String], start: usize) -> usize {
    let rest = strip_export(lines[start].trim_start());
    let Some((_, value)) = rest.split_once('=') else { return start };
    let value = value.trim_start();
    let Some(quote @ ('\'' | '"')) = value.chars().next() else { return start };
    let mut current = &value[1..];
    let mut at = start;
    while closing_quote(current, quote).is_none() {
        at += 1;
        match lines.get(at) {
            Some(next) => current = next,
            None => return lines.len() - 1,
        }
    }
    at
}

/// Formats one entry so that [`parse`] reads back exactly `value`.
pub fn format_entry(key: &str, value: &str, export: bool) -> String {
    let prefix = if export { "export " } else { "" };
    let plain = value.chars().all(|c| c.is_ascii_alphanumeric() || "_-./:@+,=%".contains(c));
    if plain {
        format!("{prefix}{key}={value}")
    } else if !value.contains('\'') {
        format!("{prefix}{key}='{value}'")
    } else {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$")
            .replace('\n', "\\n");
        format!("{prefix}{key}=\"{escaped}\"")
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, with mode 0600.
pub fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("env");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        #[cfg(unix)]
        fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
