"""search/naming.py: which documents a question names, by their file names."""

from __future__ import annotations

import pytest

from bertsearch.search.naming import common_words, document_names, file_name_words, named_documents
from bertsearch.search.types import Hit


@pytest.mark.parametrize("path,name", [
    ("man/coreutils/ls.1.txt", ("ls",)),
    ("man/rsync/rsyncd.conf.5.txt", ("rsyncd.conf",)),
    ("docs/git-rebase.html", ("git", "rebase")),
    ("C:\\docs\\ssh_config.5.txt", ("ssh", "config")),
    ("debian-policy/copyright-format-1.0.txt", ("copyright", "format", "1.0")),  # a version is no man section
    ("man/gawk/fork.3am.txt", ("fork",)),
    ("zh/配置说明.html", ("配置说明",)),
    ("Beyonce/123.txt", ()),  # a number names nothing
    ("docs/1.0.txt", ()),  # nor does a version
    ("man/coreutils/[.1.txt", ()),
    ("man/util-linux/time.1.txt", ("time",)),  # a common word is a name (where it names: see below)
])
def test_a_documents_name_is_its_file_name_without_extensions(path: str, name: tuple[str, ...]) -> None:
    assert document_names(path) == name


def test_the_common_words_are_words_of_general_questions() -> None:
    common = common_words()
    assert len(common) > 1000 and {"time", "file", "which", "at", "date"} <= common
    assert not {"ls", "grep", "rsync", "wipefs", "curl", "ssh"} & common


def _hit(path: str, document_id: int) -> Hit:
    return Hit(score=0.5, chunk_id=document_id, document_id=document_id, path=path, title=None, text="x",
               start=0, end=1, ranks={"dense": 1})


def test_a_question_that_names_a_document_marks_its_passages_and_the_others() -> None:
    hits = [_hit("man/rsync/rsync.1.txt", 1), _hit("man/util-linux/wipefs.8.txt", 2), _hit("man/rsync/rsync.1.txt", 1)]
    assert named_documents("How do I do a dry run of wipefs?", hits) == [(0.0, 1.0), (1.0, 0.0), (0.0, 1.0)]
    assert named_documents("How do I do a dry run?", hits) == [(0.0, 0.0)] * 3
    # a common word in the question names no page called so: "time" is not time.1, "at" not at.1
    pages = [_hit("ls.1.txt", 1), _hit("time.1.txt", 2), _hit("at.1.txt", 3)]
    assert named_documents("Which ls option lists files at full time?", pages) == [(1.0, 0.0), (0.0, 1.0), (0.0, 1.0)]
    # unless it is named as a tool is
    split = [_hit("split.1.txt", 1), _hit("ls.1.txt", 2)]
    assert named_documents("Which split option sets the suffix length?", split) == [(1.0, 0.0), (0.0, 1.0)]
    assert named_documents("How do I split a file?", split) == [(0.0, 0.0), (0.0, 0.0)]
    assert named_documents("", split) == [(0.0, 0.0), (0.0, 0.0)]
    # two copies of a page (two folders): both named
    assert named_documents("Which wc option counts bytes?", [_hit("a/wc.1.txt", 1), _hit("b/wc.1.txt", 2)]) == \
        [(1.0, 0.0), (1.0, 0.0)]


def test_where_names_overlap_the_longer_one_is_named() -> None:
    keys = [_hit("ssh_config.5.txt", 1), _hit("ssh.1.txt", 2), _hit("ssh-keygen.1.txt", 3)]
    assert named_documents("Which ssh_config option sets the timeout?", keys) == [(1.0, 0.0), (0.0, 1.0), (0.0, 1.0)]
    assert named_documents("Which ssh option and which ssh-keygen flag?", keys) == [(0.0, 1.0), (1.0, 0.0), (1.0, 0.0)]
    # a part of a longer name in the question is no name, whatever else was read
    assert named_documents("Which ssh_config option sets the timeout?", [_hit("ssh.1.txt", 2)]) == [(0.0, 0.0)]
    assert named_documents("How do I edit rsyncd.conf.", [_hit("rsyncd.conf.5.txt", 1)]) == [(1.0, 0.0)]


def test_a_chinese_question_names_a_page_by_its_latin_or_chinese_name() -> None:
    pages = [_hit("man1/ls.1.txt", 1), _hit("zh/配置说明.html", 2), _hit("man1/cp.1.txt", 3)]
    assert named_documents("ls的-l选项是什么？", pages) == [(1.0, 0.0), (0.0, 1.0), (0.0, 1.0)]
    assert named_documents("配置说明里默认端口是多少", pages) == [(0.0, 1.0), (1.0, 0.0), (0.0, 1.0)]
    # the longer of two Chinese names, none across punctuation; a common word beside Chinese is a tool's name
    nested = [_hit("zh/配置说明.html", 1), _hit("zh/配置.html", 2), _hit("man1/find.1.txt", 3)]
    assert named_documents("配置说明里写了什么", nested) == [(1.0, 0.0), (0.0, 1.0), (0.0, 1.0)]
    assert named_documents("配，置", nested) == [(0.0, 0.0)] * 3
    assert named_documents("find的-name选项是什么", nested) == [(0.0, 1.0), (0.0, 1.0), (1.0, 0.0)]


def test_the_common_words_are_those_of_enough_questions() -> None:
    from bertsearch.search.training.common_words import common_words as count

    questions = ["What time is it?", "What time is the ls of it?", "Is it rsyncd.conf?"]
    assert count(questions, 2) == ["is", "it", "time", "what"]
    assert "rsyncd.conf" in count(questions, 1)
