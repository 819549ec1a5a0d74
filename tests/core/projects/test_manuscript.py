"""Manuscripts in: EPUBs built here with ebooklib, Markdown, .txt and pasted text become the
right chapters and paragraphs; DRM, broken, empty, unsupported and oversized ones get a
sentence that says so."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from ebooklib import epub

from core.errors import InvalidInput
from core.projects import manuscript as manuscript_module
from core.projects.manuscript import (
    ManuscriptError,
    ManuscriptFormat,
    dialogue_speaker,
    read_manuscript,
)
from core.projects.model import Manuscript

# A real (1x1) PNG: the cover must come back byte for byte.
COVER = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _page(uid: str, file_name: str, body: str, title: str = "") -> epub.EpubHtml:
    page = epub.EpubHtml(uid=uid, title=title or uid, file_name=file_name, lang="en")
    page.content = f"<html><head><title>{title or uid}</title></head><body>{body}</body></html>"
    return page


def build_epub(
    path: Path, *, toc: bool = True, nav: bool = True, cover: bool = True, chapters: list[str] | None = None
) -> Path:
    """A 3-chapter novel: a title page before the table of contents' first entry, chapter 2
    split over two files (the second not in the TOC), and chapter 3 in the same file as a
    fourth chapter that the TOC reaches by a fragment."""
    book = epub.EpubBook()
    book.set_identifier("lighthouse-1")
    book.set_title("The Lighthouse")
    book.set_language("en")
    book.add_author("Ada Writer")
    if cover:
        book.set_cover("images/cover.png", COVER)
    title_page = _page("titlepage", "title.xhtml", "<p>The Lighthouse</p><p>Copyright 2026 Ada Writer.</p>")
    one = _page(
        "c1",
        "text/one.xhtml",
        "<h1>Chapter One</h1><p>The keeper climbed the\n   stairs.</p>"
        "<p>Maya: Is the lamp lit?<br/>Tom: Not yet.</p>"
        "<blockquote><p>A quoted letter.</p></blockquote><ul><li>A list item.</li></ul>",
    )
    two = _page("c2", "text/two.xhtml", "<h1>Chapter Two</h1><p>The storm came <em>at night</em>.</p>")
    two_more = _page("c2b", "text/two-more.xhtml", "<div>It did not stop till morning.</div>")
    three = _page(
        "c3",
        "text/three.xhtml",
        '<h1 id="three">Chapter Three</h1><p>The ship was saved.</p>'
        '<h1 id="after">Afterword</h1><p>Thanks for reading<a epub:type="noteref" href="#n1">1</a>.</p>',
    )
    pages = [title_page, one, two, two_more, three]
    for page in pages:
        book.add_item(page)
    if toc:
        book.toc = [
            epub.Link("text/one.xhtml", "1. The Keeper", "t1"),
            (
                epub.Section("Part Two"),
                [
                    epub.Link("text/two.xhtml", "2. The Storm", "t2"),
                    epub.Link("text/three.xhtml#three", "3. The Rescue", "t3"),
                ],
            ),
            epub.Link("text/three.xhtml#after", "Afterword", "t4"),
        ]
    book.add_item(epub.EpubNcx())
    if nav:
        book.add_item(epub.EpubNav())
    book.spine = [*(["cover"] if cover else []), *(["nav"] if nav else []), *pages]
    epub.write_epub(str(path), book)
    return path


@pytest.fixture(scope="module")
def novel(tmp_path_factory) -> Path:
    return build_epub(tmp_path_factory.mktemp("epub") / "lighthouse.epub")


def test_an_epub_imports_its_table_of_contents_as_chapters_with_metadata_and_cover(novel: Path):
    book = read_manuscript(novel)
    assert isinstance(book, Manuscript)
    assert (book.title, book.author) == ("The Lighthouse", "Ada Writer")
    assert book.cover == COVER and book.cover_type == "image/png"
    assert [c.title for c in book.chapters] == ["1. The Keeper", "2. The Storm", "3. The Rescue", "Afterword"]
    one, two, three, after = (c.paragraphs for c in book.chapters)
    # Whitespace normalised, headings not read, dialogue split at <br>, quotes and list items kept.
    assert one == (
        "The keeper climbed the stairs.",
        "Maya: Is the lamp lit?",
        "Tom: Not yet.",
        "A quoted letter.",
        "A list item.",
    )
    # A chapter over two files, inline markup dropped; the title page before the TOC is not read.
    assert two == ("The storm came at night.", "It did not stop till morning.")
    assert three == ("The ship was saved.",)  # the fragment cuts the file in two
    assert after == ("Thanks for reading.",)  # the footnote marker is not read
    assert not any("Copyright" in p for c in book.chapters for p in c.paragraphs)


def test_an_epub_reads_the_same_from_bytes_a_path_string_and_its_ncx_alone(novel: Path, tmp_path: Path):
    expected = read_manuscript(novel)
    assert read_manuscript(novel.read_bytes(), name="lighthouse.epub") == expected
    assert read_manuscript(novel.read_bytes()) == expected  # no name: sniffed as a zip
    assert read_manuscript(str(novel)) == expected  # a path, not pasted text
    ncx_only = build_epub(tmp_path / "ncx.epub", nav=False)  # EPUB 2 style: the NCX is the TOC
    assert read_manuscript(ncx_only).chapters == expected.chapters


def test_an_epub_without_a_table_of_contents_has_a_chapter_per_document(tmp_path: Path):
    book = read_manuscript(build_epub(tmp_path / "flat.epub", toc=False, cover=False))
    assert book.cover is None and book.cover_type is None
    # Named by their first heading; the title page has none.
    assert [c.title for c in book.chapters] == ["Chapter 1", "Chapter One", "Chapter Two", "Chapter 4", "Chapter Three"]
    assert book.chapters[4].paragraphs == ("The ship was saved.", "Thanks for reading.")


def test_markdown_headings_become_chapters_and_front_matter_names_the_book(tmp_path: Path):
    path = tmp_path / "draft.md"
    path.write_text(
        "---\ntitle: 'The Lighthouse'\nauthor: Ada Writer\ntags:\n  - sea\n---\n\n"
        "# The Lighthouse\n\nA note before the story.\n\n"
        "## The Keeper\n\nThe keeper *climbed* the [stairs](https://example.org) with `one` lamp\n"
        "that night.\n\nMaya: Is it lit?\nTom: Not yet.\n\n"
        "- the first item\n- the second item\n\n> a quoted line\n\n### A scene break\n\nStill night.\n\n"
        "## The Storm\n\nWind &amp; rain.\n\n![a map](map.png)\n",
        encoding="utf-8",
    )
    book = read_manuscript(path)
    assert (book.title, book.author, book.cover) == ("The Lighthouse", "Ada Writer", None)
    assert [c.title for c in book.chapters] == ["The Lighthouse", "The Keeper", "The Storm"]
    assert book.chapters[0].paragraphs == ("A note before the story.",)
    assert book.chapters[1].paragraphs == (
        "The keeper climbed the stairs with one lamp that night.",
        "Maya: Is it lit?",
        "Tom: Not yet.",
        "the first item",
        "the second item",
        "a quoted line",
        "A scene break",  # a heading below the chapters' level is read
        "Still night.",
    )
    assert book.chapters[2].paragraphs == ("Wind & rain.",)  # the image has no words to read


def test_markdown_with_several_top_headings_has_no_title_from_them():
    book = read_manuscript(b"# One\n\nFirst.\n\n# Two\n\nSecond.\n", name="book.markdown")
    assert book.title == ""
    assert [(c.title, c.paragraphs) for c in book.chapters] == [("One", ("First.",)), ("Two", ("Second.",))]
    # A lone top heading with no chapters under it titles both the book and its one chapter.
    single = read_manuscript("# Only\n\nText.", fmt=ManuscriptFormat.MARKDOWN)
    assert (single.title, [c.title for c in single.chapters]) == ("Only", ["Only"])


def test_a_text_file_with_chapter_lines_has_those_chapters(tmp_path: Path):
    path = tmp_path / "novel.txt"
    path.write_bytes(
        "THE LIGHTHOUSE\r\nby Ada Writer\r\n\r\nCHAPTER ONE\r\nThe keeper climbed\r\nthe   stairs.\r\n\r\n"
        "\r\n\r\nIt was cold.\r\n\r\nChapter Twenty-Two: The Storm\r\n\r\nThe rule was clear: nobody leaves.\r\n"
        "At 10:30 the wind rose.\r\n\r\nChapter one was long, she thought.\r\n".encode("utf-8-sig")
    )
    book = read_manuscript(path)
    assert (book.title, book.author) == ("", "")
    assert [c.title for c in book.chapters] == ["Opening", "CHAPTER ONE", "Chapter Twenty-Two: The Storm"]
    assert book.chapters[0].paragraphs == ("THE LIGHTHOUSE by Ada Writer",)
    assert book.chapters[1].paragraphs == ("The keeper climbed the stairs.", "It was cold.")
    # Colons in wrapped prose do not make speakers; a sentence about a chapter is not a heading.
    assert book.chapters[2].paragraphs == (
        "The rule was clear: nobody leaves. At 10:30 the wind rose.",
        "Chapter one was long, she thought.",
    )


def test_pasted_text_is_one_chapter_unless_it_has_headings():
    book = read_manuscript("  It was a dark night.\n\n\n\tThe   wind\nwas loud.  \n\nMaya: Who is there?\nTom: Me.\n")
    assert (book.title, [c.title for c in book.chapters]) == ("", ["Chapter 1"])
    assert book.chapters[0].paragraphs == (
        "It was a dark night.",
        "The wind was loud.",
        "Maya: Who is there?",
        "Tom: Me.",
    )
    headed = read_manuscript("# The Book\n\n## One\nFirst *stays* as typed.\n\n## Two\nSecond.")
    assert headed.title == "The Book"
    assert [(c.title, c.paragraphs) for c in headed.chapters] == [
        ("One", ("First *stays* as typed.",)),
        ("Two", ("Second.",)),
    ]


def test_dialogue_speaker_uses_the_script_name_rule():
    assert dialogue_speaker("Maya: Is the lamp lit?") == ("Maya", "Is the lamp lit?")
    assert dialogue_speaker("Old Tom：Not yet.") == ("Old Tom", "Not yet.")  # full-width colon
    assert dialogue_speaker("Anne de Vries: Hello.") == ("Anne de Vries", "Hello.")
    assert dialogue_speaker("小明：你好。") == ("小明", "你好。")
    for prose in (
        "He said, softly: go.",  # the script rule: no commas in a name
        "The rule was clear: nobody leaves.",  # prose: a lower-case word in the "name"
        "At 10:30 the wind rose.",  # a time
        "Maya:",  # nothing said
        "See https://example.org",
        "\\Note: not a speaker",
        "No colon here.",
    ):
        assert dialogue_speaker(prose) is None, prose


def _zip_with(source: Path, extra: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(out, "w") as copy:
        for info in original.infolist():
            if info.filename not in extra:
                copy.writestr(info, original.read(info))
        for name, data in extra.items():
            copy.writestr(name, data)
    return out.getvalue()


ENCRYPTION = """<?xml version="1.0"?>
<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" xmlns:enc="http://www.w3.org/2001/04/xmlenc#">
  <enc:EncryptedData>
    <enc:EncryptionMethod Algorithm="{algorithm}"/>
    <enc:CipherData><enc:CipherReference URI="EPUB/{target}"/></enc:CipherData>
  </enc:EncryptedData>
