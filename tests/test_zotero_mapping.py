"""Paper -> Zotero preprint JSON: pure, so every rule is checked without a network."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedsync.models import Paper
from feedsync.zotero import mapping

PAPER = Paper(
    key="2603.01234",
    arxiv_id="2603.01234",
    title="Sparse Routers Learn Faster Than Dense Ones",
    abstract="We route tokens sparsely.",
    authors=("Ana Ruiz", "Ludwig van Beethoven", "Wei"),
    published=datetime(2026, 3, 4, 17, 59, tzinfo=UTC),
    featured=date(2026, 3, 6),
    ai_keywords=("mixture of experts", "Routing", "routing", "x" * 300),
)


def test_a_paper_becomes_the_preprint_the_arxiv_translator_would_save() -> None:
    item = mapping.preprint(PAPER, collections=["BBBB2345", "AAAA2345"], topics=["moe", "llm"])
    assert item == {
        "itemType": "preprint",
        "title": "Sparse Routers Learn Faster Than Dense Ones",
        "abstractNote": "We route tokens sparsely.",
        "repository": "arXiv",
        "archiveID": "arXiv:2603.01234",
        "DOI": "10.48550/arXiv.2603.01234",
        "url": "https://arxiv.org/abs/2603.01234",
        "date": "2026-03-04",
        "libraryCatalog": "arXiv.org",
        "extra": "Hugging Face: https://huggingface.co/papers/2603.01234",
        "creators": [
            {"creatorType": "author", "firstName": "Ana", "lastName": "Ruiz"},
            {"creatorType": "author", "name": "Ludwig van Beethoven"},
            {"creatorType": "author", "name": "Wei"},
        ],
        "tags": [
            {"tag": "llm"},
            {"tag": "moe"},
            {"tag": "feedsync", "type": 1},
            {"tag": "arxiv:2603.01234", "type": 1},
        ],
        "collections": ["AAAA2345", "BBBB2345"],
    }


def test_only_preprint_fields_and_item_properties_are_produced() -> None:
    item = mapping.preprint(PAPER, collections=[], topics=["t"], keyword_tags=True)
    assert set(item) <= mapping.PREPRINT_FIELDS | mapping.ITEM_PROPERTIES
    assert "arXivID" not in item and "publisher" not in item and "number" not in item


def test_keyword_tags_are_deduplicated_and_bounded() -> None:
    item = mapping.preprint(PAPER, collections=[], topics=[], keyword_tags=True)
    names = [t["tag"] for t in item["tags"]]
    assert names == ["feedsync", "arxiv:2603.01234", "mixture of experts", "Routing"]
    assert all(len(n) <= mapping.MAX_TAG for n in names)


def test_empty_fields_are_left_out_and_long_text_is_cut_to_the_api_limit() -> None:
    paper = Paper(key="2603.1", arxiv_id="2603.1", title="T", abstract="é" * 40000)
    item = mapping.preprint(paper, collections=[], topics=[])
    assert "date" not in item and item["creators"] == []
    assert len(item["abstractNote"].encode()) <= mapping.MAX_FIELD_BYTES
    assert item["abstractNote"] == "é" * (mapping.MAX_FIELD_BYTES // 2)


def test_a_paper_without_an_arxiv_id_cannot_be_mapped() -> None:
    with pytest.raises(ValueError, match="no arXiv id"):
        mapping.preprint(Paper(key="title:x", title="T"), collections=[], topics=[])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Ana Ruiz", ("Ana", "Ruiz")),
        ("  Ana   Ruiz ", ("Ana", "Ruiz")),
        ("J. R. R. Tolkien", ("J. R. R.", "Tolkien")),
        ("Ana M. Ruiz", ("Ana M.", "Ruiz")),
        ("Jean-Luc Picard", ("Jean-Luc", "Picard")),
        ("Zoë O'Brien", ("Zoë", "O'Brien")),
        ("Wei Zhang", ("Wei", "Zhang")),
        ("Ludwig van Beethoven", None),
        ("Oscar de la Hoya", None),
        ("Martin Luther King Jr.", None),
        ("Maria Garcia Lopez", None),  # a double surname would be split wrong
        ("Ruiz, Ana", None),
        ("Ana Ruiz A.", None),
        ("Wei", None),
        ("张伟", None),
        ("DeepSeek-AI Team 2", None),
        ("OpenAI", None),
    ],
)
def test_names_are_split_only_where_that_is_safe(
    name: str, expected: tuple[str, str] | None
) -> None:
    creator = mapping.creator(name)
    if expected is None:
        assert creator == {"creatorType": "author", "name": " ".join(name.split())}
    else:
        assert creator == {
            "creatorType": "author",
            "firstName": expected[0],
            "lastName": expected[1],
        }


@given(st.text(min_size=1, max_size=60).filter(lambda s: s.strip()))
def test_a_creator_always_has_a_name_and_keeps_every_character(name: str) -> None:
    creator = mapping.creator(name)
    normalized = " ".join(name.split())
    if "name" in creator:
        assert creator["name"] == normalized
    else:
        assert creator["firstName"] and creator["lastName"]
        assert f"{creator['firstName']} {creator['lastName']}" == normalized


def test_pdf_links_have_a_derived_valid_key_and_attachment_fields_only() -> None:
    key = mapping.new_key()
    assert mapping.KEY.match(key)
    derived = mapping.attachment_key(key)
    assert mapping.KEY.match(derived) and derived == mapping.attachment_key(key) != key
    assert mapping.pdf_attachment(PAPER, key) == {
        "itemType": "attachment",
        "parentItem": key,
        "linkMode": "linked_url",
        "title": "arXiv PDF",
        "url": "https://arxiv.org/pdf/2603.01234",
        "contentType": "application/pdf",
        "tags": [{"tag": "feedsync", "type": 1}],
    }


def test_the_arxiv_id_of_an_item_comes_from_its_tag_else_its_archive_id() -> None:
    assert mapping.arxiv_id_of({"tags": [{"tag": "x"}, {"tag": "arXiv:2603.1"}]}) == "2603.1"
    assert mapping.arxiv_id_of({"tags": [], "archiveID": "arXiv:2603.2"}) == "2603.2"
    assert mapping.arxiv_id_of({"tags": [{"tag": "arxiv:"}], "archiveID": ""}) is None


def test_memberships_are_added_never_removed() -> None:
    data = {
        "key": "AAAA2345",
        "version": 7,
        "title": "Edited by its owner",
        "collections": ["USER2345", "DEAD2345"],
        "tags": [{"tag": "mine"}, {"tag": "llm"}],
    }
    merged = mapping.with_memberships(
        data, collections=["NEWC2345"], topics=["llm", "moe"], gone=["DEAD2345"]
    )
    assert merged == {
        "key": "AAAA2345",
        "version": 7,
        "title": "Edited by its owner",
        "collections": ["USER2345", "NEWC2345"],
        "tags": [{"tag": "mine"}, {"tag": "llm"}, {"tag": "moe"}],
    }
    assert mapping.with_memberships(merged, collections=["NEWC2345"], topics=["moe"]) is None
