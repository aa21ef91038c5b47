"""The facts a claim must not get wrong, matched as text writes them: figures, names, versioned
names, clauses; and each fact found, absent or contradicted."""

from opencite.app.citations.facts import check, claim_facts, clause_facts
from opencite.app.citations.figures import figure_found, figures_in
from opencite.app.citations.names import name_found, name_haystack, names_in


def found(claim: str, source: str) -> bool:
    """Every figure of the claim in the source text and every name in it (but a capitalised
    first word, which may only start the sentence)."""
    facts = claim_facts(claim)
    window, haystack = figures_in(source), name_haystack(source)
    return all(figure_found(f, window) for f in facts.figures) and all(
        name_found(n, haystack) for n in facts.names if not n.soft)


def test_a_small_number_after_a_name_is_its_version_not_a_figure():
    facts = claim_facts("Over 15 trillion tokens, about 8x more data than Llama 2.")
    assert facts.numbers == {"15 trillion", "8x"}
    assert "llama 2" in facts.name_texts
    haystack = name_haystack("Llama 2 was trained on 2 trillion tokens; Meta-Llama-3-8b is new.")
    assert name_found("Llama 2", haystack) and name_found("Llama 3", haystack)
    assert not name_found("Llama 4", haystack)
    assert claim_facts("Under 1 MB.").numbers == {"1"}  # a stopword is no name
    assert claim_facts("Released in 2024 with 45 experts.").numbers == {"2024", "45"}


def test_camel_case_and_units_written_on_numbers_match_their_spaced_forms():
    haystack = name_haystack("Hugging Face and StabilityAI ordered it; the binary is under 1MB.")
    assert all(name_found(n, haystack) for n in names_in("Stability AI and Hugging Face: 1 MB."))
    assert not name_found("eleuther", haystack)
    assert found("The binary is under 1 MB.", "the binary is under 1MB")
    assert found("It needs 16GB of memory.", "It needs 16 GB of memory.")


def test_compounds_and_separators():
    assert found("It is a PyTorch-based system.", "a PyTorch system")
    assert found("Llama 2 70B Chat is used.", "we use Llama-2-70b-chat-hf")
    assert found("The meta-llama/Llama-2-70b-chat-hf model.", "the Llama 2 70B Chat model")
    assert not found("The Llama-2-13b-chat-hf model.", "the Llama 2 70B Chat model")


def test_hardware_and_instance_names():
    assert found("Deploy it on an ml.g5.12xlarge instance with A100 GPUs.", "use g5.12xlarge; A-100 GPUs")
    assert not found("Deploy it on a g5.2xlarge instance.", "use g5.12xlarge")


def test_counts_and_multiplication_signs():
    assert found("It runs on 8x A100 GPUs.", "8 A100 GPUs")
    assert found("Images are 980×980 pixels.", "images of 980 x 980 pixels")
    assert found("A single GPU (1x) is enough.", "one GPU is enough with 1 GPU")


def test_thousands_separators_and_magnitudes():
    assert found("The vocabulary has 128,256 tokens.", "a vocabulary of 128256 tokens")
    assert found("It has 8 billion parameters.", "the 8B model")
    assert found("Trained on 2 trillion tokens.", "trained on 2,000B tokens")
    assert found("A context of 32k tokens.", "a context of 32,000 tokens")
    assert found("A context of 8,192 tokens.", "a context of 8K tokens")  # k as 1024, exactly
    assert not found("A context of 8,000 tokens.", "a context of 16K tokens")


def test_number_words():
    assert found("Twelve models were released.", "12 models were released")
    assert found("It comes in 3 sizes.", "it comes in three sizes")
    assert found("Eight GPUs are used.", "8 GPUs")
    assert claim_facts("It is one of the models.").figures == ()  # a lone "one" is no figure


def test_versions_and_identifiers_in_code():
    assert found("Support landed in Transformers v4.31.0.", "Transformers release 4.31")
    assert not found("Support landed in Transformers v4.30.0.", "Transformers release 4.31")
    assert found("Pass load_in_4bit=True to from_pretrained.",
                 "```python\nmodel = AutoModel.from_pretrained(id, load_in_4bit=True)\n```")
    assert found("Call model.generate() to write.", "out = model.generate(**inputs)")
    assert not found("Pass load_in_8bit=True.", "load_in_4bit=True")


def test_scientific_notation_is_the_number_it_writes():
    assert found("The learning rate is 0.0002.", "--learning_rate 2e-4 \\")
    assert found("The learning rate is 2e-4.", "a learning rate of 0.0002")
    assert found("It uses 3e5 steps.", "300,000 steps")
    assert not found("The learning rate is 2e-5.", "--learning_rate 2e-4")
    assert claim_facts("The learning rate is 2e-4.").numbers == {"2e-4"}  # one figure, not "2e" and "4"


def test_percent_written_as_a_word():
    assert found("It saw 40 percent more tokens.", "40% more tokens")


