"""Caption edits that change exactly one compositional slot, and the check that an edit did.

Edit kinds (those of "Enhancing Multimodal Compositional Reasoning of Visual Language Models with
Generative Negative Mining"): `attribute` (a colour, size, material or state), `object` (a noun),
`relation` (a spatial phrase or an action, or the two objects around it swapped) and `count` (a
number). Each edit is a replacement by a word of the same group (a colour by a colour), or a swap
of two words of one kind (word order: "a dog chasing a cat" -> "a cat chasing a dog"); nouns trade
places only within compatible groups (`lexicon.SWAP_CLASSES`: people and animals, else the same
group), so a place never takes an agent's role. Words are
recognised with the curated lists of `augflow.negatives.lexicon` (no tagger needed).

Edits are plain data (JSON): the op draws one in `sample_params` and `apply` only performs it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from augflow.negatives import lexicon as lx

KINDS = ("attribute", "object", "relation", "count")
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[a-z]+)?")
_SPATIAL_WORDS = {w for phrase in (*lx.SPATIAL, *lx.SPATIAL.values()) for w in phrase.split()} - lx.FUNCTION_WORDS
_PHRASES = sorted(lx.SPATIAL, key=lambda p: -len(p.split()))


def words(text: str) -> list[tuple[int, int, str]]:
    """(start, end, word) of every word of `text`."""
    return [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]


def _cased(new: str, old: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def _article(next_word: str, old: str) -> str:
    art = "an" if next_word[:1].lower() in "aeiou" else "a"
    return _cased(art, old)


def apply_edit(caption: str, edit: dict[str, Any]) -> str:
    """Perform an edit: replace each [start, end) span by its new text (right to left)."""
    out = caption
    for start, end, new in sorted(edit["spans"], key=lambda s: -s[0]):
        out = out[:start] + new + out[end:]
    return out


def _edit(kind: str, mode: str, slot: str, spans: list[tuple[int, int, str]], old: str, new: str) -> dict[str, Any]:
    return {"kind": kind, "mode": mode, "slot": slot, "spans": [list(s) for s in spans], "old": old, "new": new}


def _noun_spans(toks):
    """(index, group, plural) of every listed noun."""
    out = []
    for i, (_, _, w) in enumerate(toks):
        found = lx.object_group(w)
        if found is not None:
            out.append((i, *found))
    return out


def _with_article(toks, i: int, new_word: str) -> list[tuple[int, int, str]]:
    """Spans replacing word i by new_word, fixing a preceding a/an (possibly across adjectives)."""
    spans = [(toks[i][0], toks[i][1], _cased(new_word, toks[i][2]))]
    j = i - 1
    while j >= 0 and lx.attribute_group(toks[j][2]):
        j -= 1
    if j >= 0 and toks[j][2].lower() in ("a", "an"):
        first = toks[j + 1][2] if j + 1 < i else new_word
        spans.append((toks[j][0], toks[j][1], _article(first, toks[j][2])))
    return spans


def _attribute_edits(toks) -> list[dict]:
    out = []
    attrs = [(i, lx.attribute_group(w)) for i, (_, _, w) in enumerate(toks) if lx.attribute_group(w)]
    for i, group in attrs:
        old = toks[i][2].lower()
        opposite = lx.OPPOSITES.get(old)
        alts = [opposite] if opposite else [w for w in lx.ATTRIBUTES[group] if w != old and not lx.synonyms(w, old)]
        for new in alts:
            out.append(_edit("attribute", "replace", f"attribute:{i}", _with_article(toks, i, new), old, new))
    for a in range(len(attrs)):
        for b in range(a + 1, len(attrs)):
            (i, gi), (j, gj) = attrs[a], attrs[b]
            wi, wj = toks[i][2].lower(), toks[j][2].lower()
            if gi == gj and wi != wj:
                spans = [(toks[i][0], toks[i][1], _cased(wj, toks[i][2])),
                         (toks[j][0], toks[j][1], _cased(wi, toks[j][2]))]
                out.append(_edit("attribute", "swap", f"attribute-swap:{i}:{j}", spans, f"{wi} ... {wj}",
                                 f"{wj} ... {wi}"))
    return out


def _object_swap(kind: str, toks, a, b) -> dict | None:
    (i, gi, pi), (j, gj, pj) = a, b
    if not lx.swappable(gi, gj):       # "two dogs on the grass" never becomes "two grasses on the dog"
        return None
    li, lj = lx.singularize(toks[i][2].lower()) if pi else toks[i][2].lower(), \
        lx.singularize(toks[j][2].lower()) if pj else toks[j][2].lower()
    if li == lj:
        return None
    ni, nj = (lx.pluralize(lj) if pi else lj), (lx.pluralize(li) if pj else li)
    spans = _with_article(toks, i, ni) + _with_article(toks, j, nj)
    return _edit(kind, "swap", f"{kind}-swap:{i}:{j}", spans, f"{toks[i][2]} ... {toks[j][2]}", f"{ni} ... {nj}")


def _object_edits(toks) -> list[dict]:
    out = []
    nouns = _noun_spans(toks)
    for i, group, plural in nouns:
        lemma = lx.singularize(toks[i][2].lower()) if plural else toks[i][2].lower()
        for alt in lx.OBJECTS[group]:
            if alt == lemma or " " in alt or lx.stem(alt) == lx.stem(lemma) or lx.synonyms(alt, lemma):
                continue
            new = lx.pluralize(alt) if plural else alt
            out.append(_edit("object", "replace", f"object:{i}", _with_article(toks, i, new), toks[i][2], new))
    for a in range(len(nouns)):
        for b in range(a + 1, len(nouns)):
            edit = _object_swap("object", toks, nouns[a], nouns[b])
            if edit:
                out.append(edit)
    return out


def _relation_edits(toks) -> list[dict]:
    out = []
    low = [w.lower() for _, _, w in toks]
    taken: set[int] = set()
    relations = []
    for i in range(len(toks)):
        if i in taken:
            continue
        for phrase in _PHRASES:
            parts = phrase.split()
            if low[i:i + len(parts)] == parts:
                end = i + len(parts) - 1
                taken.update(range(i, end + 1))
                new = lx.SPATIAL[phrase]
                spans = [(toks[i][0], toks[end][1], _cased(new, toks[i][2]))]
                out.append(_edit("relation", "replace", f"relation:{i}", spans, phrase, new))
                relations.append((i, end))
                break
        else:
            group = lx.action_group(low[i])
            if group:
                relations.append((i, i))
                for alt in lx.ACTIONS[group]:
                    if alt != low[i] and not lx.synonyms(alt, low[i]):
                        out.append(_edit("relation", "replace", f"relation:{i}",
                                         [(toks[i][0], toks[i][1], _cased(alt, toks[i][2]))], low[i], alt))
    nouns = _noun_spans(toks)
    for start, end in relations:       # the objects on either side of the relation trade places
        before = [n for n in nouns if n[0] < start]
        after = [n for n in nouns if n[0] > end]
        if before and after:
            edit = _object_swap("relation", toks, before[-1], after[0])
            if edit:
                out.append(edit)
    return out


def _count_edits(toks) -> list[dict]:
    out = []
    low = [w.lower() for _, _, w in toks]
    for i, w in enumerate(low):
        value = lx.number_value(w)
        article = w in ("a", "an")
        if value is None and not article:
            continue
        j = i + 1
        while j < len(toks) and lx.attribute_group(low[j]):
            j += 1
        noun = lx.object_group(low[j]) if j < len(toks) else None
        if noun is None:
            continue
        if article and noun[1]:
            continue
        old_value = 1 if article else value
        digits = w.isdigit()
        for new_value in ([2, 3, 4] if old_value == 1 else [v for v in (1, 2, 3, 4, 5) if v != old_value]):
            new_word = str(new_value) if digits else lx.NUMBER_WORDS[new_value]
            spans = [(toks[i][0], toks[i][1], _cased(new_word, toks[i][2]))]
            lemma = lx.singularize(low[j]) if noun[1] else low[j]
            if (old_value == 1) != (new_value == 1):      # inflect the noun and its verb
                noun_form = lx.pluralize(lemma) if new_value > 1 else lemma
                spans.append((toks[j][0], toks[j][1], _cased(noun_form, toks[j][2])))
                if j + 1 < len(toks) and low[j + 1] in ("is", "are", "was", "were"):
                    verb = {"is": "are", "are": "is", "was": "were", "were": "was"}[low[j + 1]]
                    spans.append((toks[j + 1][0], toks[j + 1][1], _cased(verb, toks[j + 1][2])))
            out.append(_edit("count", "replace", f"count:{i}", spans, toks[i][2], new_word))
    return out


_EDITORS = {"attribute": _attribute_edits, "object": _object_edits, "relation": _relation_edits,
            "count": _count_edits}


def candidate_edits(caption: str, kind: str) -> list[dict[str, Any]]:
    """Every rule edit of one kind for `caption` (JSON-able dicts; `apply_edit` performs one)."""
    if kind not in _EDITORS:
        raise ValueError(f"edit kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return _EDITORS[kind](words(caption))


# ---- the check --------------------------------------------------------------------------------
@dataclass
class Check:
    """Whether a negative changes the named slot, and what changed."""

    ok: bool
    reason: str = ""
    mode: str = ""              # replace | swap
    old: str = ""
    new: str = ""


def _is_kind(word: str, kind: str) -> bool:
    w = word.lower()
    if kind == "attribute":
        return lx.attribute_group(w) is not None
    if kind == "object":
        return lx.object_group(w) is not None
    if kind == "relation":
        return w in _SPATIAL_WORDS or lx.action_group(w) is not None
    return lx.number_value(w) is not None or w in ("a", "an")


def check_negative(caption: str, negative: str, kind: str, max_changed: int = 3) -> Check:
    """Does `negative` differ from `caption` in exactly one slot of `kind`?

    A permutation of the caption's words passes when two words of that kind traded places
    (attribute words; nouns for object and relation). Otherwise the changed words, ignoring
    articles/auxiliaries and inflections (dog -> dogs), must be at most `max_changed` on each side,
    and a removed word must belong to the slot (a listed colour for `attribute`, a number or a/an
    for `count`...) and be replaced by a different word that is not a listed synonym (a different number for `count`).
    """
    a = [w.lower() for _, _, w in words(caption)]
    b = [w.lower() for _, _, w in words(negative)]
    if a == b:
        return Check(False, "unchanged (differs at most in case or punctuation)")
    if len(a) == len(b) and sorted(map(lx.stem, a)) == sorted(map(lx.stem, b)):
        moved = [(x, y) for x, y in zip(a, b) if lx.stem(x) != lx.stem(y)]
        probe = "attribute" if kind == "attribute" else "object"
        if kind == "count" or sum(_is_kind(x, probe) for x, _ in moved) < 2:
            return Check(False, f"word order changed, but no two {kind} words traded places", "swap")
        slot = [x for x, _ in moved if _is_kind(x, probe)]
        if probe == "object":
            groups = sorted({lx.object_group(x)[0] for x in slot})
            if any(not lx.swappable(g, h) for g in groups for h in groups):
                return Check(False, f"nouns of incompatible groups traded places ({', '.join(groups)})", "swap")
        return Check(True, "", "swap", " ... ".join(slot), " ... ".join(y for x, y in moved if _is_kind(x, probe)))
    removed, inserted = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += a[i1:i2]
            inserted += b[j1:j2]
    if kind == "count":
        old_n = [lx.number_value(w) or 1 for w in removed if _is_kind(w, "count")]
        new_n = [lx.number_value(w) or 1 for w in inserted if _is_kind(w, "count")]
        if not old_n or not new_n or sorted(old_n) == sorted(new_n):
            return Check(False, "no number changed", "replace")
    content_old = [w for w in removed if w not in lx.FUNCTION_WORDS]
    content_new = [w for w in inserted if w not in lx.FUNCTION_WORDS]
    stems_new = {lx.stem(w) for w in content_new}
    stems_old = {lx.stem(w) for w in content_old}
    content_old_x = [w for w in content_old if lx.stem(w) not in stems_new]
    content_new_x = [w for w in content_new if lx.stem(w) not in stems_old]
    if kind != "count" and not content_old_x and not content_new_x:
        return Check(False, "only articles, auxiliaries or inflections changed (a paraphrase)", "replace")
    if kind == "count" and any(lx.number_value(w) is None for w in content_old_x + content_new_x):
        return Check(False, f"words besides the number changed ({content_old_x} -> {content_new_x})", "replace")
    if len(content_old_x) > max_changed or len(content_new_x) > max_changed:
        return Check(False, f"{len(content_old_x)} words replaced by {len(content_new_x)}: more than one slot changed",
                     "replace")
    old_slot = [w for w in (removed if kind == "count" else content_old_x) if _is_kind(w, kind)]
    if not old_slot:
        return Check(False, f"no {kind} word of the caption was changed (changed: {content_old_x or removed})",
                     "replace")
    if kind != "count" and not content_new_x:
        return Check(False, f"the {kind} was deleted, not changed", "replace")
    new_words = [w for w in (inserted if kind == "count" else content_new_x) if w not in lx.FUNCTION_WORDS or
                 _is_kind(w, kind)]
    if kind != "count" and all(any(lx.synonyms(o, n) for n in new_words) for o in old_slot):
        return Check(False, f"{' '.join(old_slot)} -> {' '.join(new_words)} is a synonym, not a change", "replace")
    return Check(True, "", "replace", " ".join(old_slot), " ".join(new_words))


__all__ = ["KINDS", "words", "apply_edit", "candidate_edits", "check_negative", "Check"]
