//! Reading an import file: CSV with a header row, or JSON Lines, from a file or from standard
//! input, into rows of [`Cell`](crate::transfer::columns::Cell)s in the table's column order.
//!
//! What each line gives is kept per line: a JSON object that leaves a key out leaves that
//! column alone, whatever the other lines carry. Ids and every other value must be JSON
//! strings (a number is refused: `1.50` would silently become `1.5`); a key given twice is
//! refused like a CSV header naming a column twice. A UTF-8 byte-order mark (Excel's "CSV
//! UTF-8") is skipped; a UTF-16 file and a `;`-separated file are named as such.
//!
//! Standard input is copied to an anonymous temporary file first, so every input can be read
//! twice: the second pass locates a conflict the database found.

use std::{
    fmt,
    fs::File,
    io::{BufRead, BufReader, Read, Seek, SeekFrom},
    path::PathBuf,
};

use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{
    Format, Table,
    columns::Cell,
    csv::{CsvError, CsvReader},
    problems::{ImportError, RowError},
};

/// Where an import reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    File(PathBuf),
    /// `-`.
    Stdin,
}

impl Input {
    pub(crate) fn parse(text: &str) -> Input {
        if text == "-" { Input::Stdin } else { Input::File(PathBuf::from(text)) }
    }

    /// The format its name says (`.csv`, `.jsonl`, `.ndjson`).
    pub(crate) fn format_from_name(&self) -> Option<Format> {
        match self {
            Input::File(path) => Format::from_path(path),
            Input::Stdin => None,
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::File(path) => write!(f, "{}", path.display()),
            Input::Stdin => f.write_str("standard input"),
        }
    }
}

/// The input, opened and seekable (standard input spooled to a temporary file).
#[derive(Debug)]
pub(crate) struct Opened {
    file: File,
    /// What it is, for messages: a path, or "standard input".
    name: PathBuf,
    /// The format: given, from the name, or (standard input) from the first character.
    pub(crate) format: Format,
}

impl Opened {
    pub(crate) fn open(input: &Input, format: Option<Format>) -> Result<Opened, ImportError> {
        let open_error = |source| ImportError::Open { path: PathBuf::from(input.to_string()), source };
        let mut file = match input {
            Input::File(path) => File::open(path).map_err(open_error)?,
            Input::Stdin => {
                let mut spool = tempfile::tempfile().map_err(open_error)?;
                std::io::copy(&mut std::io::stdin().lock(), &mut spool).map_err(open_error)?;
                spool
            }
        };
        let format = match format.or_else(|| input.format_from_name()) {
            Some(format) => format,
            None if *input == Input::Stdin => sniff(&mut file).map_err(open_error)?,
            None => {
                return Err(ImportError::one(
                    0,
                    "",
                    "",
                    format!("cannot tell the format of {input}: name it .csv or .jsonl, or pass --format"),
                ));
            }
        };
        Ok(Opened { file, format, name: PathBuf::from(input.to_string()) })
    }

    /// A reader from the start of the input.
    pub(crate) fn rows(&self, table: Table, require_all: bool) -> Result<Rows, ImportError> {
        let open_error = |source| ImportError::Open { path: self.name.clone(), source };
        let mut file = self.file.try_clone().map_err(open_error)?;
        file.seek(SeekFrom::Start(0)).map_err(open_error)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        skip_byte_order_mark(&mut reader).map_err(open_error)??;
        match self.format {
            Format::Jsonl => Ok(Rows { table, source: Source::Jsonl { lines: reader, line: 0 } }),
            Format::Csv => {
                let mut csv = CsvReader::new(reader);
                let header = csv
                    .next_record()
                    .map_err(|e| ImportError::Invalid { errors: vec![e.into()], total: 1 })?
                    .ok_or_else(|| ImportError::one(1, "", "", "the file is empty; it needs a header row"))?;
                let names: Vec<String> = header.fields.iter().map(|f| f.value.trim().to_owned()).collect();
                let positions = header_positions(table, &names, header.line, require_all)?;
                Ok(Rows { table, source: Source::Csv { csv, positions, width: names.len() } })
            }
        }
    }
}

