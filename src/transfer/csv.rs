//! A streaming CSV reader (RFC 4180) that remembers whether a field was quoted: like
//! PostgreSQL's CSV format, an unquoted empty field is NULL and `""` is the empty string, so
//! an export imports back exactly.

use std::io::BufRead;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) value: String,
    pub(crate) quoted: bool,
}

impl Field {
    /// `None` for SQL NULL (an unquoted empty field).
    pub(crate) fn as_nullable(&self) -> Option<&str> {
        if self.value.is_empty() && !self.quoted { None } else { Some(&self.value) }
    }
}

/// One record and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) line: usize,
    pub(crate) fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub(crate) struct CsvError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

pub(crate) struct CsvReader<R> {
    input: R,
    line: usize,
    buffer: String,
}

impl<R: BufRead> CsvReader<R> {
    pub(crate) fn new(input: R) -> Self {
        CsvReader { input, line: 0, buffer: String::new() }
    }

    fn read_line(&mut self) -> Result<bool, CsvError> {
        self.buffer.clear();
        let read = self.input.read_line(&mut self.buffer).map_err(|e| CsvError {
            line: self.line + 1,
            message: format!("cannot read: {e} (is the file UTF-8?)"),
        })?;
        if read > 0 {
            self.line += 1;
        }
        Ok(read > 0)
    }

    /// The next record, or `None` at the end. Blank lines are skipped.
    pub(crate) fn next_record(&mut self) -> Result<Option<Record>, CsvError> {
        loop {
            if !self.read_line()? {
                return Ok(None);
            }
            if !self.buffer.trim_end_matches(['\r', '\n']).is_empty() {
                break;
            }
        }
        let start = self.line;
        let mut fields = Vec::new();
        let mut field = Field { value: String::new(), quoted: false };
        let mut in_quotes = false;
        let mut after_quote = false;
        loop {
            let line = std::mem::take(&mut self.buffer);
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                if in_quotes {
                    match c {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.value.push('"');
                        }
                        '"' => {
                            in_quotes = false;
                            after_quote = true;
                        }
                        other => field.value.push(other),
                    }
                    continue;
                }
                match c {
                    ',' => {
                        fields.push(std::mem::replace(
                            &mut field,
                            Field { value: String::new(), quoted: false },
                        ));
                        after_quote = false;
                    }
                    '"' if field.value.is_empty() && !field.quoted => {
                        in_quotes = true;
                        field.quoted = true;
                    }
                    '\r' if chars.peek() == Some(&'\n') => {}
                    '\n' => {}
                    '"' => {
                        return Err(CsvError {
                            line: self.line,
                            message: "a quote inside an unquoted field; quote the whole field and double inner quotes (\"say \"\"hi\"\"\")".into(),
                        });
                    }
                    other if after_quote => {
                        return Err(CsvError {
                            line: self.line,
                            message: format!(
                                "{other:?} after a closing quote; a quoted field must end at a comma or the line end"
                            ),
                        });
                    }
                    other => field.value.push(other),
                }
            }
            if !in_quotes {
                break;
            }
            if !self.read_line()? {
                return Err(CsvError {
                    line: start,
                    message: "a quoted field is never closed (the file ends inside quotes)".into(),
                });
            }
        }
        fields.push(field);
        Ok(Some(Record { line: start, fields }))
    }
}

/// Quotes a value for CSV output when needed; `None` is written as an empty unquoted field.
#[cfg(test)]
pub(crate) fn write_field(out: &mut String, value: Option<&str>) {
    let Some(value) = value else { return };
    if value.is_empty()
        || value.contains([',', '"', '\n', '\r'])
        || value.starts_with(' ')
        || value.ends_with(' ')
    {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Record>, CsvError> {
        let mut reader = CsvReader::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(r) = reader.next_record()? {
            out.push(r);
        }
        Ok(out)
    }

    fn values(r: &Record) -> Vec<Option<&str>> {
        r.fields.iter().map(Field::as_nullable).collect()
    }

    #[test]
    fn quoting_nulls_and_multiline_fields() {
        let records = parse("a,b,c\r\n1,,\"\"\n\"x,y\",\"line1\nline2\",\"say \"\"hi\"\"\"\n").unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(values(&records[1]), vec![Some("1"), None, Some("")]);
        assert_eq!(values(&records[2]), vec![Some("x,y"), Some("line1\nline2"), Some("say \"hi\"")]);
        assert_eq!(records[2].line, 3);
    }

    #[test]
    fn bad_quoting_is_reported_with_its_line() {
        assert_eq!(parse("a\nx\"y\n").unwrap_err().line, 2);
        assert_eq!(parse("a\n\"x\"y\n").unwrap_err().line, 2);
        let unclosed = parse("a\n\"never closed\nmore\n").unwrap_err();
        assert_eq!(unclosed.line, 2);
        assert!(unclosed.message.contains("never closed"));
    }

    #[test]
    fn written_fields_read_back_identically() {
        for value in
            [None, Some(""), Some("plain"), Some("a,b"), Some("q\"uote"), Some("multi\nline"), Some(" pad ")]
        {
            // A leading field: a lone NULL would be a blank line, which is skipped.
            let mut line = String::from("k,");
            write_field(&mut line, value);
            line.push('\n');
            let records = parse(&line).unwrap();
            assert_eq!(values(&records[0]), vec![Some("k"), value], "{line:?}");
        }
    }
}
