"""The cascaded value of a few CSS properties for the elements a page's own <style> rules reach:
what html_article needs to tell text the page's stylesheet hides (`.k9q{display:none}`) from text
a reader sees. tinycss2 reads the stylesheet and the declarations, cssselect turns each selector
into an XPath lxml runs on the page's tree.

Not a browser: the cascade is importance, then inline over stylesheet, then specificity, then
order; media queries are judged for a desktop screen; a selector that depends on a state (:hover,
:focus, :target ...) is left out, so a rule that hides only in some state drops nothing.

<link rel=stylesheet> is not fetched: extraction reads the fetched body alone (no network, no
second request per page under the host's Crawl-delay), and a site-wide stylesheet hides site
chrome; text hidden to reach the LLM travels with the page, in inline styles or a <style> block.

Bounded cost: at most MAX_CSS_CHARS of <style> text are parsed, selectors that cannot match (a
class, id or tag the page lacks) are skipped before any matching, and matching stops after
MAX_SELECTORS selectors or MAX_VISITS XPath steps (estimated from the page's shape before each
selector runs); each limit hit is one warning. Rules past a limit hide nothing: a page can pad
its way past them, but only with megabytes of CSS or thousands of selectors that match it."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection

import cssselect
import tinycss2
from lxml import etree

log = logging.getLogger(__name__)

# 50,000 rules of 40 characters. tinycss2 reads 0.6-1.5 MB/s (2 cores, loaded or not): 1.5-3.5 s.
MAX_CSS_CHARS = 2_000_000
MAX_SELECTORS = 5_000  # distinct selectors matched against the page (those that can match at all)
# XPath steps the matched selectors may cost, by _cost's model: 0.25-0.7 us a step measured
# (tests/benchmarks/bench_css_hidden.py), so 1.5-3.5 s at worst.
MAX_VISITS = 5_000_000
MAX_SELECTOR_CHARS = 500
MAX_COMPOUNDS = 10  # `a b c d ...` chains past this are not matched (XPath time grows with them)

# A state no static reader is in: a selector that needs one never applies. (:checked is kept:
# the checked attribute is the state a reader first sees, and cssselect reads it.)
_STATEFUL = re.compile(
    r":(hover|active|focus|focus-within|focus-visible|target|target-within|visited|"
    r"indeterminate|open|popover-open|modal|fullscreen|user-invalid|user-valid|playing|paused)\b", re.I)
_SCREEN_TYPES = {"screen", "all"}
# Media queries are judged for the desktop screen most readers use.
_VIEWPORT = {"width": 1280.0, "height": 800.0}
_UNITS = {"px": 1.0, "em": 16.0, "rem": 16.0}
_TRANSLATOR = cssselect.HTMLTranslator()


def _tokens(tokens) -> list:
    return [t for t in tokens if t.type not in ("whitespace", "comment")]


def _split_commas(tokens) -> list[list]:
    parts: list[list] = [[]]
    for t in tokens:
        if t.type == "literal" and t.value == ",":
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def _feature_holds(block) -> bool:
    """One `(min-width: 600px)`; a feature this module cannot judge (hover, dark mode ...) does
    not hold, so a hide that depends on it drops nothing."""
    tokens = _tokens(block.content)
    if len(tokens) != 3 or tokens[0].type != "ident" or tokens[1] != ":":
        return False
    name, value = tokens[0].lower_value, tokens[2]
    prefix, _, axis = name.partition("-") if name.startswith(("min-", "max-")) else ("", "", name)
    if axis not in _VIEWPORT:
        return False
    if value.type == "dimension" and value.lower_unit in _UNITS:
        length = value.value * _UNITS[value.lower_unit]
    elif value.type == "number" and value.value == 0:
        length = 0.0
    else:
        return False
    actual = _VIEWPORT[axis]
    return {"min": actual >= length, "max": actual <= length, "": actual == length}[prefix]


def media_applies(tokens) -> bool:
    """A media query list (an @media prelude or a media="" attribute) holds for a desktop screen."""
    queries = [_tokens(q) for q in _split_commas(tokens)]
    if not any(queries):
        return True  # empty list: all media
    for query in queries:
        negate = bool(query) and query[0].type == "ident" and query[0].lower_value == "not"
        if query and query[0].type == "ident" and query[0].lower_value in ("not", "only"):
            query = query[1:]
        holds = True
        if query and query[0].type == "ident":
            holds = query[0].lower_value in _SCREEN_TYPES
            query = query[1:]
        for token in query:
            if token.type == "ident" and token.lower_value == "and":
                continue
            holds = holds and token.type == "() block" and _feature_holds(token)
        if holds != negate:
            return True
    return False


def _style_rules(rules, depth: int = 0):
    """The style rules that hold on a desktop screen, in order, @media/@supports/@layer opened
    (ten levels deep at most: real sheets nest two or three)."""
    for rule in rules:
        if rule.type == "qualified-rule":
            yield rule
        elif rule.type == "at-rule" and rule.content is not None:
            keyword = rule.lower_at_keyword
            if keyword == "media" and not media_applies(rule.prelude):
                continue
            first = _tokens(rule.prelude)[:1]
            if keyword == "supports" and first and first[0].type == "ident" and first[0].lower_value == "not":
                continue  # assume a modern browser: it supports what is asked, not the "not"
            if keyword in ("media", "supports", "layer") and depth < 10:
                yield from _style_rules(tinycss2.parse_rule_list(rule.content, skip_comments=True,
                                                                 skip_whitespace=True), depth + 1)
            # @font-face, @keyframes, @page, @container (no container to judge) ...: nothing to hide


def _declarations(tokens, properties: Collection[str]) -> list[tuple[str, str, bool]]:
    out = []
    for decl in tinycss2.parse_declaration_list(tokens, skip_comments=True, skip_whitespace=True):
        if decl.type == "declaration" and decl.lower_name in properties:
            out.append((decl.lower_name, " ".join(tinycss2.serialize(decl.value).split()), decl.important))
    return out


_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|\"[^\"]*\"|'[^']*'")


def _unbracketed(selector: str, gap: str) -> str:
    """The selector without its (...), [...] and strings, innermost first (selectors are at most
    MAX_SELECTOR_CHARS long, so this ends soon)."""
    while (plain := _BRACKETED.sub(gap, selector)) != selector:
        selector = plain
    return selector


def _could_match(selector: str, classes: set, ids: set, tags: set) -> bool:
    """False only when the selector needs a class, id or tag the page lacks (every compound of it
    must match some element): a cheap test that lets 50,000 rules for other pages cost no matching."""
    if "\\" in selector or "|" in selector:
        return True  # escapes and namespaces: too subtle for this test, let XPath decide
    selector = _unbracketed(selector, " ")  # :not(.x) and [class~=x] require nothing here
    for need in re.findall(r"\.(-?[_a-zA-Z\u0080-\uffff][\w\u0080-\uffff-]*)", selector):
        if need not in classes:
            return False
    for need in re.findall(r"#([\w\u0080-\uffff-]+)", selector):
        if need not in ids:
            return False
    for compound in re.split(r"[\s>+~]+", selector.strip()):
        tag = re.match(r"[a-zA-Z][\w-]*", compound)
        if tag is not None and tag.group().lower() not in tags:
            return False
    return True


def page_styles(doc: etree._Element, properties: Collection[str], where: str = "page") -> dict:
    """element -> "prop:value;..." of `properties` as cascaded from the page's <style> rules and
    the element's inline style, for every element a rule reaches; `where` names the page in
    warnings."""
    css = []
    for style in doc.iter("style"):
        if (style.get("type") or "text/css").strip().lower() != "text/css":
            continue
        media = style.get("media")
        if media and not media_applies(tinycss2.parse_component_value_list(media)):
            continue
        css.append(style.text or "")
    text = "\n".join(css)
    lowered = text.lower()
    if "\\" not in text and not any(name in lowered for name in properties):
        return {}  # no rule can set a property that hides (an escaped name would have a backslash)
    if len(text) > MAX_CSS_CHARS:
        log.warning("%s has %d characters of <style>: only the first %d are read for hidden text",
                    where, len(text), MAX_CSS_CHARS)
        text = text[:MAX_CSS_CHARS]

    elements = [el for el in doc.iter(etree.Element)]
    costs = _cost_model(elements)
    classes = {c for el in elements for c in (el.get("class") or "").split()}
    ids = {el.get("id") for el in elements if el.get("id")}
    tags = {el.tag for el in elements if isinstance(el.tag, str)}

    # element -> property -> (cascade key, value); key: (!important, inline, specificity, order)
    won: dict = {}
    matched: dict[str, tuple | None] = {}  # selector -> (specificity, elements), None: never applies
    selectors = visits = 0
    sheet = tinycss2.parse_stylesheet(text, skip_comments=True, skip_whitespace=True)
    for order, rule in enumerate(_style_rules(sheet)):
        try:
            decls = _declarations(rule.content, properties)
            selectors_text = [tinycss2.serialize(part).strip() for part in _split_commas(rule.prelude)] if decls else []
        except RecursionError:
            continue  # thousands of nested brackets: no real rule, and tinycss2 serialises recursively
        for selector in selectors_text:
            if (not selector or len(selector) > MAX_SELECTOR_CHARS or _STATEFUL.search(selector)
                    or not _could_match(selector, classes, ids, tags)):
                continue
            if selector not in matched:  # one match per distinct selector, however often it recurs
                if selectors >= MAX_SELECTORS or visits >= MAX_VISITS:
                    log.warning("%s: stylesheet matching stopped after %d selectors (~%d XPath steps): "
                                "later rules are not used to find hidden text", where, selectors, visits)
                    return _finish(won, properties)
                selectors += 1
                visits += _cost(selector, costs)
                matched[selector] = _match(doc, selector)
            if matched[selector] is None:
                continue
            specificity, matches = matched[selector]
            for el in matches:
                props = won.setdefault(el, {})
                for name, value, important in decls:
                    key = (important, False, specificity, order)
                    if name not in props or key > props[name][0]:
                        props[name] = (key, value)
    return _finish(won, properties)


_COMBINATORS = re.compile(r"\s*([>+~])\s*|\s+")
_SIBLING_SCANS = re.compile(r":(nth-|last-|only-|first-of|has\()", re.I)


def _cost_model(elements: list) -> tuple[int, int, int]:
    """(elements, sum of depths, sum of sibling positions): an XPath step over every element costs
    the first, a descendant step at most the second (every element once per ancestor), a
    following-sibling step or a :nth-child() count at most the third."""
    depth: dict = {}
    depth_sum = sibling_sum = 0
    for el in elements:
        d = depth[el] = depth.get(el.getparent(), 0) + 1
        depth_sum += d
        sibling_sum += sum(range(len(el)))  # its children's positions: each counts the ones before
    return len(elements), depth_sum, sibling_sum


def _cost(selector: str, costs: tuple[int, int, int]) -> int:
    n, depth_sum, sibling_sum = costs
    plain = _unbracketed(selector, "")
    steps = [m.group(1) or " " for m in _COMBINATORS.finditer(plain.strip())]
    scans = len(_SIBLING_SCANS.findall(selector))
    return (n * (1 + steps.count(">") + steps.count("+")) + depth_sum * steps.count(" ")
            + sibling_sum * (steps.count("~") + scans))


def _match(doc: etree._Element, selector: str) -> tuple | None:
    if len(re.split(r"[\s>+~]+", selector)) > MAX_COMPOUNDS:
        return None
    try:
        parsed = cssselect.parse(selector)
        if len(parsed) != 1 or parsed[0].pseudo_element:
            return None  # ::before and the like style generated content, not the element
        return parsed[0].specificity(), etree.XPath(_TRANSLATOR.selector_to_xpath(parsed[0]))(doc)
    except (cssselect.SelectorError, etree.XPathError, RecursionError, ValueError):
        return None  # a selector cssselect cannot read: browsers drop it too


def _finish(won: dict, properties: Collection[str]) -> dict:
    out = {}
    for el, props in won.items():
        try:
            inline = _declarations(el.get("style") or "", properties)
        except RecursionError:
            inline = []  # thousands of nested brackets in a style="": no declaration a browser keeps
        for name, value, important in inline:
            key = (important, True, (0, 0, 0), 0)
            if name not in props or key > props[name][0]:
                props[name] = (key, value)
        out[el] = ";".join(f"{name}:{value}" for name, (_, value) in props.items())
    return out