/// The first non-blank character of standard input: `{` means JSON Lines, anything else CSV.
fn sniff(file: &mut File) -> std::io::Result<Format> {
    file.seek(SeekFrom::Start(0))?;
    let mut start = [0u8; 4096];
    let read = file.read(&mut start)?;
    file.seek(SeekFrom::Start(0))?;
    let text = String::from_utf8_lossy(&start[..read]);
    let first = text.trim_start_matches('\u{feff}').trim_start().chars().next();
    Ok(if first == Some('{') { Format::Jsonl } else { Format::Csv })
}

/// Skips a UTF-8 byte-order mark; a UTF-16 one is a problem with the file (the inner result).
fn skip_byte_order_mark(reader: &mut BufReader<File>) -> std::io::Result<Result<(), ImportError>> {
    let start = reader.fill_buf()?;
    if start.starts_with(&[0xef, 0xbb, 0xbf]) {
        reader.consume(3);
    } else if start.starts_with(&[0xff, 0xfe]) || start.starts_with(&[0xfe, 0xff]) {
        return Ok(Err(ImportError::one(
            1,
            "",
            "",
            "the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8 (Excel: \"CSV UTF-8\")",
        )));
    }
    Ok(Ok(()))
}

/// For each header field, the table column it names (in table order: `positions[i]` is the
/// field holding column `i`, if any).
fn header_positions(
    table: Table,
    names: &[String],
    line: usize,
    require_all: bool,
) -> Result<Vec<Option<usize>>, ImportError> {
    let known: Vec<&str> = table.columns().iter().map(|c| c.name).collect();
    let mut positions = vec![None; known.len()];
    for (field, name) in names.iter().enumerate() {
        let Some(index) = known.iter().position(|k| k == name) else {
            let separated =
                |sep: char| name.contains(sep) && name.split(sep).any(|part| known.contains(&part.trim()));
            let message = if separated(';') {
                "the header is separated by semicolons (as Excel writes CSV in some locales); cabinet-db reads comma-separated files: save as \"CSV UTF-8 (Comma delimited)\" or replace the semicolons".to_owned()
            } else if separated('\t') {
                "the header is separated by tabs; cabinet-db reads comma-separated files".to_owned()
            } else {
                format!(
                    "the first row must be a header naming {} columns ({}); {name:?} is not one of them",
                    table.name(),
                    known.join(", ")
                )
            };
            return Err(ImportError::one(line, "", name, message));
        };
        if positions[index].is_some() {
            return Err(ImportError::one(line, name, "", "the header names this column twice"));
        }
        positions[index] = Some(field);
    }
    let missing = table
        .columns()
        .iter()
        .zip(&positions)
        .find(|(c, p)| p.is_none() && (c.name == table.key() || (require_all && c.required)));
    if let Some((column, _)) = missing {
        let why = if column.name == table.key() {
            "the header lacks the key column: every row names its row".to_owned()
        } else {
            format!(
                "the header lacks {}, which every new row needs (--mode insert adds rows only)",
                column.name
            )
        };
        return Err(ImportError::one(line, column.name, "", why));
    }
    Ok(positions)
}

/// A row as read: its line and one cell per table column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRow {
    pub(crate) line: usize,
    pub(crate) cells: Vec<Cell>,
}

enum Source {
    Csv { csv: CsvReader<BufReader<File>>, positions: Vec<Option<usize>>, width: usize },
    Jsonl { lines: BufReader<File>, line: usize },
}

/// The rows of an input, in order.
pub(crate) struct Rows {
    table: Table,
    source: Source,
}

impl Rows {
    /// The next row, a problem with one line, or `None` at the end.
    pub(crate) fn next_row(&mut self) -> Result<Option<RawRow>, RowError> {
        match &mut self.source {
            Source::Csv { csv, positions, width } => {
                let Some(record) = csv.next_record()? else { return Ok(None) };
                if record.fields.len() != *width {
                    return Err(RowError::new(
                        record.line,
                        "",
                        "",
                        format!("has {} fields, the header has {width}", record.fields.len()),
                    ));
                }
                let cells = positions
                    .iter()
                    .map(|p| match p.map(|i| record.fields[i].as_nullable()) {
                        None => Cell::Absent,
                        Some(None) => Cell::Null,
                        Some(Some(v)) => Cell::Value(v.to_owned()),
                    })
                    .collect();
                Ok(Some(RawRow { line: record.line, cells }))
            }
            Source::Jsonl { lines, line } => loop {
                let mut text = String::new();
                *line += 1;
                let at = *line;
                let read = lines.read_line(&mut text).map_err(|e| {
                    RowError::new(at, "", "", format!("cannot read: {e} (is the file UTF-8?)"))
                })?;
                if read == 0 {
                    return Ok(None);
                }
                if text.trim().is_empty() {
                    continue;
                }
                return json_row(self.table, at, text.trim_end_matches(['\n', '\r'])).map(Some);
            },
        }
    }

