"""Question-answer pairs made from the structure of technical documents, in SQuAD format.

Each definition-list entry of a document (:func:`bertsearch.search.entries.parse_entries`) is a
fact: its description, rewritten into a question ("Keep (don't delete) input files" -> "Which
gzip option keeps input files?"), asks for its term. A fact gives several question forms, all
about one passage of about 150-200 words around the entry that keeps its neighbours in the list
(the reader must tell the entry from them). The answer is the whole term (``--keep``); the head
as written (``-k, --keep``) and an option with its argument (``--bytes=SIZE``) are alternative
answers. Negatives pair a question with a passage of the same document that lacks its term
(``is_impossible``, which :func:`~bertsearch.search.training.squad.load_squad` reads: an item
with no answers is unanswerable).

The output is deterministic: a fixed seed, documents in sorted order, ``max_per_document``
questions at most from one document. ``--holdout-frac`` puts whole documents, chosen by a hash of
their path under their source folder, into ``OUT.heldout.json``, never trained on.

    python -m bertsearch.search.training.techqa --out techqa.json \\
        [--mix-squad train-v1.1.json --squad-limit 2000] [--holdout-frac 0.2] SOURCES...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from bertsearch.search.entries import Entry, parse_entries

VERSION = "techqa-1"
_VERBS = frozenset("""
abort accept access act add elide stay adjust align allow alter annotate append apply ask assign assume attach
avoid back behave bind block break bring build bypass calculate call cancel cause change check choose
clean clear close collapse collect color combine compare compile complete compress compute concatenate
configure confirm connect consider construct contain continue control convert copy count create cut
decode decompress decrease define delete deliver dereference descend describe detach detect determine
disable discard display divide do download drop dump echo edit emit emulate enable encode encrypt end
enforce ensure enter erase escape evaluate exclude execute exit expand expect explain export extract
fail fetch fill filter find finish fix flush fold follow force format forward generate get give govern group
guess handle hide hold identify ignore implement import include increase indent indicate inherit
initialize insert inspect install interpret invert invoke join keep kill label launch leave let limit
link list listen load locate lock log look make manage map mark match merge modify monitor mount move
name negate normalize note notify number omit open operate output override overwrite pack pad parse
pass pause perform permit pick place play populate precede prefer prefix prepend preserve prevent print
process produce prompt protect provide prune publish pull purge push put query queue quit quote raise
read rebuild receive recognize record recurse redirect reduce refer refresh register reject release
reload remove rename render reorder repeat replace report request require reset resize resolve restart
restore restrict resume retain retry return reuse reverse rewrite rotate round run save scale scan
search select send separate serve set share shift show shrink shut sign simulate skip sleep sort specify
split squeeze start stop store strip submit substitute suppress swap switch sync synchronize tell
terminate test touch trace track transfer transform translate treat trim truncate try turn unlink
unpack unset update upgrade upload use validate verify view wait warn watch wrap write zero
""".split())
_ADVERBS = frozenset("always never also only silently recursively immediately automatically explicitly "
                     "quietly forcibly interactively first then not".split())
_IRREGULAR = {"do": "does", "go": "goes", "be": "is", "have": "has"}
_SKIP_DESCRIPTIONS = re.compile(r"^(?:display|print|show|output|give)s? (?:this |a |the )?(?:short |brief )?(?:help|usage|brief)|"
                                r"^(?:output|print|display|show) (?:the )?version|^likewise|^see\b|^synonym|^alias|"
                                r"^ignored\b|^obsolete|^deprecated|^reserved\b|^undocumented|^this option", re.I)
_PARENS = re.compile(r"\s*\([^()]{0,80}\)")
_FIRST_CLAUSE = re.compile(r"^(.{8,220}?)(?:[.;:](?=\s|$)|\s--?\s|$)")
_LEAD = re.compile(r"^(?:if set,?|when set,?|if specified,?|by default,|(?:with|when used with) -[\w-]{1,30},)\s+", re.I)
_SUBJECT = re.compile(r"(?:this|that)\s+\w+\s+(\w+)|(?:the)\s+(?:file|directory|folder|entry|option|flag|variable|function|command|setting|"
                      r"field|value|parameter|call|macro|constant)\s+(\w+)", re.I)
_MARKUP = re.compile(r"[`*]{1,2}")
_NOUN_LEADS = re.compile(r"^(?:this is|this file is|these are|it is)\s+", re.I)


@dataclass
class Document:
    """A document read as the product reads it, with the name questions use (program or module)."""

    path: Path
    key: str
    text: str
    title: str
    program: str
    language: str = ""


@dataclass
class Fact:
    """One entry of a document turned into questions about one passage."""

    entry: Entry
    context_start: int
    context_end: int
    questions: list[str] = field(default_factory=list)


def program_name(text: str, title: str) -> str:
    """The name a document's questions use: the first name of a man page's or pydoc's NAME
    section ("gzip, gunzip, zcat - ..." -> gzip), else nothing."""
    m = re.search(r"^NAME\n[ \t]+([^\n]{1,200})", text[:4000], re.MULTILINE)
    if not m:
        return ""
    name = re.split(r" (?:-|\u2014|\u2013|\\-) ", m.group(1))[0].split(",")[0].strip()
    return name if re.fullmatch(r"[\w.+:-]{1,40}", name) else ""


def _conj(verb: str) -> str:
    if verb in _IRREGULAR:
        return _IRREGULAR[verb]
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _base(word: str) -> str | None:
    """The base form of a verb in the third person ("specifies" -> "specify"), if it is one."""
    for cut, add in (("ies", "y"), ("sses", "ss"), ("shes", "sh"), ("ches", "ch"), ("xes", "x"), ("oes", "o"),
                     ("es", "e"), ("s", "")):
        if word.endswith(cut) and word[: -len(cut)] + add in _VERBS:
            return word[: -len(cut)] + add
    return None


@dataclass(frozen=True)
class Clause:
    """A description as the predicate of a question: ``third`` ("keeps input files") and ``base``
    ("keep input files"), or, for a noun phrase, only ``phrase`` ("the per-user configuration file")."""

    phrase: str
    third: str = ""
    base: str = ""


def rewrite(description: str) -> Clause | None:
    """The first clause of a description, as a verb phrase when it is one (see :class:`Clause`)."""
    text = _MARKUP.sub("", _PARENS.sub("", description)).strip()
    if _SKIP_DESCRIPTIONS.search(text):
        return None
    text = _LEAD.sub("", text)
    subject = _SUBJECT.match(text)
    if subject and _base(subject.group(subject.lastindex or 1).lower()):
        text = text[subject.start(subject.lastindex or 1):]  # "This directory contains X" -> "contains X"
    m = _FIRST_CLAUSE.match(text)
    if not m:
        return None
    clause = m.group(1).strip().rstrip(",")
    if re.search(r"//|[{};<>=]|->|\w\(", clause):
        return None  # code, not a description
    words = clause.split()
    if len(words) < 2 or len(words) > 20 or not words[0].strip(",.'\"").isalpha():
        return None
    if sum(w.isalpha() and len(w) >= 3 for w in words) < 2:
        return None  # a row of a table of values, not a description
    if words[0][0].isupper() and (words[0][1:].islower() or len(words[0]) == 1):
        words[0] = words[0][0].lower() + words[0][1:]
    lead = 0
    while lead < len(words) - 1 and (words[lead].lower() in _ADVERBS or words[lead].endswith("ly")) and words[lead] != "not":
        lead += 1
    first = words[lead].lower()
    if first in ("do", "don't") and lead + 1 < len(words) and (words[lead + 1] == "not" or first == "don't"):
        rest = words[lead + 2:] if first == "do" else words[lead + 1:]
        if not rest:
            return None
        return Clause(" ".join(words), " ".join(words[:lead] + ["does", "not"] + rest), "")
    if first in _VERBS:
        third = words[:lead] + [_conj(first)] + _and_verbs(words[lead + 1:], _conj)
        return Clause(" ".join(words), " ".join(third), " ".join(words))
    base = _base(first)
    if base is None and _looks_imperative(words, lead):
        base = first
        third = words[:lead] + [_conj(first)] + _and_verbs(words[lead + 1:], _conj)
        return Clause(" ".join(words), " ".join(third), " ".join(words))
    if base is not None:
        return Clause(" ".join(words), " ".join(words),
                      " ".join(words[:lead] + [base] + _and_verbs(words[lead + 1:], lambda w: _base(w) or w)))
    return Clause(_NOUN_LEADS.sub("", " ".join(words)))


_NOT_VERBS = frozenset("the a an this that these those all no any each every some if when for by as in on of to with "
                       "without per one two like same similar unlike see and or but not only new old".split())
_OBJECT_WORDS = frozenset("the a an all any each every only to on in from with into at up out off down over its "
                          "their this that these those no some one two more less".split())


def _looks_imperative(words: list[str], lead: int) -> bool:
    """A verb we do not list, known by what follows it ("elide all entries", "stay on this file system")."""
    word = words[lead]
    if word.lower() in _NOT_VERBS or not word.isalpha() or not word.islower() or word.endswith(("ing", "ed", "ly", "s", "al", "ion", "ive")):
        return False
    nxt = words[lead + 1] if lead + 1 < len(words) else ""
    return nxt.lower() in _OBJECT_WORDS or (nxt.isupper() and nxt.isalpha() and len(nxt) > 1)


def _and_verbs(words: list[str], change: Any) -> list[str]:
    """"truncate" in "collapse and truncate the text" takes the form of the first verb too."""
    out = list(words)
    for i in range(len(out) - 1):
        if out[i] in ("and", "or") and i + 1 < len(out) and (out[i + 1] in _VERBS or _base(out[i + 1])):
            out[i + 1] = change(_base(out[i + 1]) or out[i + 1]) if change is _conj else change(out[i + 1])
    return out


def questions_for(entry: Entry, doc: Document, rng: random.Random, per_fact: int) -> list[str]:
    """Up to ``per_fact`` questions asking for the term of ``entry`` (distinct forms)."""
    forms = _forms(entry, doc)
    forms = [q for q in dict.fromkeys(forms) if q and entry.term.lower() not in q.lower()]
    rng.shuffle(forms)
    return [q[0].upper() + q[1:] for q in forms[:per_fact]]


def _forms(entry: Entry, doc: Document) -> list[str]:
    prog = doc.program
    kind = entry.kind
    if kind == "default":
        return _default_forms(entry, prog)
    c = rewrite(entry.description)
    if c is None:
        return []
    of = f" of {prog}" if prog else ""
    pp = f"{prog} " if prog else ""
    with_prog = f" with {prog}" if prog else ""
    if kind == "status":
        cond = re.sub(r"^(?:if|when)\s+", "", c.phrase)
        if len(cond.split()) < 2:
            return []
        return [f"what exit status does {prog or 'the program'} return when {cond}?",
                f"which exit code{of} means {cond}?",
                f"what does {prog or 'it'} exit with if {cond}?"]
    if kind == "error":
        name = f"{prog}()" if prog else "the call"
        if c.third or re.search(r"\b(?:is|are|was|were|has|have|does|did|can|could|not|would)\b", c.phrase):
            return [f"which error does {name} fail with when {c.phrase}?",
                    f"what errno does {name} set if {c.phrase}?",
                    f"which error code means {c.phrase}?"]
        return [f"which error{of} means {c.phrase}?", f"what errno does {name} set for {c.phrase}?"]
    label = {"option": "option", "function": "function", "variable": "environment variable", "constant": "flag",
             "path": "file", "command": "command", "setting": "setting", "parameter": "parameter"}.get(kind)
    if kind == "row":
        label = entry.subject or "entry"
    if label is None:
        return []
    if kind == "path" and not c.third:
        np = c.phrase if re.match(r"(?:the|a|an)\b", c.phrase) else "the " + c.phrase
        return [f"which file is {np}?", f"where is {np}{' of ' + prog if prog else ''}?", f"what is the path of {np}?"]
    if not c.third:
        if kind in ("option", "command", "setting", "constant", "parameter", "row"):
            if re.match(r"(?:the|a|an|same|like|equivalent|similar|identical)\b", c.phrase):
                return [f"which {pp}{label} is {c.phrase}?", f"which {label}{of} is {c.phrase}?"]
            if re.search(r"\b(?:is|are|was|were|has|have|does|can|will|must|should)\b", c.phrase):
                return [f"which {pp}{label} means {c.phrase}?"]
            return [f"which {pp}{label} is for {c.phrase}?", f"what {label}{of} do I use for {c.phrase}?"]
        if kind == "variable":
            return [f"which environment variable holds {c.phrase}?", f"what environment variable{of} sets {c.phrase}?"]
        if kind == "function":
            return [f"which function returns {c.phrase}?"]
        return []
    forms = [f"which {pp}{label} {c.third}?", f"which {label}{of} {c.third}?"]
    if kind == "option":
        forms += [f"which command-line option {c.third}?"]
        if c.base:
            forms += [f"how do I {c.base}{with_prog}?", f"what flag makes {prog or 'it'} {c.base}?",
                      f"what {pp}option should I use to {c.base}?"]
    elif kind == "function":
        where = f" in {doc.language}" if doc.language else ""
        forms = [f"which function {c.third}?", f"which {pp}function {c.third}?"]
        if c.base:
            forms += [f"how do I {c.base}{where}?", f"what function should I call to {c.base}?"]
    elif kind == "variable":
        forms += [f"which environment variable {c.third}?"]
        if c.base:
            forms += [f"what environment variable can I set to {c.base}?"]
    elif kind in ("command", "setting") and c.base:
        forms += [f"how do I {c.base}{with_prog}?" if kind == "command" else f"how do I configure {prog or 'it'} to {c.base}?"]
    elif kind == "path":
        forms = [f"which file {c.third}?", f"which {pp}file {c.third}?"]
    return forms


def _default_forms(entry: Entry, prog: str) -> list[str]:
    subject = entry.subject
    if not subject:
        return []
    of = f" of {prog}" if prog else ""
    if subject.startswith("-"):
        owner = f"{prog}'s {subject}" if prog else subject
        return [f"what is the default value of {owner}?", f"what does {subject} default to{' in ' + prog if prog else ''}?",
                f"if I don't give {subject}, what value does {prog or 'it'} use?"]
    noun = subject.lower() if not subject.isupper() else subject
    return [f"what is the default {noun}{of}?", f"what {noun} does {prog or 'it'} use by default?",
            f"by default, what is the {noun}{of}?"]


def passage(text: str, lo: int, hi: int, rng: random.Random, words: tuple[int, int] = (150, 200)) -> tuple[int, int]:
    """A passage of whole lines around ``text[lo:hi]`` of about ``words`` words: the span, then
    lines added above and below in a random share (its neighbours in a list). A span longer than
    the budget is cut after it begins."""
    target = rng.randint(*words)
    start = text.rfind("\n", 0, lo) + 1
    end = text.find("\n", hi)
    end = len(text) if end < 0 else end
    if len(text[start:end].split()) > target:  # a long entry: its first lines
        cut = end
        for m in re.finditer(r"\n", text[hi:end]):
            if len(text[start:hi + m.start()].split()) >= target:
                cut = hi + m.start()
                break
        return start, max(cut, hi)
    up_share = rng.random()
    budget = target - len(text[start:end].split())
    up, down = int(budget * up_share), budget - int(budget * up_share)
    while up > 0 and start > 0:
        prev = text.rfind("\n", 0, start - 1) + 1
        up -= len(text[prev:start].split())
        start = prev
    down += max(0, up)
    while down > 0 and end < len(text):
        nxt = text.find("\n", end + 1)
        nxt = len(text) if nxt < 0 else nxt
        down -= len(text[end:nxt].split())
        end = nxt
    return start, end


def _alternatives(text: str, entry: Entry) -> list[tuple[str, int]]:
    """The other acceptable answers: the head as written, an option with its argument."""
    alts = []
    full = text[entry.full_start:entry.full_end]
    if full != entry.term:
        alts.append((full, entry.full_start))
    if entry.kind == "option":
        m = re.compile(r"[^\s,]{1,60}").match(text, entry.start)
        if m and m.group() != entry.term and m.group() != full:
            alts.append((m.group().rstrip(","), entry.start))
    return alts


def document_items(doc: Document, seed: int, max_per_document: int, per_fact: int = 3,
                   negative_ratio: float = 0.25) -> tuple[dict[str, Any], Counter]:
    """The SQuAD article of one document and the counts of what it holds."""
    rng = random.Random(f"{seed}:{doc.key}")
    counts: Counter = Counter()
    entries = [e for e in parse_entries(doc.text) if e.term.strip()]
    counts["entries"] += len(entries)
    clauses = Counter(" ".join(e.description.lower().split()[:8]) for e in entries)
    candidates = [e for e in entries if clauses[" ".join(e.description.lower().split()[:8])] == 1]
    rng.shuffle(candidates)
    paragraphs = []
    n_questions = 0
    doc_id = hashlib.sha1(doc.key.encode()).hexdigest()[:10]
    for n, entry in enumerate(candidates):
        if n_questions >= max_per_document:
            break
        questions = questions_for(entry, doc, rng, per_fact)
        questions = questions[: max_per_document - n_questions]
        if not questions:
            continue
        cs, ce = passage(doc.text, entry.full_start, max(entry.end, entry.full_end), rng)
        context = doc.text[cs:ce]
        answers = [{"text": entry.term, "answer_start": entry.start - cs}]
        answers += [{"text": t, "answer_start": s - cs} for t, s in _alternatives(doc.text, entry) if cs <= s and s + len(t) <= ce]
        qas = [{"id": f"{doc_id}-{n}-{k}", "question": q, "answers": answers, "kind": entry.kind}
               for k, q in enumerate(questions)]
        counts[f"questions:{entry.kind}"] += len(qas)
        counts["facts"] += 1
        n_questions += len(qas)
        paragraphs.append({"context": context, "qas": qas})
        if rng.random() < negative_ratio:
            negative = _negative(doc, entry, questions[0], rng, f"{doc_id}-{n}-neg")
            if negative is not None:
                paragraphs.append(negative)
                counts["negatives"] += 1
    return {"title": doc.key, "paragraphs": paragraphs}, counts


def _negative(doc: Document, entry: Entry, question: str, rng: random.Random, qid: str) -> dict[str, Any] | None:
    """The question about a passage of the same document without the entry's term (a near one when
    there is one: the same list, further on)."""
    terms = {entry.term.lower(), doc.text[entry.full_start:entry.full_end].lower()}
    for _ in range(6):
        at = rng.randrange(len(doc.text))
        cs, ce = passage(doc.text, at, at, rng)
        context = doc.text[cs:ce]
        low = context.lower()
        if len(context.split()) >= 60 and not any(t in low for t in terms) and entry.description[:40].lower() not in low:
            return {"context": context, "qas": [{"id": qid, "question": question, "answers": [],
                                                 "is_impossible": True, "kind": entry.kind}]}
    return None


def read_documents(sources: Sequence[str | Path]) -> list[Document]:
    """The documents of files and folders, read by the indexer's :func:`read_document`, in sorted
    order; each keyed by its path under its source folder."""
    from bertsearch.indexer.common.errors import UnsupportedDocument
    from bertsearch.indexer.documents import discover, read_document

    docs = []
    for source in sources:
        source = Path(source)
        files = [(p, p.relative_to(source).as_posix()) for p in discover(source)] if source.is_dir() else [(source, source.name)]
        for path, key in files:
            try:
                loaded = read_document(path)
            except UnsupportedDocument:
                continue
            language = "Python" if re.match(r"NAME\n {4}\S", loaded.text) else (
                "C" if re.search(r"\.[23]\w*\.txt$", path.name) else "")
            docs.append(Document(path, key, loaded.text, loaded.title, program_name(loaded.text, loaded.title), language))
    return sorted(docs, key=lambda d: d.key)


def held_out(key: str, fraction: float) -> bool:
    """Whether a document goes to the held-out file: a hash of its path, stable across runs."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0x100000000 < fraction


