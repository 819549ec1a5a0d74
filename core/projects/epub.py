"""EPUB manuscripts: ebooklib reads the package, lxml each XHTML document of its spine.

The table of contents (EPUB 3 nav, else the EPUB 2 NCX) gives the chapters: each entry owns
the text from its anchor to the next entry's, in spine order, so a chapter split over several
files, or several chapters in one file, both come out right. Text before the first entry
(cover, title page, copyright) is not read. A book without a usable table of contents gets
one chapter per spine document, named by its first heading.

Blocks are the text of block elements (``<p>``, ``<li>``, ``<blockquote>``, ``<div>`` ...);
headings name chapters and are not read as blocks; ``<br>`` breaks a line (dialogue splits
on it). DRM-protected books (``META-INF/encryption.xml`` encrypting content, or Adobe's
``rights.xml``) are refused before anything else is read.
"""

from __future__ import annotations

import bisect
import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import ebooklib
from ebooklib import epub
from lxml import etree
from lxml import html as lxml_html

from core.projects.manuscript import ManuscriptError, paragraphs
from core.projects.model import Manuscript, ManuscriptChapter

# What the archive may unpack to: a zip bomb is refused before ebooklib reads every member.
MAX_UNPACKED_BYTES = 1_000_000_000
# Font obfuscation (IDPF, Adobe) encrypts fonts, not text: such a book is not DRM-protected.
FONT_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})
_XMLENC = "{http://www.w3.org/2001/04/xmlenc#}"
_EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"
# No entities fetched, no network: an EPUB is untrusted input.
_XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)

_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = {
    "p", "div", "li", "dd", "dt", "pre", "blockquote", "td", "th", "caption", "figcaption", "section",
    "article", "aside", "header", "footer", "main", "address", "center", "ul", "ol", "dl", "table",
    "thead", "tbody", "tfoot", "tr", "figure", "hr", "body", "hgroup",
}  # fmt: skip
_SPACES = re.compile(r"\s+")
_UNREAD = {"script", "style", "head", "title", "nav", "rt", "rp", "svg", "math", "template"}


def read_epub(data: bytes, label: str) -> Manuscript:
    archive = _open_zip(data, label)
    _refuse_drm(archive, label)
    try:
        book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
    except zipfile.BadZipFile:
        raise ManuscriptError(_broken(label, "a file inside it is damaged")) from None
    except epub.EpubException as error:
        raise ManuscriptError(_broken(label, f"ebooklib says: {error.msg}")) from None
    except KeyError as error:  # zipfile's "There is no item named 'EPUB/x.xhtml' in the archive"
        missing = str(error.args[0]).split("'")[1] if str(error.args[0]).count("'") >= 2 else "a file"
        raise ManuscriptError(_broken(label, f"it lists {missing} but does not hold it")) from None
    except etree.XMLSyntaxError as error:
        raise ManuscriptError(_broken(label, f"its package file is not valid XML ({error.msg})")) from None
    except Exception:  # ebooklib's other failures on a malformed package (AttributeError, IndexError...)
        raise ManuscriptError(
            _broken(label, "its package file (the OPF, which lists its contents) is malformed")
        ) from None
    docs = _spine_documents(book, label)
    chapters = _toc_chapters(book, docs) or _document_chapters(docs)
    cover, cover_type = _cover(book)
    return Manuscript(
        title=_metadata(book, "title", first=True),
        author=_metadata(book, "creator"),
        chapters=tuple(chapters),
        cover=cover,
        cover_type=cover_type,
    )


# --------------------------------------------------------------------------- the archive


def _broken(label: str, why: str) -> str:
    return f"{label} is a broken EPUB: {why}. Download or export it again."


def _open_zip(data: bytes, label: str) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ManuscriptError(
            _broken(label, "it is not a complete zip archive (every EPUB is one), perhaps cut short")
        ) from None
    unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > MAX_UNPACKED_BYTES:
        raise ManuscriptError(
            f"{label} unpacks to {unpacked / 1e6:,.0f} MB; an EPUB can unpack to at most "
            f"{MAX_UNPACKED_BYTES / 1e6:,.0f} MB."
        )
    if "META-INF/container.xml" not in archive.namelist():
        raise ManuscriptError(_broken(label, "it has no META-INF/container.xml, which every EPUB has"))
    return archive