    /// Whether a problem at this point leaves the reader out of step (a CSV quoting error):
    /// then checking stops there.
    pub(crate) fn is_desynchronised(&self, error: &RowError) -> bool {
        matches!(self.source, Source::Csv { .. })
            && error.column.is_empty()
            && error.message.contains("quote")
    }
}

impl From<CsvError> for RowError {
    fn from(e: CsvError) -> Self {
        RowError::new(e.line, "", "", e.message)
    }
}

/// One JSON object, its keys in order, each once; values kept as written.
struct Object(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Object;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                let mut entries: Vec<(String, Box<RawValue>)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom(format!(
                            "the key {key:?} appears twice; each column may be given once per line"
                        )));
                    }
                    entries.push((key, value));
                }
                Ok(Object(entries))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

fn json_row(table: Table, line: usize, text: &str) -> Result<RawRow, RowError> {
    let object: Object = serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        // serde_json appends " at line 1 column N": the line is ours, the column is useful.
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        RowError::new(line, "", "", format!("not a JSON object: {message} (column {})", e.column()))
    })?;
    let mut cells = vec![Cell::Absent; table.columns().len()];
    for (key, raw) in object.0 {
        let Some(index) = table.columns().iter().position(|c| c.name == key) else {
            return Err(RowError::new(line, &key, "", "is not a column of this table"));
        };
        let written = raw.get();
        cells[index] = match written.as_bytes().first() {
            Some(b'"') => Cell::Value(serde_json::from_str(written).map_err(|e| {
                RowError::new(line, &key, written, format!("is not a valid JSON string: {e}"))
            })?),
            Some(b'n') => Cell::Null,
            Some(b'-' | b'0'..=b'9') => {
                return Err(RowError::new(
                    line,
                    &key,
                    written,
                    format!(
                        "is a JSON number; values are text, so write it as a string: \"{written}\" (a number would lose its exact spelling, e.g. 1.50 or leading zeros)"
                    ),
                ));
            }
            _ => {
                return Err(RowError::new(line, &key, written, "must be a JSON string or null"));
            }
        };
    }
    Ok(RawRow { line, cells })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_gives_only_its_keys() {
        let row = json_row(Table::Sites, 3, r#"{"site_id":"a","brand_name":null}"#).unwrap();
        assert_eq!(row.cells[0], Cell::Value("a".into()));
        assert_eq!(row.cells[1], Cell::Absent, "domain was not given");
        assert_eq!(row.cells[4], Cell::Null, "brand_name was given as null");
    }

    #[test]
    fn numbers_duplicate_keys_and_other_types_are_refused() {
        let number = json_row(Table::Sites, 1, r#"{"site_id": 1.50}"#).unwrap_err();
        assert_eq!((number.column.as_str(), number.value.as_str()), ("site_id", "1.50"));
        assert!(number.message.contains("write it as a string: \"1.50\""), "{number}");
        let big = json_row(Table::Sites, 1, r#"{"site_id": 99999999999999999999}"#).unwrap_err();
        assert_eq!(big.value, "99999999999999999999");
        let twice =
            json_row(Table::Sites, 2, r#"{"site_id":"a","domain":"a.com","site_id":"b"}"#).unwrap_err();
        assert!(twice.message.contains("\"site_id\" appears twice"), "{twice}");
        let boolean = json_row(Table::Sites, 1, r#"{"site_id": true}"#).unwrap_err();
        assert!(boolean.message.contains("string or null"), "{boolean}");
        let array = json_row(Table::Sites, 1, r#"[1, 2]"#).unwrap_err();
        assert!(array.message.contains("not a JSON object"), "{array}");
    }

    #[test]
    fn semicolon_headers_are_named() {
        let names = vec!["site_id;domain".to_owned()];
        let error = header_positions(Table::Sites, &names, 1, false).unwrap_err().to_string();
        assert!(error.contains("separated by semicolons"), "{error}");
    }
}
