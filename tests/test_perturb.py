"""SQuAD 2.0-style near-miss negatives made from answerable questions."""

from __future__ import annotations

import random

import pytest

from bertsearch.indexer.common.errors import ConfigError
from bertsearch.search.training.perturb import (
    ANTONYMS, KINDS, add_perturbed_negatives, exchange, flip_antonym, negate, ordinal, parse_weights, reword, swap_entity,
    swap_role, swap_word, words_by_ending,
)
from bertsearch.search.training.squad import SquadAnswer, SquadExample

CONTEXT = "The Eiffel Tower was finished in 1889 by Gustave Eiffel. It was the tallest building in Paris."


def test_swap_entity_replaces_a_mentioned_name_or_year_with_an_unmentioned_one_of_its_kind() -> None:
    pool = {"year": ["1889", "1901"], "name": ["Paris", "Lyon"], "number": ["12"]}
    rng = random.Random(0)
    seen = {swap_entity("When did Gustave Eiffel finish the tower in 1889?", CONTEXT, pool, rng) for _ in range(20)}
    assert seen == {"When did Lyon finish the tower in 1889?", "When did Gustave Eiffel finish the tower in 1901?"}
    # nothing of the question is in the paragraph, or no replacement is absent from it
    assert swap_entity("When did Napoleon die?", CONTEXT, pool, rng) is None
    assert swap_entity("When was it finished in 1889?", CONTEXT, {"year": ["1889"]}, rng) is None
    # the first word is never swapped (questions start with a capital)
    assert swap_entity("Paris has what?", CONTEXT, {"name": ["Lyon"]}, rng) is None


def test_flip_antonym_keeps_case_and_skips_opposites_the_paragraph_mentions() -> None:
    rng = random.Random(0)
    assert flip_antonym("What was the tallest building?", CONTEXT, rng) is None  # no pair for "tallest"
    assert flip_antonym("Who finished it first?", CONTEXT, rng) == "Who finished it last?"
    assert flip_antonym("Largest city?", CONTEXT, rng) == "Smallest city?"
    assert flip_antonym("Who finished it first?", CONTEXT + " It was the last one.", rng) is None
    assert all(ANTONYMS[ANTONYMS[w]] in ANTONYMS for w in ANTONYMS)


def test_negate_the_first_auxiliary() -> None:
    assert negate("Who was the architect?") == "Who was not the architect?"
    assert negate("When did Eiffel finish it?") == "When didn't Eiffel finish it?"
    assert negate("Does it rust?") == "Doesn't it rust?"
    assert negate("Who was not there?") is None
    assert negate("Name the architect.") is None


def test_perturbed_negatives_are_unanswerable_changed_questions_on_the_same_paragraph() -> None:
    context2 = "Lyon is a city in France. It was founded in 43 BC by the Romans."
    examples = [
        SquadExample("a", "When was the Eiffel Tower finished?", CONTEXT, (SquadAnswer("1889", CONTEXT.index("1889")),), False, "T"),
        SquadExample("b", "Who founded Lyon?", context2, (SquadAnswer("the Romans", context2.index("the Romans")),), False, "T"),
        SquadExample("c", "Who is impossible?", context2, (), True, "T"),
    ]
    out = add_perturbed_negatives(examples, ratio=1.0, seed=3)
    assert out[:3] == examples
    negatives = out[3:]
    assert {n.id for n in negatives} == {"a-perturbed", "b-perturbed"}
    for neg in negatives:
        original = next(e for e in examples if f"{e.id}-perturbed" == neg.id)
        assert neg.is_impossible and neg.answers == () and neg.context == original.context
        assert neg.question != original.question
    assert add_perturbed_negatives(examples, ratio=0.0) == examples


def test_swap_word_keeps_the_ending_and_picks_a_word_the_paragraph_lacks() -> None:
    rng = random.Random(0)
    words = words_by_ending(["completed", "destroyed", "building", "finished", "painting"])
    seen = {swap_word("When was the tower finished?", CONTEXT, words, rng) for _ in range(20)}
    # "finished" is the only shared content word and no other "-hed" word is at hand: left alone
    assert seen == {None}
    # "building" is shared; of the "-ing" words only "painting" is absent from the paragraph
    seen = {swap_word("Which building was the tallest?", CONTEXT, words, rng) for _ in range(20)}
    assert seen == {"Which painting was the tallest?"}


