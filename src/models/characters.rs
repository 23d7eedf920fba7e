//! Which characters identifiers and e-mail addresses may hold: one definition, used by the
//! Rust validators (`values`) and, as regular-expression classes, by the schema's CHECK
//! constraints (`schema`), so that "cabinet-db accepts" and "PostgreSQL accepts" are the same
//! statement (`tests/it/every_server/agreement.rs` checks it on thousands of generated values).
//!
//! PostgreSQL's `[:space:]` and `[:cntrl:]` classes depend on the database's locale (under
//! `C.UTF-8` a no-break space is not a space), so the constraints spell the ranges out with
//! `\uXXXX` escapes instead, which mean the same code points everywhere.

use std::borrow::Cow;

/// Characters no identifier or e-mail address may contain anywhere: controls (Unicode
/// category Cc: NUL, ESC, DEL, C1), format characters (Cf: soft hyphen, zero-width space and
/// joiners, bidi embeddings/overrides/isolates, the BOM, tag characters), and the line and
/// paragraph separators (Zl, Zp). Unicode 18.0.
pub(crate) const INVISIBLE_OR_CONTROL: &[(char, char)] = &[
    ('\u{0}', '\u{1f}'),
    ('\u{7f}', '\u{9f}'),
    ('\u{ad}', '\u{ad}'),
    ('\u{600}', '\u{605}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{6dd}', '\u{6dd}'),
    ('\u{70f}', '\u{70f}'),
    ('\u{890}', '\u{891}'),
    ('\u{8e2}', '\u{8e2}'),
    ('\u{180e}', '\u{180e}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{2028}', '\u{202e}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{fff9}', '\u{fffb}'),
    ('\u{110bd}', '\u{110bd}'),
    ('\u{110cd}', '\u{110cd}'),
    ('\u{13430}', '\u{1343f}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0001}', '\u{e0001}'),
    ('\u{e0020}', '\u{e007f}'),
];

/// Unicode's White_Space property (what `char::is_whitespace` tests): may not begin or end an
/// identifier, and may not appear in an e-mail address. Includes the no-break spaces.
pub(crate) const WHITE_SPACE: &[(char, char)] = &[
    ('\u{9}', '\u{d}'),
    ('\u{20}', '\u{20}'),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// Characters a one-line field (a brand name, an id from another system) may not hold: the
/// controls (Cc: tab, line feed, CR, ESC, DEL, C1) and the line and paragraph separators (Zl,
/// Zp). Format characters stay allowed there (a brand may be written right to left, or hold an
/// emoji joined by U+200D).
pub(crate) const LINE_BREAK_OR_CONTROL: &[(char, char)] =
    &[('\u{0}', '\u{1f}'), ('\u{7f}', '\u{9f}'), ('\u{2028}', '\u{2029}')];

/// [`LINE_BREAK_OR_CONTROL`] as the body of a PostgreSQL bracket expression.
macro_rules! line_break_or_control_class {
    () => {
        r"\u0000-\u001f\u007f-\u009f\u2028-\u2029"
    };
}
pub(crate) use line_break_or_control_class;

/// [`INVISIBLE_OR_CONTROL`] as the body of a PostgreSQL bracket expression. A macro, so the
/// schema's constraint definitions stay `&'static str` (`concat!`); a test holds it equal to
/// [`regex_class`] of the table.
macro_rules! invisible_or_control_class {
    () => {
        r"\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    };
}
pub(crate) use invisible_or_control_class;

/// [`WHITE_SPACE`] as the body of a PostgreSQL bracket expression.
macro_rules! white_space_class {
    () => {
        r"\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000"
    };
}
pub(crate) use white_space_class;

fn in_ranges(ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(low, high)| (low..=high).contains(&c))
}

/// A control, format or separator character: invisible, or able to change how a terminal
/// shows what follows it.
pub(crate) fn is_invisible_or_control(c: char) -> bool {
    in_ranges(INVISIBLE_OR_CONTROL, c)
}

/// A character no one-line field may hold (see [`LINE_BREAK_OR_CONTROL`]).
pub(crate) fn is_line_break_or_control(c: char) -> bool {
    in_ranges(LINE_BREAK_OR_CONTROL, c)
}

pub(crate) fn is_white_space(c: char) -> bool {
    in_ranges(WHITE_SPACE, c)
}

/// What a peer (tailscaled, Patroni, etcd) answered, as an error may quote it: trimmed, made
/// safe to show (see [`escape_invisible`]) and cut to its first 300 characters, so a hostile or
/// broken peer can neither drive the terminal nor flood the log.
pub(crate) fn peer_excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 300;
    let text = text.trim();
    let shown: String = text.chars().take(MAX_CHARS).collect();
    let mut out = escape_invisible(&shown, false).into_owned();
    if shown.len() < text.len() {
        out.push_str(&format!("… ({} bytes in all)", text.len()));
    }
    out
}

