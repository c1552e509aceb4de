"""nbconvert's last step of a feedback page, from cached pieces: the same bytes, less work.

nbconvert's HTMLExporter renders a page, then parses all of it with BeautifulSoup
(``html.parser``) to add ``alt`` texts and ``tabindex`` attributes, and writes the parsed
tree back out: two thirds of a feedback page's time. Most of a class's pages are the same
cells (the lesson's text, the given code, the tests and their passing outputs): across 32
different submissions of 03-dropout, nine tenths of the cells' markup repeats.

:func:`roundtrip` gives ``str(BeautifulSoup(markup, "html.parser"))`` assembled from
pieces: each cell is parsed and written once per process and kept; the page's skeleton
(its head, the score table, the cells replaced by placeholders) is parsed every time.
That is the same string, because a cell that passes :func:`_self_contained` parses to the
same elements wherever it stands:

* it starts with a start tag and ends with a tag (not text, which would join the text
  after it), and its tokens end inside it (the tokenizer leaves nothing pending, not in a
  script or style);
* every end tag closes an element the cell opened (never an ancestor), every element it
  opens is closed in it, and it has no end tag of a void element (``</br>``: BeautifulSoup
  keeps a list of those across the page);
* where it stands, the tokenizer is between two tokens and no ancestor changes how text is
  kept (``pre``, ``textarea``, ``script``, ``style``, ``template``, ``rt``, ``rp``): every
  placeholder must be parsed as an element, under ``div``, ``main``, ``body`` or ``html``
  only, and the skeleton's own tokens must all end inside it (a comment or a quote that a
  piece would have closed leaves the skeleton incomplete).

A page where any of this fails, or that holds an element nbconvert's step changes
(``img``, or the ``jp-Cell-inputWrapper`` and ``jp-OutputArea-output`` classes it makes
focusable), is parsed whole, as nbconvert does. ``tests/test_pagecache.py`` compares the
two on real feedback pages and on thousands of random and hostile ones.
"""
from __future__ import annotations

import re
import secrets
from html.parser import HTMLParser

from bs4 import BeautifulSoup
from bs4.builder import HTMLParserTreeBuilder

_BUILDER = HTMLParserTreeBuilder()
VOID = frozenset(_BUILDER.empty_element_tags)
_ANCESTORS = frozenset({"[document]", "html", "body", "main", "div"})
# What nbconvert's HTMLExporter selects: img:not([alt]), and (inside .jp-Notebook)
# div.jp-Cell-inputWrapper, div.jp-OutputArea-output. A page with none of these is only
# parsed and written back.
_CHANGED_CLASSES = frozenset({"jp-Cell-inputWrapper", "jp-OutputArea-output"})
_SELECTED = frozenset({"img:not([alt])", ".jp-Notebook div.jp-Cell-inputWrapper",
                       ".jp-Notebook div.jp-OutputArea-output"})
_CUT = re.compile(r'(?=<div (?:id="[^"<>]*" )?class="cell[ "])')
# An end tag of a void element, as html.parser reads one (``</br>``, ``</ BR >``), or more.
_VOID_END = re.compile(r"</\s*(?:%s)(?=[\s/>\x00]|$)" % "|".join(sorted(VOID)), re.IGNORECASE)
CACHE_LIMIT = 4096

_cache: dict[str, tuple[str, bool] | None] = {}  # piece -> (its round trip, nbconvert would change it) or None
stats = {"pages": 0, "fast": 0, "pieces": 0, "hits": 0}


class _Tokens(HTMLParser):
    """The tokenizer BeautifulSoup's ``html.parser`` builder uses (no tree)."""

    def __init__(self):
        super().__init__(convert_charrefs=False)

    def complete(self, markup: str) -> bool:
        """Fed ``markup`` alone, every token of it ends inside it: nothing is left pending
        (an unclosed comment, tag or quote), no script or style is left open."""
        try:
            self.feed(markup)
        except Exception:  # noqa: BLE001 (a tokenizer error: the page is parsed whole)
            return False
        return self.rawdata == "" and self.cdata_elem is None