def build(docs: Sequence[Document], seed: int = 0, max_per_document: int = 60, holdout_frac: float = 0.0,
          per_fact: int = 3, negative_ratio: float = 0.25) -> tuple[dict, dict, Counter]:
    """The training and held-out SQuAD objects and the counts (``heldout:`` for the held-out ones)."""
    train: list[dict] = []
    heldout: list[dict] = []
    counts: Counter = Counter()
    for doc in docs:
        article, c = document_items(doc, seed, max_per_document, per_fact, negative_ratio)
        out = heldout if held_out(doc.key, holdout_frac) else train
        prefix = "heldout:" if out is heldout else ""
        counts[prefix + "documents"] += 1
        for k, v in c.items():
            counts[prefix + k] += v
        if article["paragraphs"]:
            out.append(article)
    return _squad(train), _squad(heldout), counts


def _squad(data: list[dict]) -> dict:
    return {"version": VERSION, "data": data}


def mix_squad(obj: dict, squad_path: str | Path, limit: int, seed: int) -> int:
    """Add ``limit`` articles of a SQuAD file (a seeded draw) to ``obj``; returns the questions added."""
    from bertsearch.search.training.squad import read_squad_json

    articles = read_squad_json(squad_path)["data"]
    chosen = random.Random(seed).sample(articles, min(limit, len(articles)))
    obj["data"].extend(chosen)
    return sum(len(p["qas"]) for a in chosen for p in a["paragraphs"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bertsearch.search.training.techqa", description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="+", help="folders or files of documents")
    parser.add_argument("--out", required=True, help="the SQuAD JSON file to write")
    parser.add_argument("--mix-squad", help="a SQuAD train file whose articles are added to the output")
    parser.add_argument("--squad-limit", type=int, default=1000, help="SQuAD articles to add (default 1000)")
    parser.add_argument("--holdout-frac", type=float, default=0.0, help="share of documents held out into OUT.heldout.json")
    parser.add_argument("--max-per-document", type=int, default=60)
    parser.add_argument("--per-fact", type=int, default=3, help="question forms per entry")
    parser.add_argument("--negative-ratio", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    docs = read_documents(args.sources)
    train, heldout, counts = build(docs, args.seed, args.max_per_document, args.holdout_frac, args.per_fact,
                                   args.negative_ratio)
    if args.mix_squad:
        counts["squad_questions"] = mix_squad(train, args.mix_squad, args.squad_limit, args.seed)
    out = Path(args.out)
    out.write_text(json.dumps(train, ensure_ascii=False, indent=None), encoding="utf-8")
    written = [str(out)]
    if args.holdout_frac > 0:
        held = out.with_name(out.name[: -len(".json")] + ".heldout.json" if out.name.endswith(".json") else out.name + ".heldout.json")
        held.write_text(json.dumps(heldout, ensure_ascii=False), encoding="utf-8")
        written.append(str(held))
    for key in sorted(counts):
        print(f"{key}\t{counts[key]}")
    print("wrote\t" + " ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
