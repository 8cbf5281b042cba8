//! What a command prints: its result as a table (on a terminal), JSON (when
//! piped), YAML, or PEM where the result has a PEM form. Tables show the
//! columns each command names; a single record shows as field/value rows.

use std::io::{IsTerminal, Write};

use serde_json::Value;

use crate::error::{CliResult, invalid};

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Table on a terminal, JSON otherwise.
    Auto,
    /// Aligned columns (one record: field/value rows).
    Table,
    /// Pretty JSON.
    Json,
    /// YAML.
    Yaml,
    /// The PEM text of certificates, CRLs or CSRs (commands that have one).
    Pem,
}

impl Format {
    /// Parses a setting's text (`CLM_OUTPUT`, `output` in clm.toml).
    pub fn parse(text: &str) -> CliResult<Format> {
        <Format as clap::ValueEnum>::from_str(text, true).map_err(|_| {
            invalid(
                "output",
                format!("{text:?} is not one of auto, table, json, yaml, pem"),
            )
        })
    }

    /// `Auto` made concrete for stdout.
    pub fn concrete(self) -> Format {
        match self {
            Format::Auto if std::io::stdout().is_terminal() => Format::Table,
            Format::Auto => Format::Json,
            other => other,
        }
    }
}

/// Whether to colour: stdout is a terminal, `NO_COLOR` is unset or empty
/// and `TERM` is not `dumb`.
pub fn color_enabled() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let dumb = std::env::var("TERM").is_ok_and(|term| term == "dumb");
    std::io::stdout().is_terminal() && !no_color && !dumb
}

/// A command's result.
#[derive(Debug, Default)]
pub struct Rendered {
    /// The record(s), as the library returned or the CLI summarised them.
    pub value: Value,
    /// Table columns as JSON paths into each row (`certificate.id`); empty:
    /// a single record shown as field/value rows.
    pub columns: Vec<&'static str>,
    /// Where the rows are when `value` is not itself the list (`items` of a page).
    pub rows_at: Option<&'static str>,
    /// The PEM form, for `--output pem`.
    pub pem: Option<String>,
    /// A line for people under the table (not in JSON or YAML).
    pub note: Option<String>,
    /// The command wrote its output itself (raw bytes): print nothing.
    pub silent: bool,
    /// Rows for the table view only (JSON and YAML show `value`).
    pub table_rows: Option<Value>,
}

impl Rendered {
    /// One record, shown as field/value rows.
    pub fn record(value: Value) -> Self {
        Rendered {
            value,
            ..Rendered::default()
        }
    }

    /// Nothing to print: the command wrote its bytes itself.
    pub fn silent() -> Self {
        Rendered {
            silent: true,
            ..Rendered::default()
        }
    }

    /// Rows under `columns`.
    pub fn table(value: Value, columns: &[&'static str]) -> Self {
        Rendered {
            value,
            columns: columns.to_vec(),
            ..Rendered::default()
        }
    }

    /// A page of rows (`items`, `next_cursor`) under `columns`.
    pub fn page(value: Value, columns: &[&'static str]) -> Self {
        let note = value
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(|cursor| format!("more: --cursor {cursor}"));
        Rendered {
            value,
            columns: columns.to_vec(),
            rows_at: Some("items"),
            note,
            ..Rendered::default()
        }
    }

    /// Takes the table's rows from `path` in the value.
    pub fn rows(mut self, path: &'static str) -> Self {
        self.rows_at = Some(path);
        self
    }

    /// Adds the PEM form.
    pub fn with_pem(mut self, pem: impl Into<String>) -> Self {
        self.pem = Some(pem.into());
        self
    }

    /// Adds a line under the table.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Writes it to stdout in `format`.
    pub fn print(&self, format: Format, color: bool) -> CliResult<()> {
        if self.silent {
            return Ok(());
        }
        let text = self.render(format, color)?;
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`clm ... | head`) is not an error of the command.
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
        Ok(())
    }

    /// Writes the value at `path` as plain text (`--get`).
    pub fn print_field(&self, path: &str) -> CliResult<()> {
        let value = at(&self.value, path);
        if value.is_null() {
            return Err(invalid("get", format!("the result has no {path}")));
        }
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Object(_) | Value::Array(_) => serde_json::to_string(value).unwrap_or_default(),
            other => cell(other),
        };
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", text.trim_end_matches('\n'));
        Ok(())
    }

