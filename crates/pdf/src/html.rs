//! The document as one standalone HTML page, for a Chromium-based renderer (Gotenberg).
//! Self-contained: styles inline, the logo as a data URI, no script, nothing fetched. Every
//! value goes through [`escape`]; only this file's own literals are markup.

use crate::view::View;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::fmt::Write;

const STYLE: &str = r#"
@page { size: A4; margin: 18mm 20mm 22mm 20mm;
  @bottom-right { content: "Page " counter(page) " of " counter(pages); font-size: 8pt; color: #555; } }
* { box-sizing: border-box; }
body { font-family: "Libertinus Serif", "Linux Libertine", Georgia, "Times New Roman", serif;
  font-size: 10pt; line-height: 1.35; color: #000; margin: 0; }
.letterhead { display: flex; justify-content: space-between; align-items: flex-end;
  border-bottom: 0.8pt solid #000; padding-bottom: 6pt; margin-bottom: 10pt; }
.org-name { font-size: 14pt; font-weight: bold; }
.grey { color: #555; }
.logo { height: 16mm; width: auto; display: block; margin-bottom: 3pt; }
h1 { font-size: 17pt; margin: 0 0 0 1em; white-space: nowrap; }
.head { display: flex; justify-content: space-between; gap: 2em; margin-bottom: 12pt; }
.to-label { font-size: 9pt; color: #555; }
.facts td { padding: 1pt 0 1pt 0; } .facts td:first-child { color: #555; padding-right: 1em; }
table.lines { width: 100%; border-collapse: collapse; }
table.lines th { text-align: left; border-bottom: 0.7pt solid #000; padding: 4pt 5pt; }
table.lines td { border-bottom: 0.4pt solid #bebebe; padding: 4pt 5pt; vertical-align: top; }
table.lines .num { text-align: right; white-space: nowrap; }
table.lines .narrow { white-space: nowrap; width: 1%; }
table.lines tr { break-inside: avoid; }
.detail { font-size: 8.5pt; color: #555; }
.totals { margin: 6pt 0 0 auto; break-inside: avoid; }
.totals td { padding: 2pt 0; } .totals td:last-child { text-align: right; padding-left: 2em; }
.strong { font-weight: bold; }
.landlord { border: 0.4pt solid #bebebe; padding: 8pt; margin-top: 10pt; break-inside: avoid; }
.citation { font-size: 9pt; color: #555; }
.statutory { margin-top: 14pt; font-size: 10pt; }
.statutory h2 { font-size: 11pt; margin: 0 0 8pt 0; break-after: avoid; }
"#;

/// `&`, `<`, `>`, `"` and `'` as character references: safe in text and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The media type of an image from its first bytes; `None` for anything else, which is then
/// left out rather than handed to the browser.
fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn lines(out: &mut String, lines: &[String]) {
    for l in lines {
        out.push_str("<br>");
        out.push_str(&escape(l));
    }
}

pub fn page(view: &View, logo: Option<&[u8]>) -> String {
    let mut o = String::with_capacity(8 * 1024 + view.table.rows.len() * 200);
    // `write!` to a String cannot fail; the results are ignored for that reason.
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&view.caption)
    );

    o.push_str("<header class=\"letterhead\">\n<div>");
    if let Some((bytes, media)) = logo.and_then(|b| image_type(b).map(|t| (b, t))) {
        let _ = write!(
            o,
            "<img class=\"logo\" alt=\"\" src=\"data:{media};base64,{}\">",
            B64.encode(bytes)
        );
    }
    let _ = write!(
        o,
        "<div class=\"org-name\">{}</div><div class=\"grey\">",
        escape(&view.org.name)
    );
    o.push_str(
        &view
            .org
            .address_lines
            .iter()
            .map(|l| escape(l))
            .collect::<Vec<_>>()
            .join("<br>"),
    );
    let _ = write!(
        o,
        "</div></div>\n<h1>{}</h1>\n</header>\n",
        escape(&view.title)
    );

    let _ = write!(
        o,
        "<section class=\"head\">\n<div><span class=\"to-label\">To</span><br><strong>{}</strong>",
        escape(&view.to.name)
    );
    lines(&mut o, &view.to.address_lines);
    o.push_str("</div>\n<table class=\"facts\">");
    for (label, value) in &view.facts {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(label),
            escape(value)
        );
    }
    o.push_str("</table>\n</section>\n");

    for p in &view.before {
        let _ = writeln!(o, "<p>{}</p>", escape(p));
    }

    let cols = &view.table.columns;
    let class = |i: usize| match cols.get(i) {
        Some(c) if c.numeric => " class=\"num\"",
        Some(c) if !c.wide => " class=\"narrow\"",
        _ => "",
    };
    o.push_str("<table class=\"lines\">\n<thead><tr>");
    for (i, c) in cols.iter().enumerate() {
        let _ = write!(o, "<th{}>{}</th>", class(i), escape(c.label));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    if view.table.rows.is_empty() {
        let _ = writeln!(
            o,
            "<tr><td colspan=\"{}\" class=\"grey\">{}</td></tr>",
            cols.len().max(1),
            escape(&view.table.empty)
        );
    }
    for row in &view.table.rows {
        o.push_str("<tr>");
        for (i, cell) in row.cells.iter().enumerate() {
            let _ = write!(o, "<td{}>{}", class(i), escape(cell));
            if let (0, Some(detail)) = (i, &row.detail) {
                let _ = write!(o, "<br><span class=\"detail\">{}</span>", escape(detail));
            }
            o.push_str("</td>");
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n<table class=\"totals\">\n");
    for t in &view.totals {
        let strong = if t.strong { " class=\"strong\"" } else { "" };
        let _ = writeln!(
            o,
            "<tr{strong}><td>{}</td><td>{}</td></tr>",
            escape(&t.label),
            escape(&t.value)
        );
    }
    o.push_str("</table>\n");

    for p in &view.after {
        let _ = writeln!(o, "<p>{}</p>", escape(p));
    }

    if let Some(l) = &view.landlord {
        let _ = writeln!(
            o,
            "<section class=\"landlord\"><strong>Landlord: </strong>{}<br>\
             <strong>Address for service of notices: </strong>{}<br>\
             <span class=\"citation\">{}</span></section>",
            escape(&l.name),
            escape(&l.address),
            escape(l.citation)
        );
    }

    if let Some(s) = &view.statutory {
        let _ = writeln!(
            o,
            "<section class=\"statutory\">\n<h2>{}</h2>",
            escape(&s.title)
        );
        for p in &s.paragraphs {
            let _ = writeln!(o, "<p>{}</p>", escape(p));
        }
        let _ = writeln!(
            o,
            "<p class=\"grey\">{}</p>\n</section>",
            escape(&s.citation)
        );
    }

    o.push_str("</body>\n</html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_markup_character_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn only_known_image_types_become_data_uris() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(image_type(b"<svg onload=alert(1)>"), None);
        assert_eq!(image_type(b""), None);
    }
}