</encryption>"""


def test_a_drm_protected_epub_is_refused_but_font_obfuscation_is_not(novel: Path):
    drm = ENCRYPTION.format(algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc", target="text/one.xhtml")
    with pytest.raises(ManuscriptError, match=r"^locked\.epub is protected by DRM: its text is encrypted"):
        read_manuscript(_zip_with(novel, {"META-INF/encryption.xml": drm.encode()}), name="locked.epub")
    with pytest.raises(ManuscriptError, match="protected by DRM"):
        read_manuscript(_zip_with(novel, {"META-INF/rights.xml": b"<rights/>"}), name="adobe.epub")
    fonts = ENCRYPTION.format(algorithm="http://www.idpf.org/2008/embedding", target="fonts/serif.otf")
    assert read_manuscript(_zip_with(novel, {"META-INF/encryption.xml": fonts.encode()}), name="fonts.epub").chapters


def test_a_broken_epub_says_so(novel: Path):
    data = novel.read_bytes()
    with pytest.raises(ManuscriptError, match=r"^cut\.epub is a broken EPUB: it is not a complete zip archive"):
        read_manuscript(data[: len(data) // 2], name="cut.epub")
    no_container = io.BytesIO()
    with zipfile.ZipFile(no_container, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
    with pytest.raises(ManuscriptError, match="has no META-INF/container.xml"):
        read_manuscript(no_container.getvalue(), name="bare.epub")
    bad_opf = _zip_with(novel, {"EPUB/content.opf": b"<package><not-closed>"})
    with pytest.raises(
        ManuscriptError, match=r"^bad\.epub is a broken EPUB: its package file .* is malformed\. Download"
    ):
        read_manuscript(bad_opf, name="bad.epub")
    missing = io.BytesIO()
    with zipfile.ZipFile(novel) as original, zipfile.ZipFile(missing, "w") as copy:
        for info in original.infolist():
            if info.filename != "EPUB/text/two.xhtml":
                copy.writestr(info, original.read(info))
    with pytest.raises(
        ManuscriptError, match=r"^holey\.epub is a broken EPUB: it lists EPUB/text/two\.xhtml but does not"
    ):
        read_manuscript(missing.getvalue(), name="holey.epub")


def test_empty_manuscripts_say_there_is_nothing_to_read(tmp_path: Path):
    with pytest.raises(ManuscriptError, match=r"^The pasted text is empty: there is nothing to read aloud\.$"):
        read_manuscript("  \n\n\t ")
    (tmp_path / "blank.txt").write_text("\n\n   \n")
    with pytest.raises(ManuscriptError, match=r"^blank\.txt is empty"):
        read_manuscript(tmp_path / "blank.txt")
    with pytest.raises(ManuscriptError, match=r"^empty\.epub is empty"):
        read_manuscript(b"", name="empty.epub")
    with pytest.raises(ManuscriptError, match=r"^headings\.md has nothing to read aloud: it holds only headings"):
        read_manuscript(b"# Only a heading\n\n## And another\n", name="headings.md")
    images = epub.EpubBook()
    images.set_identifier("x")
    images.set_title("Pictures")
    page = _page("p1", "p1.xhtml", '<h1>Plates</h1><img src="a.png" alt=""/>')
    images.add_item(page)
    images.toc = [epub.Link("p1.xhtml", "Plates", "p1")]
    images.add_item(epub.EpubNcx())
    images.add_item(epub.EpubNav())
    images.spine = ["nav", page]
    epub.write_epub(str(tmp_path / "pictures.epub"), images)
    with pytest.raises(ManuscriptError, match=r"^pictures\.epub has nothing to read aloud"):
        read_manuscript(tmp_path / "pictures.epub")


def test_unsupported_unreadable_and_oversized_files_say_what_is_accepted(tmp_path: Path, monkeypatch):
    with pytest.raises(ManuscriptError, match=r"^book\.pdf is not a manuscript .* reads \.txt, \.md .* and \.epub"):
        read_manuscript(b"%PDF-1.7", name="book.pdf")
    with pytest.raises(ManuscriptError, match="'pdf' is not a manuscript format"):
        read_manuscript("text", fmt="pdf")
    with pytest.raises(ManuscriptError, match=r"^latin\.txt is not UTF-8 text .* save it as UTF-8"):
        read_manuscript("café".encode("latin-1"), name="latin.txt")
    with pytest.raises(ManuscriptError, match="looks like a binary file"):
        read_manuscript(b"\x00\x01\x02binary", name="notes.txt")
    with pytest.raises(ManuscriptError, match="There is no manuscript file at"):
        read_manuscript(tmp_path / "missing.epub")
    big = "word " * 1_000_001
    with pytest.raises(ManuscriptError, match=r"has 5,000,005 characters; a manuscript can have at most 5,000,000"):
        read_manuscript(big)
    monkeypatch.setattr(manuscript_module, "MAX_FILE_BYTES", 1_000_000)
    with pytest.raises(ManuscriptError, match=r"^huge\.epub is 1\.5 MB; a manuscript file can be at most 1 MB\.$"):
        read_manuscript(b"PK" + bytes(1_500_000), name="huge.epub")
    assert issubclass(ManuscriptError, InvalidInput)  # the interfaces' one translation point catches it
