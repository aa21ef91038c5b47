"""What the page's own stylesheet costs extraction (ingest/stylesheet.py): the time of
html_to_article on pages with a huge or hostile <style>, against the same page with no <style>,
in the same run (so the ratio holds on a loaded machine too).

Pages (each with a ~600-paragraph article):
- typical: 1,000 rules (~40 kB) of a site theme, hides and @media included, then the hiding rule;
- 50k-absent: 50,000 rules for classes the page lacks, then one rule that hides a paragraph;
- 50k-present: 50,000 hiding/showing rules that all name classes the page has;
- worst: 2 MB (the cap) of rules with distinct selectors that all could match: the selector cap;
- pathological: 2,000 long descendant chains and :not()/:nth-child() selectors over 200 nested
  divs: the XPath-steps cap stops matching early, so its hiding rule (last) is NOT used.

    python tests/benchmarks/bench_css_hidden.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from opencite.ingest import stylesheet
from opencite.ingest.html_article import html_to_article


def article(extra: str = "") -> str:
    paras = "".join(f"<p class='p{i % 50} t'>Paragraph {i} of the post, about retrieval.</p>" for i in range(600))
    return f"<article><h1>Post</h1>{paras}{extra}<p class='k9q'>HIDDEN-BY-SHEET</p></article>"


def page(css: str, body: str) -> str:
    style = f"<style>{css}</style>" if css else ""
    return f"<html><head><title>t</title>{style}</head><body>{body}</body></html>"


def cases() -> dict[str, tuple[str, str]]:
    typical = "".join(f".c{i} .p{i % 50}>a{{color:#{i % 999:03d};display:{('flex', 'none')[i % 2]}}}\n"
                      f"@media (max-width:600px){{.t .p{i % 50}{{display:none}}}}\n" for i in range(500))
    absent = "".join(f".x{i} a{{display:none;color:red}}\n" for i in range(50_000))
    present = "".join(f".p{i % 50}.t{{display:{'none' if i % 2 else 'block'}}}\n" for i in range(50_000))
    worst = "".join(f".p{i % 50}.p{i // 50 % 50}.t:not(.z{i}){{display:block;color:#{i % 999:03d};"
                    f"margin:0 auto;padding:1px 2px}}\n" for i in range(28_000))
    nested = "<div class='n'>" * 200 + "<p>deep</p>" + "</div>" * 200
    chains = "".join(f"{' '.join(['.n'] * (2 + i % 9))} p:not(.z{i}):nth-child({i % 7}n+1){{opacity:0.5}}\n"
                     for i in range(2_000))
    return {
        "typical": (typical + ".k9q{display:none}", article()),
        "50k-absent": (absent + ".k9q{display:none}", article()),
        "50k-present": (present + ".k9q{display:none}", article()),
        "worst": (worst[:worst.rfind("\n", 0, stylesheet.MAX_CSS_CHARS - 20)] + "\n.k9q{display:none}", article()),
        "pathological": (chains + ".k9q{display:none}", article(nested)),
    }


def timed(text: str, repeat: int) -> tuple[float, str]:
    runs, markdown = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        markdown = html_to_article(text, "http://bench.test/post").markdown
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), markdown


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average before: {os.getloadavg()}")
    print(f"caps: {stylesheet.MAX_CSS_CHARS:,} chars of <style>, {stylesheet.MAX_SELECTORS:,} selectors, "
          f"{stylesheet.MAX_VISITS:,} XPath steps")
    print(f"{'page':<14}{'css chars':>11}{'with <style>':>14}{'without':>10}{'ratio':>8}  hidden dropped")
    for name, (css, body) in cases().items():
        with_css, markdown = timed(page(css, body), args.repeat)
        without, _ = timed(page("", body), args.repeat)
        print(f"{name:<14}{len(css):>11,}{with_css:>13.2f}s{without:>9.3f}s{with_css / without:>7.0f}x  "
              f"{'HIDDEN-BY-SHEET' not in markdown}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
