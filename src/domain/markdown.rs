//! Message bodies: Markdown rendered with pulldown-cmark, then sanitized with ammonia.
//! Only plain formatting survives: no scripts, event handlers, styles, forms, frames,
//! SVG/MathML, images (remote images would tell a sender when a message is read) or
//! links other than http, https and mailto.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{html, Options, Parser};

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&str> = [
        "a",
        "b",
        "blockquote",
        "br",
        "code",
        "del",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "li",
        "ol",
        "p",
        "pre",
        "s",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
    ]
    .into_iter()
    .collect();
    let mut builder = ammonia::Builder::default();
    builder
        .tags(tags)
        .clean_content_tags(
            ["script", "style", "svg", "math", "template"]
                .into_iter()
                .collect(),
        )
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .tag_attributes(
            [
                ("a", ["href", "title"].into_iter().collect()),
                ("td", ["align"].into_iter().collect()),
                ("th", ["align"].into_iter().collect()),
            ]
            .into_iter()
            .collect(),
        )
        .generic_attributes(HashSet::new())
        .url_relative(ammonia::UrlRelative::Deny)
        .strip_comments(true);
    builder
});

/// Renders Markdown to safe HTML.
pub fn render(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, Parser::new_ext(markdown, options));
    CLEANER.clean(&unsafe_html).to_string()
}

/// The text of a Markdown body without its markup (for previews and search).
pub fn plain_text(markdown: &str) -> String {
    use pulldown_cmark::{Event, TagEnd};
    let mut out = String::with_capacity(markdown.len());
    for event in Parser::new(markdown) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak
            | Event::HardBreak
            | Event::End(TagEnd::Paragraph)
            | Event::End(TagEnd::Item) => out.push(' '),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_survives() {
        let html =
            render("**Hello** _there_, see [the form](https://example.org/f).\n\n- one\n- two");
        assert!(html.contains("<strong>Hello</strong>"));
        assert!(html.contains("<em>there</em>"));
        assert!(
            html.contains(
                r#"<a href="https://example.org/f" rel="noopener noreferrer nofollow">the form</a>"#
            ),
            "{html}"
        );
        assert!(html.contains("<li>one</li>"));
    }

    #[test]
    fn plain_text_drops_markup() {
        assert_eq!(
            plain_text("**Hello** _there_\n\n- one\n- two"),
            "Hello there one two"
        );
    }
}
