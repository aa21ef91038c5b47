"""Figures in text, read the many ways they are written: thousands separators ("128,256"),
magnitudes ("8B" ~ "8 billion" ~ "8,000M"; "32K" ~ "32,000" or "32,768": k is 1000 or 1024, the one
exact reading each), units on or off the number ("16GB" ~ "16 GB", "8x" ~ "8", "40%" ~ "40
percent"), dimensions ("980×980") and number words ("eight", "twelve", "two billion"; parsed by
`text2num`; a lone "one" is a pronoun, not a figure). Versions ("v4.31.0" ~ "4.31") are figures
compared as versions. Used by the numbers-and-names check (facts.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from opencite.app.citations.support import stopwords


_SMALL = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety").split()


_NUMBER_WORD = r"(?:" + "|".join(_SMALL) + r")"


# A run of number words ("twenty-one", "three hundred and five"); a lone "one" is left alone.
_WORDS_RUN = re.compile(rf"\b{_NUMBER_WORD}(?:(?:[\s-]+(?:and[\s-]+)?)(?:{_NUMBER_WORD}|hundred|thousand))*\b",
                        re.IGNORECASE)


_MAGNITUDE_WORDS = {"thousand": Decimal(10) ** 3, "million": Decimal(10) ** 6, "billion": Decimal(10) ** 9,
                    "trillion": Decimal(10) ** 12}


_MAGNITUDE_LETTERS = {"k": (Decimal(1000), Decimal(1024)), "m": (Decimal(10) ** 6,), "b": (Decimal(10) ** 9,),
                      "t": (Decimal(10) ** 12,)}


SCIENTIFIC = r"\d+(?:\.\d+)?[eE][-+]?\d+"  # "2e-4", as code writes 0.0002

# A number as written: "128,256", "1.5", "v4.31.0", "2e-4", then what is written on it ("B", "GB",
# "x", "%", "-bit", "-token"), then an optional spelled magnitude or unit word after a space.
_FIGURE = re.compile(
    rf"(?<![\w.])(?P<v>[vV](?=\d))?(?P<num>{SCIENTIFIC}(?!\w|\.\d)|\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)*)"
    r"(?P<suffix>[a-zA-Z%×]+\b|%)?(?:-(?P<hyphen>[a-zA-Z]+))?"
    r"(?:[ \t]*(?P<word>%|[a-zA-Z]+))?")


_DIM = re.compile(r"(?<=\d)[x×](?=\d)")  # 980×980, 2x2: two numbers


_UNIT_ALIASES = {"percent": "%", "per": "", "times": "x", "×": "x", "gigabytes": "gb", "megabytes": "mb",
                 "terabytes": "tb", "kilobytes": "kb", "bits": "bit", "tokens": "token", "parameters": "param",
                 "params": "param", "parameter": "param", "layers": "layer", "gpus": "gpu", "hours": "hour",
                 "seconds": "second", "minutes": "minute", "days": "day", "images": "image", "languages": "language"}


@dataclass(frozen=True)
class Figure:
    text: str  # as written
    values: frozenset[str]  # canonical readings: "8000000000"; versions "v:4.31"
    unit: str = ""  # "gb", "x", "%", "token", ... ("" when none is written)
    magnitude: str = ""  # "k" "m" "b" "t" when one is written
    is_version: bool = False


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None


def _canon(d: Decimal) -> str:
    out = format(d.normalize(), "f")
    return out.rstrip("0").rstrip(".") if "." in out else out


def _unit(word: str | None) -> str:
    if not word:
        return ""
    w = word.lower()
    w = _UNIT_ALIASES.get(w, w)
    return w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w


def spelled_numbers(text: str) -> str:
    """Number words written as digits ("twelve models" -> "12 models"), same meaning elsewhere."""
    def digits(m: re.Match) -> str:
        words = m.group(0)
        if words.lower() == "one":
            return words
        try:
            from text_to_num import text2num

            return str(text2num(re.sub(r"[\s-]+", " ", words.lower()), "en"))
        except (ValueError, ImportError):
            return words
    return _WORDS_RUN.sub(digits, text)


def figures_in(text: str) -> list[Figure]:
    """The figures of a text, in order (number words included)."""
    text = _DIM.sub(" x ", spelled_numbers(text))
    out = []
    for m in _FIGURE.finditer(text):
        num, suffix, hyphen, word = m.group("num"), (m.group("suffix") or ""), m.group("hyphen"), m.group("word")
        written = m.group(0)
        scientific = "e" in num.lower()
        if m.group("v") or (num.count(".") > 1 and not scientific):
            parts = num.split(".")
            while len(parts) > 1 and parts[-1] == "0":
                parts.pop()
            version = ".".join(str(int(p)) for p in parts)
            values = {"v:" + version} | ({version} if len(parts) <= 2 else set())  # "v4.31.0" ~ "4.31"
            out.append(Figure((m.group("v") or "") + num, frozenset(values), is_version=True))
            continue
        if suffix and not re.fullmatch(r"[kKmMbBtT]|[a-zA-Z]{1,3}|%|×|x", suffix):
            continue  # "3rd", "4bit" stay numbers; "70billion"-like run-ons are rare; identifiers are names
        value = _decimal(num)
        if value is None:
            continue
        magnitude, unit = "", ""
        scales: tuple[Decimal, ...] = (Decimal(1),)
        written = (m.group("v") or "") + num + suffix + (f"-{hyphen}" if hyphen else "")
        s = suffix.lower()
        if s in _MAGNITUDE_LETTERS:
            magnitude, scales = s, _MAGNITUDE_LETTERS[s]
        elif s:
            unit = _unit(s)
        if hyphen:
            unit = unit or _unit(hyphen)
        if word:
            w = word.lower()
            if w in _MAGNITUDE_WORDS and not magnitude:
                magnitude = {"thousand": "k", "million": "m", "billion": "b", "trillion": "t"}[w]
                scales = (_MAGNITUDE_WORDS[w],)
                written += " " + word
                after = re.match(r"[ \t]*([a-zA-Z]+)", text[m.end():])
                unit = unit or (_unit(after.group(1)) if after and after.group(1).lower() not in stopwords() else "")
            elif not unit and w not in stopwords():
                unit = _unit(w)
        if not unit and not magnitude and re.fullmatch(r"1[89]\d\d|20\d\d", num):
            unit = "year"  # a bare year: another year in the window is in the same place
        values = {_canon(value * scale) for scale in scales}
        if "." in num and not magnitude and not scientific:
            values.add("v:" + _canon(value))  # "4.31" ~ "v4.31.0"
        values = frozenset(values)
        out.append(Figure(written, values, unit, magnitude))
    return out


def figure_found(figure: Figure, window: list[Figure]) -> bool:
    return any(figure.values & w.values for w in window)


def figure_conflict(figure: Figure, window: list[Figure], claimed: frozenset[str] = frozenset()) -> Figure | None:
    """A figure of the window in the same place as the claim's, with another value: the same
    written unit, or (without one) the same magnitude; versions against versions. Window figures
    the claim states elsewhere (`claimed` values) are its other facts, not this one's rival."""
    for w in window:
        if w.values & figure.values or w.values & claimed:
            continue
        if figure.is_version or w.is_version:
            if figure.is_version and w.is_version:
                return w
            continue
        if figure.unit and figure.unit == w.unit:
            return w
        if not figure.unit and figure.magnitude and figure.magnitude == w.magnitude and not w.unit:
            return w
    return None


def numbers_in(text: str) -> list[Figure]:
    """A window's figures (kept with the window; see `figures_in`)."""
    return figures_in(text)

