"""The facts a claim must not get wrong: figures, names, versioned names, clauses."""

from opencite.app.citations.facts import claim_facts, clause_facts, name_found, name_haystack, names_in


def test_a_small_number_after_a_name_is_its_version_not_a_figure():
    facts = claim_facts("Over 15 trillion tokens, about 8x more data than Llama 2.")
    assert facts.numbers == {"15", "8x"}
    assert "llama 2" in facts.names
    haystack = name_haystack("Llama 2 was trained on 2 trillion tokens; Meta-Llama-3-8b is new.")
    assert name_found("llama 2", haystack) and name_found("llama 3", haystack)
    assert not name_found("llama 4", haystack)
    assert claim_facts("Under 1 MB.").numbers == {"1"}  # a stopword is no name
    assert claim_facts("Released in 2024 with 45 experts.").numbers == {"2024", "45"}


def test_camel_case_and_units_written_on_numbers_match_their_spaced_forms():
    haystack = name_haystack("Hugging Face and StabilityAI ordered it; the binary is under 1MB.")
    assert all(name_found(n, haystack) for n in names_in("Stability AI and Hugging Face: 1 MB."))
    assert not name_found("eleuther", haystack)


def test_clauses_divide_a_comparison_but_not_a_number():
    clauses = clause_facts("Mixtral supports 32k tokens; Llama 3 8K tokens, with a 16,384-token window.")
    assert [(set(c.numbers), set(c.names)) for c in clauses] == [
        ({"32k"}, {"mixtral"}), ({"8k"}, {"llama", "llama 3"}), ({"16384-token"}, set())]
    assert len(clause_facts("The Berlin Wall fell in 1989.")) == 1
