"""The path-filter glob matcher against a plain reference matcher, on random globs and paths
(hypothesis), each match within a millisecond."""

from __future__ import annotations

from functools import lru_cache

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bertsearch.indexer.documents import compile_glob

from _hang import without_hanging

# Each token of the glob syntax, as the reference reads it.
_TOKENS = st.one_of(
    st.sampled_from(["a", "b", ".", "/", "*", "**", "**/", "?", "[ab]", "[!a]", "[a-b]"]),
    st.sampled_from(["a", "b", "/", " ", "#", "-", "é", "+", "(", "|", "$", "{", "^"]),
)
_PATHS = st.lists(st.sampled_from(["a", "b", ".", "/", "ab", "ba"]), max_size=20).map("".join)


def _tokenize(pattern: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            tokens.append("**/")
            i += 3
        elif pattern.startswith("**", i):
            tokens.append("**")
            i += 2
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            close = pattern.index("]", i + 2)
            tokens.append(pattern[i:close + 1])
            i = close + 1
        else:
            tokens.append(pattern[i])
            i += 1
    return tokens


def _in_class(token: str, char: str) -> bool:
    body = token[1:-1]
    negate = body.startswith("!")
    body = body[1:] if negate else body
    found = False
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            found |= body[i] <= char <= body[i + 2]
            i += 3
        else:
            found |= body[i] == char
            i += 1
    return found != negate


def reference(pattern: str, path: str) -> bool:
    """Plain recursive glob matching: `**/` is zero or more whole folders, `**` anything, `*`
    anything inside one name, `?` one character of a name, `[...]` a class."""
    tokens = _tokenize(pattern)

    @lru_cache(maxsize=None)
    def match(i: int, j: int) -> bool:
        if i == len(tokens):
            return j == len(path)
        t = tokens[i]
        if t == "**/":
            return match(i + 1, j) or any(path[k] == "/" and match(i + 1, k + 1) for k in range(j, len(path)))
        if t == "**":
            return any(match(i + 1, k) for k in range(j, len(path) + 1))
        if t == "*":
            k = j
            while True:
                if match(i + 1, k):
                    return True
                if k < len(path) and path[k] != "/":
                    k += 1
                else:
                    return False
        if j >= len(path):
            return False
        c = path[j]
        if t == "?":
            return c != "/" and match(i + 1, j + 1)
        if t.startswith("[") and len(t) > 1:
            return _in_class(t, c) and match(i + 1, j + 1)
        return c == t and match(i + 1, j + 1)

    return match(0, 0)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_TOKENS, min_size=1, max_size=12).map("".join), _PATHS)
def test_the_matcher_agrees_with_the_reference(pattern: str, path: str) -> None:
    # The compiler's normalisation (outer slashes and spaces, a leading `./`) is not the syntax under test.
    assume(pattern == pattern.strip() and not (pattern.startswith(("/", "./")) or pattern.endswith("/")))
    regex, _ = compile_glob(pattern)
    found = regex.match(path) is not None
    assert found == reference(pattern, path), (pattern, path, regex.pattern)


def test_hostile_globs_stay_linear() -> None:
    path = "a/" * 250 + "b" * 500
    for pattern in ("*?*?*?*?*?*?*?*?*?*?#", "**/" * 30 + "#", "*a" * 40 + "#", "**a" * 40 + "#"):
        regex, _ = compile_glob(pattern)
        assert without_hanging(regex.match, path) is None, pattern