    /// The text for `format`.
    pub fn render(&self, format: Format, color: bool) -> CliResult<String> {
        Ok(match format.concrete() {
            Format::Json | Format::Auto => {
                let mut text = serde_json::to_string_pretty(&self.value).unwrap_or_default();
                text.push('\n');
                text
            }
            Format::Yaml => serde_norway::to_string(&self.value)
                .map_err(|err| invalid("output", format!("cannot write YAML: {err}")))?,
            Format::Pem => match &self.pem {
                Some(pem) => pem.clone(),
                None => {
                    return Err(invalid(
                        "output",
                        "this command has no PEM form: use table, json or yaml",
                    ));
                }
            },
            Format::Table => {
                let mut text = if self.columns.is_empty() {
                    record_table(&self.value, color)
                } else {
                    let rows = match (&self.table_rows, self.rows_at) {
                        (Some(rows), _) => rows.clone(),
                        (None, Some(path)) => at(&self.value, path).clone(),
                        (None, None) => self.value.clone(),
                    };
                    rows_table(&rows, &self.columns, color)
                };
                if let Some(note) = &self.note {
                    text.push_str(note);
                    text.push('\n');
                }
                text
            }
        })
    }
}

/// A cell's text: scalars as they are, names `{type, value}` as
/// `TYPE:value`, lists joined, PEM left to `--output pem`.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(text) if text.starts_with("-----BEGIN") => "(PEM: --output pem)".into(),
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(map) => match (map.get("type"), map.get("value")) {
            (Some(Value::String(kind)), Some(Value::String(value))) if map.len() == 2 => {
                format!("{kind}:{value}")
            }
            _ => serde_json::to_string(value).unwrap_or_default(),
        },
    }
}

/// The value at a dotted path.
pub fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .try_fold(value, |value, part| match value {
            Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
            other => other.get(part),
        })
        .unwrap_or(&Value::Null)
}

const MAX_CELL: usize = 72;

fn clip(text: String) -> String {
    if text.chars().count() <= MAX_CELL {
        return text;
    }
    let mut clipped: String = text.chars().take(MAX_CELL - 1).collect();
    clipped.push('…');
    clipped
}

fn header(text: &str, color: bool) -> String {
    if color {
        format!("\x1b[1m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn aligned(rows: &[Vec<String>], color: bool) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for (index, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        let line = line.trim_end().to_string();
        if index == 0 {
            text.push_str(&header(&line, color));
        } else {
            text.push_str(&line);
        }
        text.push('\n');
    }
    text
}

fn rows_table(rows: &Value, columns: &[&str], color: bool) -> String {
    let items: Vec<&Value> = match rows {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    };
    if items.is_empty() {
        return "(none)\n".into();
    }
    let mut table = vec![
        columns
            .iter()
            .map(|path| path.rsplit('.').next().unwrap_or(path).to_ascii_uppercase())
            .collect::<Vec<_>>(),
    ];
    for item in items {
        table.push(
            columns
                .iter()
                .map(|path| clip(cell(at(item, path))))
                .collect(),
        );
    }
    aligned(&table, color)
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map)
            if !(map.len() == 2 && map.contains_key("type") && map.contains_key("value")) =>
        {
            for (key, inner) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, inner, out);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) && !items.iter().all(is_name) => {
            if items.is_empty() {
                out.push(vec![prefix.to_string(), "-".into()]);
            }
            for (index, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}.{index}"), item, out);
            }
        }
        other => out.push(vec![prefix.to_string(), clip(cell(other))]),
    }
}

fn is_name(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|map| map.len() == 2 && map.contains_key("type") && map.contains_key("value"))
}

fn record_table(value: &Value, color: bool) -> String {
    match value {
        Value::Object(_) | Value::Array(_) => {
            let mut rows = vec![vec!["FIELD".to_string(), "VALUE".to_string()]];
            flatten("", value, &mut rows);
            aligned(&rows, color)
        }
        other => format!("{}\n", cell(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_show_named_columns_and_records_show_fields() {
        let rows = json!([
            {"id": "a", "certificate": {"status": "active"}, "sans": [{"type": "DNS", "value": "x.example"}]},
            {"id": "bb", "certificate": {"status": "revoked"}, "sans": []},
        ]);
        let text = rows_table(&rows, &["id", "certificate.status", "sans"], false);
        assert_eq!(
            text,
            "ID  STATUS   SANS\na   active   DNS:x.example\nbb  revoked\n"
        );
        let text = record_table(
            &json!({"a": 1, "b": {"c": null}, "pem": "-----BEGIN X"}),
            false,
        );
        assert!(text.contains("b.c    -"), "{text}");
        assert!(text.contains("(PEM: --output pem)"), "{text}");
        assert_eq!(rows_table(&json!([]), &["id"], false), "(none)\n");
    }

    #[test]
    fn pem_output_needs_a_pem_form() {
        let plain = Rendered::record(json!({"a": 1}));
        assert!(plain.render(Format::Pem, false).is_err());
        let with = Rendered::record(json!({})).with_pem("-----BEGIN X-----\n");
        assert_eq!(
            with.render(Format::Pem, false).unwrap(),
            "-----BEGIN X-----\n"
        );
        let yaml = plain.render(Format::Yaml, false).unwrap();
        assert_eq!(yaml, "a: 1\n");
    }
}
