"""Markdown from models, rendered safely: raw HTML is never passed through, and the
rendered HTML is cleaned again with an allow-list before it reaches a page."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

TAGS = {
    "p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "th": {"style"}, "td": {"style"}, "ol": {"start"}}


class MarkdownRenderer:
    """A CommonMark renderer with raw HTML off (tables and strikethrough on)."""

    def __init__(self) -> None:
        self.parser = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])

    def render(self, text: str) -> str:
        html = self.parser.render(text or "")
        return nh3.clean(
            html,
            tags=TAGS,
            attributes=ATTRIBUTES,
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer nofollow",
        )


def markdown_html(text: str) -> str:
    return MarkdownRenderer().render(text)