/// Text made safe to show on a terminal: control characters (ESC, DEL, C1),
/// Unicode format characters (bidi overrides, zero-width) and line separators are shown as
/// escapes (`\e`, `\u{202e}`); with `keep_newlines`, `\n` and `\t` pass (multi-line prompts).
pub(crate) fn escape_invisible(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let needs_escape = |c: char| is_invisible_or_control(c) && !(keep_newlines && matches!(c, '\n' | '\t'));
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !needs_escape(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            other => out.push_str(&format!("\\u{{{:x}}}", other as u32)),
        }
    }
    Cow::Owned(out)
}

/// The ranges as a PostgreSQL ARE bracket-expression body: `\u0000-\u001f…`.
#[cfg(test)]
pub(crate) fn regex_class(ranges: &[(char, char)]) -> String {
    let escape = |c: char| {
        let code = c as u32;
        if code > 0xffff { format!(r"\U{code:08x}") } else { format!(r"\u{code:04x}") }
    };
    ranges
        .iter()
        .map(
            |&(low, high)| {
                if low == high { escape(low) } else { format!("{}-{}", escape(low), escape(high)) }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_invisible_characters_are_shown_not_obeyed() {
        assert_eq!(escape_invisible("ACME", false), "ACME");
        assert_eq!(escape_invisible("a\u{1b}[2Jb", false), "a\\e[2Jb");
        assert_eq!(escape_invisible("x\u{7f}\u{9b}y", false), "x\\u{7f}\\u{9b}y");
        assert_eq!(escape_invisible("\u{202e}evil", false), "\\u{202e}evil");
        assert_eq!(escape_invisible("zero\u{200b}width", false), "zero\\u{200b}width");
        assert_eq!(escape_invisible("two\nlines", false), "two\\nlines");
        assert_eq!(escape_invisible("two\nlines\tok\u{1b}", true), "two\nlines\tok\\e");
    }

    #[test]
    fn the_regex_classes_spell_the_tables() {
        assert_eq!(invisible_or_control_class!(), regex_class(INVISIBLE_OR_CONTROL));
        assert_eq!(white_space_class!(), regex_class(WHITE_SPACE));
        assert_eq!(line_break_or_control_class!(), regex_class(LINE_BREAK_OR_CONTROL));
    }

    #[test]
    fn white_space_is_unicodes_white_space_property() {
        for code in 0..=0x10ffff_u32 {
            if let Some(c) = char::from_u32(code) {
                assert_eq!(is_white_space(c), c.is_whitespace(), "U+{code:04X}");
            }
        }
    }

    #[test]
    fn controls_are_all_in_the_invisible_set() {
        for code in 0..=0x10ffff_u32 {
            if let Some(c) = char::from_u32(code)
                && c.is_control()
            {
                assert!(is_invisible_or_control(c), "U+{code:04X}");
            }
        }
        for c in ['\u{200b}', '\u{202e}', '\u{2066}', '\u{feff}', '\u{ad}', '\u{e0041}'] {
            assert!(is_invisible_or_control(c), "{c:?}");
        }
        for c in ['a', 'ä', ' ', '\u{a0}', '🥨', 'ש'] {
            assert!(!is_invisible_or_control(c), "{c:?}");
        }
    }
}
