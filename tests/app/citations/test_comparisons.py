"""Orders a sentence states between two of its own figures, read against the source's figures
(`comparisons`), unit-level and through attribution with the real MiniLM scorer."""

import pytest

from opencite.app.answer import Source
from opencite.app.citations.attribution import attribute, default_scorer
from opencite.app.citations.comparisons import order_conflict, stated_orders
from opencite.app.citations.figures import figures_in
from opencite.app.citations.names import name_haystack
from opencite.settings import AttributionSettings, EmbeddingSettings

TABLE = ("| Model | MMMU | DocVQA |\n| --- | --- | --- |\n| Claude 3 Haiku | 50.2 | 88.8 |\n"
         "| Gemini 1.0 Pro | 47.9 | 88.1 |\n| Idefics2 | 43.5 | 67.3 |")


def conflict(claim: str, window: str, source: str = ""):
    return order_conflict(claim, figures_in(window), name_haystack(source or window))


def test_an_order_the_figures_do_not_have_is_contradicted():
    source = "Claude 3 Haiku scores 50.2 on MMMU. Idefics2 scores 43.5 on MMMU."
    assert conflict("Claude 3 Haiku reaches 50.2 on MMMU, below the 43.5 of Idefics2.", source) == (
        "50.2 on MMMU, below the 43.5", "50.2 … 43.5")
    assert conflict("It scores 33.5 on HumanEval, just above StarCoder's 33.6.", "33.5 and 33.6") is not None
    assert conflict("Claude 3 Haiku reaches 50.2 on MMMU, above the 43.5 of Idefics2.", source) is None
    assert conflict("With splitting it reaches 74.0 on DocVQA, up from 67.3 without.", "74.0 67.3") is None
    assert conflict("With splitting it reaches 67.3 on DocVQA, up from 74.0 without.", "74.0 67.3") is not None


def test_one_figure_in_the_window_and_the_other_elsewhere_in_the_source():
    window = "| Claude 3 Haiku | 50.2 | 88.8 |"
    assert conflict("Claude 3 Haiku reaches 50.2 on MMMU, below the 43.5 of Idefics2.", window, TABLE) is not None
    # Neither figure in the window: the window says nothing of the order.
    assert conflict("Claude 3 Haiku reaches 50.2 on MMMU, below the 43.5 of Idefics2.", "| Other | 1 |", TABLE) is None
    # A figure the source does not state: absent, not an order to read.
    assert conflict("Claude 3 Haiku reaches 50.2 on MMMU, below the 61.5 of Idefics2.", window, TABLE) is None


@pytest.mark.parametrize("claim", [
    "Gemma-7B, at 63.75, scores nearly 10 points higher than Llama 2 7B.",  # a difference
    "The 4-bit model runs 2x faster than the 16-bit one, 30 against 15 tokens per second.",
    "It reaches 50.2, not above the 43.5 of Idefics2.",  # negated
    "Llama 2 needed Transformers v4.31.0, more than Code Llama's v4.33.0.",  # versions
    "It has 8B parameters, more than the 64 tokens per image.",  # different magnitudes
    "StarCoderBase saw fewer pretraining tokens than the Code Llama base models, 1 trillion against 2,500B.",
])
def test_differences_ratios_negations_and_unlike_figures_state_no_order(claim):
    assert stated_orders(claim) == ()


@pytest.fixture(scope="module")
def scorer(minilm_path):
    from opencite.store.embeddings import load_embeddings

    return default_scorer(AttributionSettings(), load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu")))


def test_attribution_contradicts_the_order_with_the_sources_figures(scorer):
    sources = [Source(1, "Idefics2", "https://blog.example/idefics2", "The launch table:\n\n" + TABLE, 0.9)]
    right = "Claude 3 Haiku reaches 50.2 on MMMU, above the 43.5 of Idefics2 [1]."
    wrong = "Claude 3 Haiku reaches 50.2 on MMMU, below the 43.5 of Idefics2 [1]."
    settings = AttributionSettings(mode="repair")
    assert attribute(right, sources, scorer, settings).sentences[0].verdict == "supported"
    s = attribute(wrong, sources, scorer, settings).sentences[0]
    assert (s.verdict, s.markers) == ("contradicted", [])
    assert [d for e in s.evidence for d in e.differs] == [{"claim": "50.2 on MMMU, below the 43.5", "source": "50.2 … 43.5"}]