def checked(claim: str, window: str):
    return check(claim_facts(claim), claim, window, figures_in(window), name_haystack(window))


def test_a_different_figure_of_the_same_unit_is_contradicted_one_not_stated_is_absent():
    c = checked("It was trained on 13T tokens.", "It was trained on 8T tokens of data.")
    assert c.contradicted == [("13T", "8T")] and not c.absent
    c = checked("It was trained on 13T tokens.", "It was trained on a lot of data.")
    assert c.absent == ["13T"] and not c.contradicted


def test_another_version_of_the_same_name_is_contradicted():
    c = checked("Mistral-7B-v0.2 is the base.", "Mistral-7B-v0.1 is the base.")
    assert c.contradicted and c.contradicted[0][1] == "Mistral-7B-v0.1"
    c = checked("Llama 3 is the base.", "Llama 2 is the base.")
    assert c.contradicted == [("Llama 3", "Llama 2")]


def test_a_name_in_the_place_of_another_is_contradicted():
    c = checked("StarCoder was trained on The Pile.", "StarCoder was trained on The Stack.")
    assert c.contradicted == [("Pile", "Stack")]


def test_a_negated_claim_is_contradicted_but_a_paraphrase_is_not():
    assert checked("The license does not allow commercial use.",
                   "The license allows commercial use.").contradicted
    assert checked("The license allows commercial use.",
                   "The license does not allow commercial use.").contradicted
    assert not checked("The license allows commercial use.",
                       "Its license allows commercial use of the model.").contradicted


def test_contractions_negate_as_written():
    assert checked("The license allows commercial use.", "The license doesn't allow commercial use.").contradicted
    assert checked("The license allows commercial use.", "The license doesn’t allow commercial use.").contradicted
    assert not checked("The license doesn't allow commercial use.",
                       "The license does not allow commercial use.").contradicted


def test_a_word_of_opposite_meaning_contradicts_and_two_opposites_agree():
    assert checked("Larger models degrade more after quantization.",
                   "Larger models degrade less after quantization.").contradicted == [("more", "less")]
    assert checked("A default of null enables top-k filtering.",
                   "A default of null disables top-k filtering.").contradicted == [("enables", "disables")]
    assert checked("The fine-tuned model has much stronger OCR.",
                   "The fine-tuned model has much weaker OCR.").contradicted  # inflected forms
    # An opposite word and a negation say it the claim's way.
    assert not checked("The prompt made little difference for both models.",
                       "The prompt didn't make much difference for both models.").contradicted
    # "no" is polarity already, not a word with an opposite ("all").
    assert not checked("It kept constant throughput with no increase in memory.",
                       "It generates all tokens at constant throughput without any increase in memory.").contradicted
    assert not checked("Larger models degrade less after quantization.",
                       "Larger models degrade less after quantization than small ones.").contradicted


def test_clauses_divide_a_comparison_but_not_a_number():
    clauses = clause_facts("Mixtral supports 32k tokens; Llama 3 8K tokens, with a 16,384-token window.")
    assert [(set(c.numbers), set(c.name_texts)) for c in clauses] == [
        ({"32k"}, {"mixtral"}), ({"8k"}, {"llama 3"}), ({"16,384-token"}, set())]
    assert len(clause_facts("The Berlin Wall fell in 1989.")) == 1


def test_a_negation_no_window_writes_is_an_absent_fact_not_a_contradiction():
    """"does not allow" against a window about the license that negates nothing: the window
    leaves the sentence's negation out (it lowers support); a window that negates, or a table
    row with a "no" cell, states it."""
    c = checked("Llama 2 ships a community license that does not allow commercial use.",
                "Llama 2 introduces longer context and commercial licensing.")
    assert (c.absent, c.contradicted) == (["not"], [])
    assert checked("The license does not allow commercial use.",
                   "The license does not allow commercial use of the model.").absent == []
    assert checked("The license allows commercial use.", "The license and commercial use.").absent == []
    claim, row = "Gemini does not have open weights.", "| Gemini 1.0 Pro | ❌ |"
    facts = claim_facts(claim)
    assert check(facts, claim, row, figures_in(row), name_haystack(row), negation_text="").absent == ["not"]
    assert check(facts, claim, row, figures_in(row), name_haystack(row), negation_text="", says_no=True).absent == []


def test_a_table_row_says_no_with_its_cells():
    from opencite.app.citations.tables import TableRows, says_no

    header = "| Model | Open weights |"
    assert says_no(TableRows(header, ("| Gemini 1.0 Pro | ❌ |",), ("Gemini 1.0 Pro",)))
    assert says_no(TableRows(header, ("| Gemini 1.0 Pro | No |",), ("Gemini 1.0 Pro",)))
    assert not says_no(TableRows(header, ("| Idefics2 | ✅ |",), ("Idefics2",)))
    assert not says_no(TableRows(header, ("| No-Model | ✅ |",), ("No-Model",)))  # the row's name is no cell value
