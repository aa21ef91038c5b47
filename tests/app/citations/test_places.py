"""A figure in its place (`places.misplaced`): found in the window, but the window states another
value of its kind next to the claim's words."""

from opencite.app.citations.facts import claim_facts, check
from opencite.app.citations.figures import figures_in
from opencite.app.citations.places import misplaced

LLAMA = ("The release introduces a family of LLMs, ranging in scale from 7B to 70B parameters (7B, 13B, 70B). "
         "The pretrained models have a longer context length, and use grouped-query attention for fast inference "
         "of the 70B model.")
CODE_LLAMA = ("Increasing Llama 2's 4k context window to Code Llama's 16k (that can extrapolate up to 100k) was "
              "possible due to recent developments in RoPE scaling.")


def moved(claim: str, window: str) -> list[tuple[str, str]]:
    facts = claim_facts(claim)
    found = check(facts, claim, window, figures_in(window), window).found
    return misplaced(claim, facts.figures, window, figures_in(window), found)


def test_a_figure_written_only_elsewhere_while_a_rival_stands_in_its_place():
    assert moved("Grouped-query attention is used so that the 13B model can run inference quickly.", LLAMA) == [
        ("13B", "70B")]
    assert moved("Grouped-query attention is used so that the 70B model can run inference quickly.", LLAMA) == []


def test_a_figure_next_to_some_of_the_claims_words_is_in_its_place():
    # 4k stands beside more of the claim's words, but 16k has some of them too: no contradiction.
    assert moved("Code Llama was trained with a 16k context window, and recent progress in RoPE scaling lets it "
                 "extrapolate to 100k tokens.", CODE_LLAMA) == []
    assert moved("Llama 2 comes in three sizes: 7B, 13B and 70B parameters.", LLAMA) == []


def test_figures_of_another_kind_or_the_claims_own_are_no_rivals():
    # 40% is written away from the claim's words; 7B stands beside them, but counts parameters.
    window = "The model has 7B parameters and runs fast inference. Code makes up 40% of the data."
    assert moved("The model runs fast inference on 40% of requests.", window) == []
    # 7B is written away from the claim's words; 40B stands beside them, but the claim states it too.
    window = "Small: 7B. The large model, with 40B parameters, runs on eight GPUs."
    assert moved("The large model, with 7B parameters, runs on eight GPUs; 40B is the other.", window) == []