class _Balance(_Tokens):
    """The tokenizer, and the stack of elements BeautifulSoup would build from its tokens."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.ok = True
        self.last_text = False  # the last token is text (it would join the text after it)

    def handle_starttag(self, tag, attrs):
        self.last_text = False
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.last_text = False  # opened and closed at once

    def handle_endtag(self, tag):
        self.last_text = False
        if tag in VOID or tag not in self.stack:
            self.ok = False
            return
        while self.stack.pop() != tag:
            pass

    def handle_data(self, data):
        self.last_text = True

    handle_charref = handle_entityref = handle_data

    def handle_comment(self, data):
        self.last_text = False

    handle_decl = handle_pi = unknown_decl = handle_comment


def _self_contained(piece: str) -> bool:
    if not (piece.startswith("<") and piece.endswith(">")):
        return False
    parser = _Balance()
    return parser.complete(piece) and parser.ok and not parser.stack and not parser.last_text


def _changed_by_nbconvert(soup) -> bool:
    """Whether nbconvert's step would change something in this tree (or piece of it)."""
    for tag in soup.find_all(True):
        if tag.name == "img":
            return True
        classes = tag.get("class")
        if classes and not _CHANGED_CLASSES.isdisjoint(classes if isinstance(classes, list) else [classes]):
            return True
    return False


def _piece(piece: str) -> tuple[str, bool] | None:
    if piece in _cache:
        stats["hits"] += 1
        return _cache[piece]
    found = None
    if _self_contained(piece):
        soup = BeautifulSoup(piece, "html.parser")
        found = (str(soup), _changed_by_nbconvert(soup))
    if len(_cache) >= CACHE_LIMIT:
        _cache.clear()
    _cache[piece] = found
    return found


def roundtrip(markup: str) -> str | None:
    """``str(BeautifulSoup(markup, "html.parser"))`` from cached pieces, or None when that
    cannot be shown to be the same (or nbconvert's step would change the page): then the
    caller parses the whole page."""
    stats["pages"] += 1
    if _VOID_END.search(markup):
        return None
    parts = _CUT.split(markup)
    if len(parts) < 3:
        return None
    nonce = secrets.token_hex(8)
    if nonce in markup:  # pragma: no cover (one in 2**64)
        return None
    outline, pieces = [parts[0]], []
    for i, part in enumerate(parts[1:-1]):
        body = part.rstrip()
        found = _piece(body)
        if found is None or found[1]:
            return None
        name = f"grader-piece-{nonce}-{i}"
        pieces.append((name, found[0]))
        outline.append(f"<{name}></{name}>{part[len(body):]}")
    outline.append(parts[-1])  # the last cell stays with the page's end
    stats["pieces"] += len(pieces)
    skeleton = "".join(outline)
    if not _Tokens().complete(skeleton):  # a construct a piece would have ended
        return None
    soup = BeautifulSoup(skeleton, "html.parser")
    if _changed_by_nbconvert(soup):
        return None
    for name, _ in pieces:
        tags = soup.find_all(name)
        if len(tags) != 1 or any(p.name not in _ANCESTORS for p in tags[0].parents):
            return None
    text = str(soup)
    out, at = [], 0
    for name, body in pieces:
        mark = f"<{name}></{name}>"
        where = text.find(mark, at)
        if where < 0:  # pragma: no cover (found above)
            return None
        out += [text[at:where], body]
        at = where + len(mark)
    out.append(text[at:])
    stats["fast"] += 1
    return "".join(out)


class FeedbackSoup:
    """What ``nbconvert.exporters.html`` calls ``BeautifulSoup``: a page that nbconvert's
    step leaves as it is gets :func:`roundtrip`'s string; any other is the real parse."""

    def __init__(self, markup="", features=None, **kwargs):
        self._soup, self._text = None, None
        self._args = (markup, features, kwargs)
        if features == "html.parser" and not kwargs and isinstance(markup, str):
            self._text = roundtrip(markup)
        if self._text is None:
            self._real()

    def _real(self):
        if self._soup is None:
            markup, features, kwargs = self._args
            self._soup = BeautifulSoup(markup, features=features, **kwargs)
        return self._soup

    def __getattr__(self, name):  # anything else a later nbconvert asks of the tree
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._real(), name)

    def select(self, selector, *args, **kwargs):
        if self._soup is None and selector in _SELECTED and not args and not kwargs:
            return []  # roundtrip() found no img and none of these classes on the page
        return self._real().select(selector, *args, **kwargs)

    def __str__(self):
        return str(self._soup) if self._soup is not None else self._text


def install() -> None:
    """nbconvert's HTML exporter in this process writes its pages through FeedbackSoup."""
    from nbconvert.exporters import html

    if html.BeautifulSoup is BeautifulSoup:
        html.BeautifulSoup = FeedbackSoup