def _refuse_drm(archive: zipfile.ZipFile, label: str) -> None:
    names = set(archive.namelist())
    protected = "META-INF/rights.xml" in names  # Adobe ADEPT
    if not protected and "META-INF/encryption.xml" in names:
        try:
            root = etree.fromstring(archive.read("META-INF/encryption.xml"), parser=_XML)
        except (etree.XMLSyntaxError, zipfile.BadZipFile, KeyError):
            protected = True  # an unreadable encryption.xml: assume the worst, say DRM
        else:
            for data in root.iter(f"{_XMLENC}EncryptedData"):
                method = data.find(f"{_XMLENC}EncryptionMethod")
                if method is None or method.get("Algorithm") not in FONT_OBFUSCATION:
                    protected = True
    if protected:
        raise ManuscriptError(
            f"{label} is protected by DRM: its text is encrypted, so the studio cannot read it. "
            "Import a DRM-free copy (your writing tool can export one, and many shops sell them)."
        )


# --------------------------------------------------------------------------- documents


@dataclass
class _Doc:
    """One spine document: its blocks as (position, level, text), level 0 a paragraph and 1-6 a
    heading, position the element count at the block's end; where each ``id`` is."""

    name: str
    parts: list[tuple[int, int, str]] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)

    def heading(self, start: int = 0) -> str:
        """The first heading at or after ``start``."""
        return next((text for pos, level, text in self.parts if level and pos >= start), "")


def _spine_documents(book: epub.EpubBook, label: str) -> list[_Doc]:
    docs: list[_Doc] = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if not isinstance(item, epub.EpubHtml) or isinstance(item, (epub.EpubNav, epub.EpubCoverHtml)):
            continue
        if "nav" in (getattr(item, "properties", None) or ()):
            continue
        docs.append(_read_document(item, label))
    return docs


def _read_document(item: epub.EpubHtml, label: str) -> _Doc:
    content = item.get_content()
    name = posixpath.normpath(item.get_name())
    try:
        root = etree.fromstring(content, parser=_XML)
    except etree.XMLSyntaxError:
        # Readers are lenient with invalid XHTML (an HTML entity, an unclosed tag): so are we.
        try:
            root = lxml_html.document_fromstring(content)
        except (etree.ParserError, ValueError):
            raise ManuscriptError(_broken(label, f"its document {name} cannot be read as XHTML")) from None
    doc = _Doc(name)
    body = next((el for el in root.iter() if _local(el) == "body"), root)
    _Walker(doc).walk(body)
    return doc


def _local(el: Any) -> str:
    return etree.QName(el).localname.lower() if isinstance(el.tag, str) else ""


class _Walker:
    """Block text in document order: inline text gathers until a block boundary flushes it."""

    def __init__(self, doc: _Doc) -> None:
        self.doc = doc
        self.pos = 0
        self.buffer: list[str] = []

    def walk(self, el: Any) -> None:
        self.pos += 1
        local = _local(el)
        if not local:  # a comment or processing instruction
            return
        ident = el.get("id") or (el.get("name") if local == "a" else None)
        if ident:
            self.doc.ids.setdefault(ident, self.pos)
        if local in _UNREAD or "noteref" in (el.get(_EPUB_TYPE) or "").split():
            return
        if local == "br":
            self.buffer.append("\n")
            return
        if local in _HEADINGS:
            self.flush()
            self.inline(el)
            words = " ".join("".join(self.buffer).split())
            self.buffer = []
            if words:
                self.doc.parts.append((self.pos, int(local[1]), words))
            return
        block = local in _BLOCKS
        if block:
            self.flush()
        self.inline(el)
        if block:
            self.flush()

    def inline(self, el: Any) -> None:
        self.text(el.text)
        for child in el:
            self.walk(child)
            self.text(child.tail)

    def text(self, text: str | None) -> None:
        if text:  # source line breaks are spaces in HTML (only <br> breaks a line); edges kept
            self.buffer.append(_SPACES.sub(" ", text))

    def flush(self) -> None:
        if self.buffer:
            self.doc.parts.extend((self.pos, 0, p) for p in paragraphs("".join(self.buffer)))
            self.buffer = []


