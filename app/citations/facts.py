"""The numbers-and-names check of attribution: the facts a claim states, matched the way text
writes them, and told apart as found, absent or contradicted.

- Figures (`Figure`): numbers with their magnitude and unit, read the many ways they are written:
  thousands separators ("128,256"), magnitudes ("8B" ~ "8 billion" ~ "8,000M"; "32K" ~ "32,000"
  or "32,768": k is 1000 or 1024, the one exact reading each), units on or off the number ("16GB"
  ~ "16 GB", "8x" ~ "8", "40%" ~ "40 percent"), dimensions ("980×980") and number words ("eight",
  "twelve", "two billion"; parsed by `text2num`; a lone "one" is a pronoun, not a figure).
  Versions ("v4.31.0" ~ "4.31") are figures compared as versions.
- Names: capitalised words and identifiers (mixed case, digits, `snake_case`, dotted or hyphenated
  product names, hub ids, instance types). Compared on their letters and digits, whatever the
  separators and case ("Llama-2-70b" ~ "Llama 2 70B", "StabilityAI" ~ "Stability AI"); a hub id's
  namespace ("meta-llama/") and lower-case affixes joined to a name ("-chat-hf", "X-based") may be
  missing from the source. A small bare number right after a name is its version ("Llama 3"), and
  checked with it. A sentence's first word is a name only if it looks like one beyond its capital.
- `check(facts, window, haystack)`: each fact is found (figures in the window, names anywhere in
  the source), absent, or contradicted: the window states a DIFFERENT value in the same place — a
  figure of the same unit or magnitude, another version of the same name, a different figure or
  name where the claim's stands once claim and window are aligned on their content words, or the
  claim's negation (the window's sentences sharing half its content words all say it the other
  way: not/no/never/without/n't, or a word of opposite meaning, "weaker" for "stronger" — one of
  the two, as both together say it the claim's way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from difflib import SequenceMatcher

from opencite.app.citations.antonyms import lemmas, opposites
from opencite.app.citations.support import stopwords
from opencite.app.citations.figures import Figure, figure_conflict, figure_found, figures_in
from opencite.app.citations.names import NAME_TOKEN, NAME_VERSION, Name, flat, name_conflict, name_found, names_in


# What a negation conflict records as the claim's side (the claim negated / the claim affirmed).
NEGATION_MARKS = ("not", "(affirmed)")
_NEGATION = frozenset({"not", "no", "never", "n't", "without", "cannot", "neither", "nor", "none", "nothing"})


_CLAUSE = re.compile(r"[;:()]|(?<!\d),|,(?!\d)|\b(?:and|versus|vs\.?|while|whereas|but|than|compared (?:with|to))\b",
                     re.IGNORECASE)


@dataclass(frozen=True)
class ClaimFacts:
    figures: tuple[Figure, ...] = ()
    names: tuple[Name, ...] = ()
    negated: bool = False

    @property
    def numbers(self) -> frozenset[str]:
        return frozenset(f.text.lower() for f in self.figures)

    @property
    def name_texts(self) -> frozenset[str]:
        return frozenset(n.text.lower() for n in self.names)

    def __bool__(self) -> bool:
        return bool(self.figures or self.names)


@dataclass
class FactCheck:
    found: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # each lowers support (absent_penalty)
    unsure: list[str] = field(default_factory=list)  # absent soft names: no penalty, may be contradicted
    contradicted: list[tuple[str, str]] = field(default_factory=list)  # (claim's words, source's words)


@lru_cache(maxsize=20_000)
def claim_facts(claim: str) -> ClaimFacts:  # cached: every pass over an answer asks again
    names = names_in(claim)
    # The digits of a versioned name ("Llama 2") are not figures of the window.
    masked = claim
    for m in NAME_VERSION.finditer(claim):
        if m.group(1).lower() not in stopwords():
            masked = masked[:m.start(2)] + " " * len(m.group(2)) + masked[m.end(2):]
    for m in NAME_TOKEN.finditer(masked):  # nor are the digits inside an identifier ("Llama-2-70b")
        token = m.group(0)
        if any(n.text == token.rstrip(".:/-") for n in names) and re.search(r"\d", token):
            masked = masked[:m.start()] + " " * len(token) + masked[m.end():]
    return ClaimFacts(tuple(figures_in(masked)), tuple(names), _negated(claim))


def hard_names(facts: ClaimFacts, texts: set[str]) -> ClaimFacts:
    """The facts with these soft names (capitalised first words) taken as names."""
    return replace(facts, names=tuple(replace(n, soft=False) if n.soft and n.text in texts else n
                                      for n in facts.names))


def clause_facts(claim: str) -> list[ClaimFacts]:
    """The facts of each clause of a claim that states any."""
    return [f for f in (claim_facts(clause) for clause in _CLAUSE.split(claim) if clause) if f]


def _words(text: str) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    for m in _WORD.finditer(text):
        word, start, end = m.group(0), m.start(), m.end()
        if out and out[-1][0] == "n't" and start < out[-1][2]:
            continue  # the "t" of "n't"
        if word.endswith("n") and len(word) > 1 and text[end:end + 2] in ("'t", "’t"):
            # "didn't", "doesn’t": "did"/"does" and a negation.
            out += [(word[:-1], start, end - 1), ("n't", end - 1, end + 2)]
        else:
            out.append((word, start, end))
    return out


_WORD = re.compile(r"\w+(?:[.,]\d+)*")


def _negated(text: str) -> bool:
    return any(w.lower() in _NEGATION for w, _, _ in _words(text))


def check(facts: ClaimFacts, claim: str, window_text: str, window_figures: list[Figure], haystack: str,
          *, align: bool = True, negation: bool = True, negation_text: str | None = None,
          says_no: bool = False) -> FactCheck:
    """Each fact of the claim found, absent or contradicted in this window (names: in the source).
    `negation_text`: the part of the window its polarity is read from (its prose: a table's "no"
    cells say nothing of a sentence's polarity). A negated claim's negation is a fact too: absent
    from a window that writes none (`says_no`: the window states a negative otherwise, a table's
    "no" cell), which lowers its support like any absent fact."""
    out = FactCheck()
    claimed = frozenset().union(*(f.values for f in facts.figures)) if facts.figures else frozenset()
    for figure in facts.figures:
        if figure_found(figure, window_figures):
            out.found.append(figure.text)
            continue
        conflict = figure_conflict(figure, window_figures, claimed)
        if conflict is not None:
            out.contradicted.append((figure.text, conflict.text))
        else:
            out.absent.append(figure.text)
    for name in facts.names:
        if name_found(name, haystack):
            out.found.append(name.text)
            continue
        conflict = name_conflict(name, window_text)
        if conflict is not None:
            out.contradicted.append((name.text, conflict))
        else:
            (out.unsure if name.soft else out.absent).append(name.text)
    if align and (out.absent or out.unsure):
        _aligned_conflicts(claim, window_text, out)
    if align and negation and not out.contradicted:
        polarity = window_text if negation_text is None else negation_text
        _negation_conflict(claim, polarity, out)
        if facts.negated and not out.contradicted and not says_no and not _negated(polarity):
            out.absent.append(NEGATION_MARKS[0])
    return out


_STEM = re.compile(r"(?:ing|ed|es|s)$")


def stem(word: str) -> str:
    """A word as alignments compare it: lower case, a plural or verb ending dropped past four letters."""
    w = word.lower()
    return w if len(w) <= 4 else _STEM.sub("", w)


def _aligned_conflicts(claim: str, window_text: str, out: FactCheck) -> None:
    """Claim and window aligned on their content words: an absent fact of the claim standing where
    the window has another figure or name (next to matching words) is contradicted; so is a
    statement whose negation only one side writes."""
    stop = stopwords()
    a = [t for t in _words(claim) if t[0].lower() not in stop or t[0].lower() in _NEGATION]
    b = [t for t in _words(window_text) if t[0].lower() not in stop or t[0].lower() in _NEGATION]
    if not a or not b:
        return
    sm = SequenceMatcher(None, [stem(w) for w, _, _ in a], [stem(w) for w, _, _ in b], autojunk=False)
    ops = sm.get_opcodes()
    content = [i for i, (w, _, _) in enumerate(a) if w.lower() not in _NEGATION]
    matched = {i for tag, i1, i2, _, _ in ops if tag == "equal" for i in range(i1, i2)}
    if not content or len([i for i in content if i in matched]) < max(2, len(content) / 2):
        return  # too little of the claim lines up with this window to say what stands where
    window_flat = {flat(w) for w, _, _ in b}
    a_initial, b_initial = _initial(claim, a), _initial(window_text, b)
    for k, (tag, i1, i2, j1, j2) in enumerate(ops):
        if tag != "replace" or i2 - i1 > 3:
            continue
        before = k > 0 and ops[k - 1][0] == "equal"
        after = k + 1 < len(ops) and ops[k + 1][0] == "equal"
        if not (before or after):
            continue
        width = i2 - i1 + 1  # the window's words in the claim's place: next to the anchor
        if after and (not before or j2 - j1 > width):
            j1 = max(j1, j2 - width)
        elif before:
            j2 = min(j2, j1 + width)
        mine = [a[i][0] for i in range(i1, i2) if _is_fact_word(a[i][0], i in a_initial)
                and flat(a[i][0]) not in window_flat]
        theirs = [b[j][0] for j in range(j1, j2) if _is_fact_word(b[j][0], j in b_initial)]
        if not mine or not theirs:
            continue
        text_a = claim[a[i1][1]:a[i2 - 1][2]]
        flat_a = flat(text_a)
        overlapping = [x for x in out.absent + out.unsure if flat(x) and (flat(x) in flat_a or flat_a in flat(x))]
        if not overlapping:
            continue
        out.contradicted.append((text_a, window_text[b[j1][1]:b[j2 - 1][2]]))
        out.absent = [x for x in out.absent if x not in overlapping]
        out.unsure = [x for x in out.unsure if x not in overlapping]


def _negation_conflict(claim: str, window_text: str, out: FactCheck) -> None:
    """The window's sentences that share at least half of the claim's content words all say it
    the other way: with a not/no/never/without where the claim has none (or the other way round),
    or with the opposite of one of its words ("weaker" for "stronger", "below" for "above"; see
    `antonyms`) — but not both, which says it the claim's way ("didn't see much difference" for
    "little difference")."""
    from opencite.app.citations.support import content_terms

    terms = content_terms(claim)
    if len(terms) < 3:
        return
    negated = _negated(claim)
    alike = sorted(((len(terms & content_terms(part)) / len(terms), part)
                    for part in re.split(r"(?<=[.!?])\s+", window_text)), key=lambda x: -x[0])
    alike = [part for share, part in alike if share >= 0.5]
    if not alike:
        return
    opposed = [_opposed(claim, part) for part in alike]
    # Only when no sentence like it says it the claim's way ("It ... needs no fan." after "The
    # router is made by ..."): then the most alike one is read as its contradiction.
    if all((_negated(part) != negated) != (rival is not None) for part, rival in zip(alike, opposed)):
        if opposed[0] is not None:
            out.contradicted.append(opposed[0])
        else:
            out.contradicted.append((NEGATION_MARKS[0] if negated else NEGATION_MARKS[1], alike[0]))


@lru_cache(maxsize=20_000)
def _opposed(claim: str, sentence: str) -> tuple[str, str] | None:
    """(a word of the claim, the sentence's word of opposite meaning) when the sentence writes the
    opposite of one of the claim's words and not that word; else None."""
    # Negation words are the other half of polarity ("no" ~ "all" would count them twice).
    claim_words = list(dict.fromkeys(w.lower() for w, _, _ in _words(claim) if w.lower() not in _NEGATION))
    claim_lemmas = frozenset().union(*(lemmas(w) for w in claim_words))
    words = [(w, lemmas(w)) for w, _, _ in _words(sentence) if w.lower() not in _NEGATION]
    said = frozenset().union(*(ls for _, ls in words))
    for word in claim_words:
        against = opposites(word) - claim_lemmas
        if against and not lemmas(word) & said:
            rival = next((w for w, ls in words if ls & against), None)
            if rival is not None:
                return word, rival
    return None


def _initial(text: str, words: list[tuple[str, int, int]]) -> set[int]:
    """Indexes of the words that start a sentence (their capital says nothing)."""
    return {i for i, (_, start, _) in enumerate(words) if re.search(r"(?:^|[.!?:]\s+)\W*$", text[:start])}


def _is_fact_word(word: str, initial: bool = False) -> bool:
    if word.lower() in stopwords():
        return False
    return any(ch.isdigit() for ch in word) or (word[:1].isupper() and not initial) \
        or any(ch.isupper() for ch in word[1:]) or "_" in word