def test_perturbation_weights_pick_the_kinds() -> None:
    examples = [SquadExample(f"q{i}", "Who was the tallest building in Paris?", CONTEXT,
                             (SquadAnswer("Eiffel", CONTEXT.index("Eiffel")),), False, "T") for i in range(20)]
    negated = add_perturbed_negatives(examples, 1.0, weights=parse_weights("0,0,0,1"))[20:]
    assert len(negated) == 20 and {n.question for n in negated} == {"Who was not the tallest building in Paris?"}
    for bad in ("1,2,3,1,1,1,1,1,1", "1,x,1,1", "0,0,0,0", "-1,1,1,1", ""):
        with pytest.raises(ConfigError, match="perturbation weights"):
            parse_weights(bad)
    # the four-kind weights of earlier runs still parse, the newer kinds off
    assert parse_weights("3,1,2,1") == (3, 1, 2, 1, 0, 0, 0, 0) and len(KINDS) == 8


def test_ordinal_asks_for_the_second_unless_the_paragraph_has_one() -> None:
    assert ordinal("What was the tallest building in Paris?", CONTEXT) == "What was the second tallest building in Paris?"
    assert ordinal("Who finished it first?", CONTEXT) == "Who finished it second?"
    assert ordinal("What is the most famous tower?", CONTEXT) == "What is the second most famous tower?"
    # "interest" is no superlative; a paragraph that says "second" may answer the changed question
    assert ordinal("What interest did Eiffel have?", CONTEXT) is None
    assert ordinal("What was the tallest building?", CONTEXT + " The Louvre was the second.") is None
    assert ordinal("Tallest building in Paris?", CONTEXT) is None  # the first word is left alone


def test_swap_role_uses_another_name_of_the_paragraph_never_the_answer_or_a_variant() -> None:
    context = "In 1107 Bohemond, son of Robert Guiscard, and his army besieged Dyrrachium with Robert."
    rng = random.Random(0)
    seen = {swap_role("Who did Robert lead against Dyrrachium?", context, ["Bohemond"], rng) for _ in range(30)}
    # "Robert" becomes neither "Robert Guiscard" (a variant) nor "Bohemond" (the answer), and
    # "Dyrrachium" not "Robert" (already in the question)
    assert seen == {"Who did Robert lead against Robert Guiscard?"}
    assert swap_role("Who did Robert lead?", "Robert and Bohemond left.", ["Bohemond"], rng) is None
    # a capitalised word that opens a sentence ("They") is not taken for a name
    seen = {swap_role("Who besieged Dyrrachium in 1107?", context + " They met Tancred in 1108.", ["Bohemond"], rng)
            for _ in range(30)}
    assert seen == {"Who besieged Dyrrachium in 1108?", "Who besieged Robert Guiscard in 1107?",
                    "Who besieged Tancred in 1107?", "Who besieged Robert in 1107?"}


def test_reword_uses_another_word_of_the_paragraph_with_the_same_ending() -> None:
    context = "The treaty ended the occupation of the region and the war. Its signature ended a famine."
    rng = random.Random(0)
    seen = {reword("Which treaty ended the war?", context, ["Its signature"], rng) for _ in range(40)}
    # "treaty" (-aty) and "ended" (-ded) have no other word of their ending in the paragraph, and
    # "war" is too short to count as a content word: nothing to swap
    assert seen == {None}
    context = "The northern treaty ended the occupation of the region. The southern battle ended the invasion."
    seen = {reword("Which treaty ended the occupation?", context, ["The northern treaty"], rng) for _ in range(40)}
    # "occupation" -> "invasion" (same "-ion" ending, in the paragraph); "region" is also "-ion";
    # the answer's words ("northern", "treaty") are never used
    assert seen == {"Which treaty ended the invasion?", "Which treaty ended the region?"}
    assert reword("Who was he?", context, [], rng) is None


def test_exchange_swaps_two_mentions_of_one_kind_but_never_list_items() -> None:
    context = "The Hmong are 11.2% of the Asians of Fresno; in 2010 the Lao were 4.1% of them, after 1990."
    rng = random.Random(0)
    assert exchange("Hmong are what fraction of Asians?", context, rng) is None  # the first word is never a name
    assert exchange("What fraction of Asians are Hmong?", context, rng) == "What fraction of Hmong are Asians?"
    # two years trade places; a name and a year never do
    seen = {exchange("How many Lao were there in 2010 after 1990?", context, rng) for _ in range(20)}
    assert seen == {"How many Lao were there in 1990 after 2010?"}
    # "Hmong and Lao" is a list: its order does not change the answer; no names left, no shared
    # words with the same ending, so nothing to exchange
    assert exchange("What share were the Hmong and Lao?", context, rng) is None
    assert exchange("What share were the Hmong, or the Lao?", context, rng) is None
    # without two names of a kind, two content words with the same ending are exchanged
    context = "The regional treaty ended the occupation and the rebellion of the province."
    assert exchange("Which treaty ended the occupation of the rebellion?", context, rng) == (
        "Which treaty ended the rebellion of the occupation?")
