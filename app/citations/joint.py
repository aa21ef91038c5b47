"""Joint support: a sentence no source states alone (a comparison of two pages, "Mixtral
supports 32k tokens; Llama 3 8K") supported by two or more sources together, each holding the
facts of one of its clauses. `best` maps a source number to its best window as attribution
decided it: (support, supports alone, window, its fact check)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

from opencite.app.citations.facts import ClaimFacts, FactCheck
from opencite.app.citations.figures import figure_found
from opencite.app.citations.names import name_found


def joint_support(parts: list[int], best, haystacks: dict[int, str], clauses: list[ClaimFacts],
                   threshold: float, full_check: Callable[[int], FactCheck]) -> list[int]:
    """A sentence joining facts of several sources (a comparison: "Mixtral supports 32k tokens;
    Llama 3 8K"): each clause's figures must be in one source's best window and its names in that
    source (a figure of the other clause is no contradiction). The sources (two or more) that support it
    together this way, or none."""
    if not parts or max(best[n][0] for n in parts) < threshold or not clauses:
        return []
    holders = set()
    for facts in clauses:
        if _stated_otherwise(facts, parts, haystacks, full_check):
            return []
        held = [n for n in parts if all(figure_found(x, best[n][2].numbers) for x in facts.figures)
                and all(name_found(x, haystacks[n]) for x in facts.names if not x.soft)]
        if not held:
            return []
        holders.add(max(held, key=lambda n: best[n][0]))
    joint = [n for n in parts if n in holders and best[n][0] >= threshold / 2]
    return joint if len(joint) > 1 else []


def _stated_otherwise(facts: ClaimFacts, parts: list[int], haystacks: dict[int, str],
                      full_check: Callable[[int], FactCheck]) -> bool:
    """One of the sources states a fact of this clause otherwise, and names what the clause names
    (a page about another thing, "Llama 3 ... 15 trillion" against "Falcon 180B ... 3.5 trillion",
    speaks not to it): such a clause's fact held by another source is no joint support.
    `full_check(n)`: the fact check of source n's best window, aligned with the claim."""
    own = {x.text for x in facts.figures} | {x.text for x in facts.names}
    for n in parts:
        disputed = own & {claimed for claimed, _ in full_check(n).contradicted}
        # The names it states otherwise are not asked of it ("ServiceNow" where the clause says "NVIDIA").
        if disputed and all(name_found(x, haystacks[n]) for x in facts.names if x.text not in disputed):
            return True
    return False


def best_joint_pair(best, haystacks: dict[int, str], clauses: list[ClaimFacts], threshold: float,
                    full_check: Callable[[int], FactCheck]) -> list[int]:
    """The best-scoring two sources that support the sentence together, when no one does alone."""
    pairs = sorted(combinations(sorted(best), 2), key=lambda p: -(best[p[0]][0] + best[p[1]][0]))
    for pair in pairs:
        joint = joint_support(list(pair), best, haystacks, clauses, threshold, full_check)
        if joint:
            return joint
    return []
