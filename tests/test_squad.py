"""SQuAD loading, strided windows and training labels on handmade examples."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bertsearch.indexer.common.errors import ConfigError
from bertsearch.search.training.squad import (
    NO_ANSWER_INDEX,
    SquadAnswer,
    SquadExample,
    add_hard_negatives,
    add_negatives,
    label_window,
    load_squad,
    make_train_features,
    remove_answer_sentences,
    squad_paragraphs,
    tokenize_windows,
)

FILLER = " ".join(f"Sentence number {i} says nothing useful about towers." for i in range(12))
CONTEXT = f"{FILLER} The Eiffel Tower was finished in 1889 by Gustave Eiffel. {FILLER}"


@pytest.fixture(scope="module")
def tokenizer(minilm_path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def _squad(qas: list[dict], context: str = CONTEXT, version: str = "v2.0") -> dict:
    return {"version": version, "data": [{"title": "Eiffel", "paragraphs": [{"context": context, "qas": qas}]}]}


def _answer(text: str, context: str = CONTEXT) -> dict:
    return {"text": text, "answer_start": context.index(text)}


def test_load_plain_and_gzipped_v1_and_v2(tmp_path: Path) -> None:
    data = _squad([
        {"id": "a", "question": "When?", "answers": [_answer("1889")]},
        {"id": "b", "question": "Who painted it?", "answers": [], "is_impossible": True},
    ])
    plain = tmp_path / "d.json"
    plain.write_text(json.dumps(data), encoding="utf-8")
    gz = tmp_path / "d.json.gz"
    gz.write_bytes(gzip.compress(json.dumps(data).encode()))
    for path in (plain, gz):
        examples = load_squad(path)
        assert [e.id for e in examples] == ["a", "b"]
        assert examples[0].answers == (SquadAnswer("1889", CONTEXT.index("1889")),)
        assert not examples[0].is_impossible and examples[1].is_impossible
        assert examples[0].title == "Eiffel"
    assert len(load_squad(plain, limit=1)) == 1


def test_paragraphs_in_file_order_with_their_questions(tmp_path: Path) -> None:
    data = {"version": "1.1", "data": [
        {"title": "Eiffel", "paragraphs": [
            {"context": CONTEXT, "qas": [{"id": "a", "question": "When?", "answers": [_answer("1889")]}]},
            {"context": "No questions here.", "qas": []},
        ]},
        {"title": "Rivers", "paragraphs": [
            {"context": "The Nile flows north.", "qas": [
                {"id": "b", "question": "Where?", "answers": [_answer("north", "The Nile flows north.")]},
                {"id": "c", "question": "Who?", "answers": []},
            ]},
        ]},
    ]}
    path = tmp_path / "d.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    paragraphs = list(squad_paragraphs(path))
    assert [(p.pid, p.title, len(p.examples)) for p in paragraphs] == [(0, "Eiffel", 1), (1, "Eiffel", 0), (2, "Rivers", 2)]
    assert [e.id for p in paragraphs for e in p.examples] == [e.id for e in load_squad(path)] == ["a", "b", "c"]
    assert paragraphs[2].examples[1].is_impossible and paragraphs[2].examples[0].context == "The Nile flows north."
    data["data"][1]["paragraphs"][0]["qas"][0].pop("question")
    path.write_text(json.dumps(data), encoding="utf-8")
    assert len(load_squad(path, limit=1)) == 1  # the broken question is never reached
    with pytest.raises(ConfigError, match="not in the SQuAD layout"):
        list(squad_paragraphs(path))


def test_missing_or_malformed_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_squad(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"no": "data"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="not a SQuAD file"):
        load_squad(bad)


@pytest.mark.parametrize("answer", ["1889", "Gustave Eiffel", "The Eiffel Tower was finished"])
def test_labelled_span_is_exactly_the_answer(tokenizer, answer: str) -> None:
    ex = SquadExample("x", "When was the tower finished?", CONTEXT, (SquadAnswer(answer, CONTEXT.index(answer)),))
    windows = tokenize_windows(tokenizer, [ex.question], [ex.context], max_seq_len=64, stride=16)
    assert len(windows) > 3  # the context is long: several windows
    labelled = 0
    for w in range(len(windows)):
        offsets = windows.offsets[w]
        start, end = label_window(offsets, ex.answers[0])
        if start == NO_ANSWER_INDEX:
            assert end == NO_ANSWER_INDEX
            context_chars = [o for o in offsets if o is not None]
            held = context_chars[0][0] <= ex.answers[0].start and context_chars[-1][1] >= ex.answers[0].start + len(answer)
            assert not held  # only windows that cannot hold the whole answer are no-answer
            continue
        labelled += 1
        assert offsets[start] is not None and offsets[end] is not None  # inside the context
        assert CONTEXT[offsets[start][0] : offsets[end][1]] == answer
    assert labelled >= 1


def test_question_tokens_carry_no_offsets(tokenizer) -> None:
    windows = tokenize_windows(tokenizer, ["Which tower?"], ["The Eiffel Tower."], max_seq_len=32, stride=8)
    assert len(windows) == 1
    types = windows.token_type_ids[0].tolist()
    offsets = windows.offsets[0]
    assert offsets[0] is None and offsets[-1] is None  # [CLS] and the final [SEP]
    for t, o in zip(types, offsets[:-1]):
        assert (o is not None) == (t == 1)


def test_train_features_label_unanswerable_and_far_windows_at_cls(tokenizer) -> None:
    answerable = SquadExample("a", "When?", CONTEXT, (SquadAnswer("1889", CONTEXT.index("1889")),))
    impossible = SquadExample("b", "When?", CONTEXT, (), True)
    feats = make_train_features([answerable, impossible], tokenizer, max_seq_len=64, stride=16)
    windows_a = tokenize_windows(tokenizer, ["When?"], [CONTEXT], 64, 16)
    n_a = len(windows_a)
    assert len(feats) == 2 * n_a
    assert all(feats.start_positions[n_a:] == NO_ANSWER_INDEX) and all(feats.end_positions[n_a:] == NO_ANSWER_INDEX)
    answered = [w for w in range(n_a) if feats.start_positions[w] != NO_ANSWER_INDEX]
    assert answered and len(answered) < n_a
    for w in answered:
        o = windows_a.offsets[w]
        assert CONTEXT[o[feats.start_positions[w]][0] : o[feats.end_positions[w]][1]] == "1889"


def test_long_questions_are_cut_to_leave_room_for_the_context(tokenizer) -> None:
    question = "why " * 200
    windows = tokenize_windows(tokenizer, [question], ["The answer is here."], max_seq_len=96, stride=16,
                               max_question_tokens=32)
    assert len(windows) == 1
    assert sum(o is not None for o in windows.offsets[0]) > 0


def test_negatives_pair_questions_with_other_paragraphs_of_the_article() -> None:
    paragraphs = [f"Paragraph {i} talks about topic {i}." for i in range(5)]
    examples = [
        SquadExample(f"q{i}", f"What about {i}?", p, (SquadAnswer(f"topic {i}", p.index(f"topic {i}")),), False, "A")
        for i, p in enumerate(paragraphs)
    ]
    out = add_negatives(examples, ratio=1.0, seed=0)
    negatives = out[len(examples):]
    assert out[: len(examples)] == examples
    assert len(negatives) == len(examples)
    for neg in negatives:
        original = next(e for e in examples if f"{e.id}-neg" == neg.id)
        assert neg.is_impossible and neg.answers == ()
        assert neg.context != original.context and neg.context in paragraphs
        assert neg.question == original.question
        assert neg.group_key == original.id  # asked of two paragraphs: one group (shared normalisation)
    # a paragraph holding the answer text is never used as a negative
    same = [SquadExample("s", "Q?", "x is 1.", (SquadAnswer("1", 5),), False, "B"),
            SquadExample("t", "Q?", "y is 1 too.", (SquadAnswer("1", 5),), False, "B")]
    assert add_negatives(same, ratio=1.0) == same


def test_hard_negatives_drop_the_answer_sentence() -> None:
    context = "Paris is big. The tower was finished in 1889. It is made of iron. Many people visit it."
    ex = SquadExample("q", "When was it finished?", context, (SquadAnswer("1889", context.index("1889")),))
    assert remove_answer_sentences(context, ex.answers) == "Paris is big. It is made of iron. Many people visit it."
    out = add_hard_negatives([ex], ratio=1.0)
    assert len(out) == 2 and out[1].id == "q-hard" and out[1].is_impossible and out[1].answers == ()
    assert "1889" not in out[1].context and out[1].question == ex.question
    # the answer text elsewhere in the paragraph, or too little left: no hard negative
    twice = "In 1889 it opened. The tower was finished in 1889. It is tall."
    assert remove_answer_sentences(twice, (SquadAnswer("1889", twice.index("finished") + 12),)) is None
    short = "The tower was finished in 1889. It is tall."
    assert remove_answer_sentences(short, (SquadAnswer("1889", short.index("1889")),)) is None


def test_train_features_number_each_questions_group_within_its_article(tokenizer) -> None:
    from bertsearch.search.training.squad import make_train_features

    ex = lambda i, group, title: SquadExample(f"q{i}", "When?", CONTEXT, (SquadAnswer("1889", CONTEXT.index("1889")),),  # noqa: E731
                                              False, title, group)
    examples = [ex(0, "g", "T"), ex(1, "g", "T"), ex(2, "", "T"), ex(3, "g", "T#1"), ex(4, "g", "T")]
    features = make_train_features(examples, tokenizer, chunk=2)  # the group crosses the chunks of tokenisation
    (a, b, c, d, e) = features.groups.tolist()
    assert a == b == e and len({a, c, d}) == 3  # its own id is a group of its own; a repeated article's copy too