# --------------------------------------------------------------------------- chapters


def _toc_entries(book: epub.EpubBook) -> list[tuple[str, str]]:
    """(title, href) of every table-of-contents entry, depth first (parts and their chapters)."""
    out: list[tuple[str, str]] = []

    def visit(entries: Any) -> None:
        for entry in entries or ():
            if isinstance(entry, tuple) and len(entry) == 2:
                section, children = entry
                if getattr(section, "href", ""):
                    out.append((section.title or "", section.href))
                visit(children)
            elif isinstance(entry, (list, tuple)):
                visit(entry)
            elif getattr(entry, "href", ""):
                out.append((entry.title or "", entry.href))

    visit(book.toc)
    return out


def _resolve(href: str, names: dict[str, int], ncx_dir: str) -> tuple[int, str] | None:
    """(spine index, fragment) an entry points at. NCX links are relative to the NCX file,
    nav links were resolved by ebooklib; a unique file name is accepted as a last resort."""
    path, _, fragment = href.partition("#")
    path = unquote(path)
    for candidate in (posixpath.normpath(path), posixpath.normpath(posixpath.join(ncx_dir, path))):
        if candidate in names:
            return names[candidate], fragment
    base = posixpath.basename(path)
    matches = [i for name, i in names.items() if posixpath.basename(name) == base]
    return (matches[0], fragment) if len(matches) == 1 else None


def _toc_chapters(book: epub.EpubBook, docs: list[_Doc]) -> list[ManuscriptChapter]:
    names = {doc.name: i for i, doc in enumerate(docs)}
    ncx = next((item for item in book.get_items() if isinstance(item, epub.EpubNcx)), None)
    ncx_dir = posixpath.dirname(ncx.get_name()) if ncx is not None else ""
    anchors: list[tuple[tuple[int, int], str]] = []
    for title, href in _toc_entries(book):
        target = _resolve(href, names, ncx_dir)
        if target is not None:
            index, fragment = target
            anchors.append(((index, docs[index].ids.get(unquote(fragment), 0) if fragment else 0), title))
    if not anchors:
        return []
    anchors.sort(key=lambda anchor: anchor[0])  # stable: equal places keep the table's order
    keys = [place for place, _ in anchors]
    texts: list[list[str]] = [[] for _ in anchors]
    for index, doc in enumerate(docs):
        for pos, level, text in doc.parts:
            owner = bisect.bisect_right(keys, (index, pos)) - 1
            if owner >= 0 and not level:  # before the first entry: cover, title page, copyright
                texts[owner].append(text)
    chapters: list[ManuscriptChapter] = []
    for number, ((place, title), ps) in enumerate(zip(anchors, texts), start=1):
        if ps:
            name = " ".join(title.split()) or docs[place[0]].heading(place[1]) or f"Chapter {number}"
            chapters.append(ManuscriptChapter(name, tuple(ps)))
    return chapters


def _document_chapters(docs: list[_Doc]) -> list[ManuscriptChapter]:
    chapters: list[ManuscriptChapter] = []
    for doc in docs:
        ps = tuple(text for _, level, text in doc.parts if not level)
        if ps:
            chapters.append(ManuscriptChapter(doc.heading() or f"Chapter {len(chapters) + 1}", ps))
    return chapters


# --------------------------------------------------------------------------- metadata


def _metadata(book: epub.EpubBook, name: str, *, first: bool = False) -> str:
    values = [" ".join(str(value).split()) for value, _ in book.get_metadata("DC", name) if value]
    values = [v for v in values if v]
    return (values[0] if values else "") if first else ", ".join(dict.fromkeys(values))


def _cover(book: epub.EpubBook) -> tuple[bytes | None, str | None]:
    """The cover image: EPUB 3's ``cover-image`` item, else EPUB 2's ``<meta name="cover">``."""
    item = next(iter(book.get_items_of_type(ebooklib.ITEM_COVER)), None)
    if item is None:
        for _, attrs in book.get_metadata("OPF", "cover"):
            item = book.get_item_with_id((attrs or {}).get("content", ""))
            if item is not None:
                break
    if item is None or not str(item.media_type or "").startswith("image/"):
        return None, None
    content = item.get_content()
    return (bytes(content), str(item.media_type)) if content else (None, None)
