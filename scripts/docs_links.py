"""Every internal link resolves: in the built book (relative hrefs to a page
that exists, and `#anchors` to an id on that page), in Markdown files
outside it (README's links into docs/src), and every `{{#include file:anchor}}`
of the book's sources names a file and anchor that exist (mdbook includes
nothing, silently, for an anchor it cannot find). Prints each broken one and
exits 1 if there is one.

usage: docs_links.py <book sources dir> <built book dir> [markdown file ...]
"""

import html.parser
import os
import re
import sys
import urllib.parse


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("id", "name"):
            if attrs.get(name):
                self.ids.add(attrs[name])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


def external(href):
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", href, re.I)) or href.startswith("//")


def parse(path):
    page = Page()
    with open(path, encoding="utf-8") as f:
        page.feed(f.read())
    return page


def check_book(book):
    pages = {}
    for dirpath, _, files in os.walk(book):
        for name in files:
            if name.endswith(".html"):
                path = os.path.normpath(os.path.join(dirpath, name))
                pages[path] = parse(path)
    broken = []
    for path, page in pages.items():
        # The print page repeats every chapter with rewritten links; 404.html
        # is served from the site root. Each chapter is checked on its own.
        if os.path.basename(path) in ("print.html", "404.html"):
            continue
        for href in page.hrefs:
            if external(href):
                continue
            url = urllib.parse.urlsplit(href)
            target = path
            if url.path:
                target = os.path.normpath(
                    os.path.join(os.path.dirname(path), urllib.parse.unquote(url.path))
                )
                if os.path.isdir(target):
                    target = os.path.join(target, "index.html")
            if target.endswith(".html") and target not in pages:
                broken.append(f"{path}: {href}: no page {target}")
            elif not target.endswith(".html") and not os.path.exists(target):
                broken.append(f"{path}: {href}: no file {target}")
            elif url.fragment and target in pages and urllib.parse.unquote(url.fragment) not in pages[target].ids:
                broken.append(f"{path}: {href}: no #{url.fragment} on {target}")
    return broken, len(pages)


def check_markdown(path):
    broken = []
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    for href in re.findall(r"\]\(([^)\s]+)\)", text):
        if external(href) or href.startswith("#"):
            continue
        target = os.path.normpath(os.path.join(os.path.dirname(path), href.split("#")[0]))
        if not os.path.exists(target):
            broken.append(f"{path}: {href}: no file {target}")
    return broken


def check_includes(src):
    broken = []
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".md"):
                continue
            path = os.path.join(dirpath, name)
            text = open(path, encoding="utf-8").read()
            for file, anchor in re.findall(r"\{\{#include ([^:}]+)(?::([^}]+))?\}\}", text):
                target = os.path.normpath(os.path.join(dirpath, file))
                if not os.path.exists(target):
                    broken.append(f"{path}: include of {file}: no file {target}")
                    continue
                included = open(target, encoding="utf-8").read()
                if anchor and not (
                    re.search(rf"ANCHOR: {re.escape(anchor)}\b", included)
                    and re.search(rf"ANCHOR_END: {re.escape(anchor)}\b", included)
                ):
                    broken.append(f"{path}: include of {file}:{anchor}: no such anchor")
    return broken


def main():
    src, book, markdown = sys.argv[1], sys.argv[2], sys.argv[3:]
    broken, count = check_book(book)
    broken += check_includes(src)
    for path in markdown:
        broken += check_markdown(path)
    for line in broken:
        print(f"broken link: {line}", file=sys.stderr)
    if count < 10:
        print(f"only {count} pages in {book}: was the book built?", file=sys.stderr)
        sys.exit(1)
    print(f"{count} pages, {len(markdown)} markdown files: {len(broken)} broken links")
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
