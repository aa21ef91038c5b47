"""Attribution outcomes, repair, numbers-and-names check and the API shapes, with the real
MiniLM embedder as the default scorer (and a tiny random CrossEncoder for the optional one)."""

import pytest

from opencite.app.answer import Source
from opencite.app.citations.annotations import annotations, attributions_json
from opencite.app.citations.attribution import attribute, default_scorer
from opencite.app.citations.figures import numbers_in
from opencite.settings import AttributionSettings, EmbeddingSettings

SOURCES = [
    Source(1, "Paris facts", "https://blog.example/paris",
           "Paris is the capital of France. The Eiffel Tower was completed in 1889.", 0.9),
    Source(2, "Rome facts", "https://blog.example/rome",
           "Rome is the capital of Italy. The Colosseum was finished in 80 AD.", 0.5),
    Source(3, "Berlin facts", "https://blog.example/berlin",
           "## History\n\nBerlin is the capital of Germany. The Berlin Wall fell in 1989.", 0.4),
]


@pytest.fixture(scope="module")
def scorer(minilm_path):
    from opencite.store.embeddings import load_embeddings

    return default_scorer(AttributionSettings(), load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu")))


def run(answer, scorer, mode="repair"):
    return attribute(answer, SOURCES, scorer, AttributionSettings(mode=mode))


def test_each_outcome_and_the_repaired_text(scorer):
    answer = ("Paris is the capital of France [1]. The Eiffel Tower was completed in 1889 [2]. "
              "The Berlin Wall fell in 1989. Madrid is the capital of Spain [1]. Yes.")
    a = run(answer, scorer)
    assert [s.outcome for s in a.sentences] == ["supported", "repointed", "added", "unsupported"]
    assert [s.verdict for s in a.sentences] == ["supported", "supported", "supported", "not_found"]
    assert a.counts == {"supported": 1, "repointed": 1, "added": 1, "unsupported": 1}
    assert a.verdicts == {"supported": 3, "contradicted": 0, "not_found": 1}
    # No source states the last sentence, none contradicts it: its marker stays (shown unverified).
    assert a.text == ("Paris is the capital of France [1]. The Eiffel Tower was completed in 1889 [1]. "
                      "The Berlin Wall fell in 1989 [3]. Madrid is the capital of Spain [1]. Yes.")
    for s in a.sentences:
        assert a.text[s.start:s.end] == s.text
    repointed = a.sentences[1]
    assert repointed.original_markers == [2] and repointed.markers == [1]
    assert repointed.quote_for(1).quote == "The Eiffel Tower was completed in 1889."
    assert SOURCES[0].snippet[repointed.quote_for(1).start:repointed.quote_for(1).end].startswith("The Eiffel")
    assert a.sentences[3].markers == [1] and a.sentences[3].score < 0.5  # flagged, still in the text


def test_only_decides_the_sentences_named_and_passes_the_others_through(scorer):
    """The lookup's second pass: sentences outside `only` keep their text and markers, unjudged."""
    answer = "Paris is the capital of France [2]. The Eiffel Tower was completed in 1889 [2]."
    whole = run(answer, scorer)
    second = attribute(answer, SOURCES, scorer, AttributionSettings(mode="repair"), only=[1])
    decided = [(s.outcome, s.verdict, s.markers, s.evidence) for s in (whole.sentences[1], second.sentences[1])]
    assert decided[0] == decided[1]
    assert whole.sentences[0].outcome == "repointed"
    passed = second.sentences[0]
    assert (passed.outcome, passed.verdict, passed.markers, passed.evidence) == ("unsupported", "not_found", [2], [])
    assert second.text.startswith("Paris is the capital of France [2].")


def test_a_kept_decision_is_reused_only_for_the_same_sentence_and_sources(scorer):
    """The memo the chain fills while the LLM writes: the same sentence over the same sources is
    not decided again; another source text, or another sentence, is."""
    settings = AttributionSettings(mode="repair")
    memo: dict = {}

    def decisions():  # keys (sentence, sources, the answer's other pages); None there: the scores
        return [key for key in memo if key[2] is not None]

    first = attribute("The Eiffel Tower was completed in 1889 [1].", SOURCES, scorer, settings, memo=memo)
    assert len(decisions()) == 1 and first.sentences[0].outcome == "supported"
    again = attribute("Paris is the capital of France [1]. The Eiffel Tower was completed in 1889 [1].",
                      SOURCES, scorer, settings, memo=memo)
    assert len(decisions()) == 2 and [s.outcome for s in again.sentences] == ["supported", "supported"]
    assert again.sentences[1].start > 0  # a kept decision takes the sentence's place in this answer
    altered = [Source(1, "Paris facts", SOURCES[0].url, "The Eiffel Tower was completed in 1887.", 0.9)]
    changed = attribute("The Eiffel Tower was completed in 1889 [1].", altered, scorer, settings, memo=memo)
    assert len(decisions()) == 3 and changed.sentences[0].verdict == "contradicted"
    assert changed.sentences[0].markers == [] and again.sentences[1].markers == [1]


def test_flag_mode_keeps_the_text_and_reports_the_same_outcomes(scorer):
    answer = "The Eiffel Tower was completed in 1889 [2]. The Berlin Wall fell in 1989."
    a = run(answer, scorer, mode="flag")
    assert a.text == answer
    assert [s.outcome for s in a.sentences] == ["repointed", "added"]
    assert a.sentences[0].markers == [2]  # as written; the supporting source is in the evidence
    assert [(e.n, e.supports) for e in a.sentences[0].evidence] == [(2, False), (1, True)]


def test_a_changed_figure_or_name_is_contradicted_however_similar(scorer):
    for altered, differs in (("The Berlin Wall fell in 1991 [3].", ("1991", "1989")),
                             ("The Rome Wall fell in 1989 [3].", ("Rome", "Berlin")),
                             ("The Berlin Wall did not fall in 1989 [3].", None)):
        a = run(altered, scorer)
        s = a.sentences[0]
        assert (s.outcome, s.verdict) == ("unsupported", "contradicted"), altered
        assert "[" not in a.text  # repair removes a marker on evidence against it
        conflict = s.conflict()
        assert conflict.n == 3 and conflict.quote.endswith("The Berlin Wall fell in 1989.")
        if differs:
            assert (conflict.differs[0]["claim"], conflict.differs[0]["source"]) == differs
    assert run("The Berlin Wall fell in 1989 [3].", scorer).sentences[0].outcome == "supported"


def test_a_fact_absent_from_the_source_lowers_support_but_does_not_veto_it(scorer):
    sentence = "The Colosseum was finished in 80 AD [2], in Rome's Flavian dynasty."
    a = run(sentence, scorer)
    assert a.sentences[0].verdict == "supported" and a.sentences[0].markers == [2]
    strict = attribute(sentence, SOURCES, scorer, AttributionSettings(absent_penalty=1.0))
    assert strict.sentences[0].verdict == "not_found" and strict.sentences[0].markers == [2]


def test_a_sentence_not_found_keeps_its_markers_in_repair_mode(scorer):
    a = run("Madrid is the capital of Spain [2].", scorer)
    s = a.sentences[0]
    assert (s.outcome, s.verdict, s.markers, s.original_markers) == ("unsupported", "not_found", [2], [2])
    assert a.text == "Madrid is the capital of Spain [2]."


def test_empty_and_code_only_answers_check_nothing(scorer):
    assert run("", scorer).sentences == [] and run("", scorer).text == ""
    code = "```python\nmodel = AutoModel.from_pretrained('gpt2', load_in_8bit=True)\n```"
    a = run(code, scorer)
    assert a.sentences == [] and a.text == code and a.unchecked == 0


def test_a_long_answer_checks_the_first_max_sentences_and_says_so(scorer):
    answer = " ".join(f"The Berlin Wall fell in 1989 and sentence {i} says so." for i in range(10_000))
    a = attribute(answer, SOURCES, scorer, AttributionSettings(max_sentences=200))
    assert len(a.sentences) == 200 and a.unchecked == 9_800
    assert attributions_json(a, SOURCES)["unchecked"] == 9_800
    assert AttributionSettings().max_sentences == 200


def test_numbers_are_normalised():
    values = [sorted(f.values) for f in numbers_in("v1.4.0 has 128,256 tokens and 32K context.")]
    assert values == [["1.4", "v:1.4"], ["128256"], ["32000", "32768"]]


def test_abstentions_and_short_sentences_are_not_checked(scorer):
    a = run("Yes. The indexed pages do not cover this question.", scorer)
    assert a.sentences == [] and a.text == "Yes. The indexed pages do not cover this question."


def test_openai_annotations_and_attributions_field(scorer):
    a = run("The Eiffel Tower was completed in 1889 [2]. Madrid is the capital of Spain [1].", scorer)
    notes = annotations(a, SOURCES)
    assert notes[0] == {"type": "url_citation", "url_citation": {
        "start_index": 0, "end_index": a.sentences[0].end,
        "url": "https://blog.example/paris#:~:text=The%20Eiffel%20Tower%20was%20completed%20in%201889.",
        "title": "Paris facts"}}
    # The unverified sentence keeps its marker: its annotation has the page, no quote to open.
    assert [n["url_citation"]["url"] for n in notes[1:]] == ["https://blog.example/paris"]
    body = attributions_json(a, SOURCES)
    assert body["counts"]["unsupported"] == 1 and body["mode"] == "repair"
    assert body["verdicts"] == {"supported": 1, "contradicted": 0, "not_found": 1} and body["unchecked"] == 0
    assert [s["verdict"] for s in body["sentences"]] == ["supported", "not_found"]
    first = body["sentences"][0]
    assert first["outcome"] == "repointed" and first["original_markers"] == [2] and first["markers"] == [1]
    assert first["evidence"][1]["quote"] == "The Eiffel Tower was completed in 1889."
    assert first["evidence"][0]["quote"] is None  # a non-supporting source gets no quote
    wrong = attributions_json(run("The Berlin Wall fell in 1991 [3].", scorer), SOURCES)["sentences"][0]
    assert wrong["verdict"] == "contradicted" and wrong["markers"] == [] and wrong["original_markers"] == [3]
    (e,) = [e for e in wrong["evidence"] if e["contradicts"]]
    assert e["differs"] == [{"claim": "1991", "source": "1989"}] and "1989" in e["quote"]
    assert e["fragment_url"].startswith("https://blog.example/berlin#:~:text=")


@pytest.fixture(scope="module")
def tiny_nli(tmp_path_factory):
    """A tiny random-weight BERT NLI cross-encoder (3 labels) saved offline."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-nli")
    words = sorted({w.strip(".,").lower() for s in SOURCES for w in s.snippet.split()})
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128, num_labels=3,
                        id2label={0: "contradiction", 1: "entailment", 2: "neutral"},
                        label2id={"contradiction": 0, "entailment": 1, "neutral": 2})
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_cross_encoder_scorer_loads_a_local_nli_model_and_scores_entailment(tiny_nli):
    from sentence_transformers import CrossEncoder

    scorer = default_scorer(AttributionSettings(scorer="cross-encoder", cross_encoder_model=tiny_nli))
    claims, passages = ["Paris is the capital of France."], ["Paris is the capital.", "Rome is old."]
    scores = scorer.score(claims, [[p] for p in passages])
    probs = CrossEncoder(tiny_nli, device="cpu").predict([(p, claims[0]) for p in passages], apply_softmax=True)
    assert scores.shape == (1, 2) and scores[0] == pytest.approx(probs[:, 1], abs=1e-5)
    a = attribute("Paris is the capital of France [1].", SOURCES, scorer, AttributionSettings(threshold=0.0))
    assert a.sentences[0].outcome == "supported"  # every pair passes a zero threshold


def test_cross_encoder_scorer_needs_a_model():
    with pytest.raises(ValueError, match="CROSS_ENCODER_MODEL"):
        default_scorer(AttributionSettings(scorer="cross-encoder"))


def test_a_sentence_joining_two_cited_sources_is_supported_by_both(scorer):
    a = run("The Eiffel Tower was completed in 1889 and the Berlin Wall fell in 1989 [1][3].", scorer)
    assert a.sentences[0].outcome == "supported" and a.sentences[0].markers == [1, 3]
    a = run("The Eiffel Tower was completed in 1889 and the Berlin Wall fell in 1991 [1][3].", scorer)
    assert a.sentences[0].outcome == "unsupported"


MODELS = [
    Source(1, "Mixtral", "https://blog.example/mixtral",
           "Mixtral 8x7B supports a context length of 32k tokens. It is released under Apache 2.0. "
           "The total number of parameters is about 45B.", 0.9),
    Source(2, "Llama 3", "https://blog.example/llama3",
           "Llama 3 has a context length of 8K tokens. Llama 3 was trained on over 15 trillion tokens.", 0.8),
    Source(3, "Falcon 180B", "https://blog.example/falcon",
           "Falcon 180B was trained on 3.5 trillion tokens. Training used up to 4096 GPUs at once. "
           "Most of the data (about 85%) is web data from RefinedWeb.", 0.7),
]


def test_a_sentence_may_join_a_source_sentence_with_the_one_two_after_it(scorer):
    answer = "Falcon 180B was trained on 3.5 trillion tokens, about 85% of it web data from RefinedWeb."
    a = attribute(answer, MODELS, scorer, AttributionSettings())
    assert a.sentences[0].outcome == "added" and a.sentences[0].markers == [3]
    assert a.sentences[0].quote_for(3).quote.startswith("Falcon 180B was trained")
    narrow = attribute(answer, MODELS, scorer, AttributionSettings(window_sentences=2, absent_penalty=1.0))
    assert narrow.sentences[0].outcome == "unsupported"  # "85%" is absent from any two sentences


def test_a_comparison_of_two_sources_cites_both_and_every_fact_still_counts(scorer):
    a = attribute("Mixtral supports 32k tokens; Llama 3 supports 8K tokens.", MODELS, scorer, AttributionSettings())
    assert a.sentences[0].outcome == "added" and sorted(a.sentences[0].markers) == [1, 2]
    for altered in ("Mixtral supports 64k tokens; Llama 3 supports 8K tokens.",
                    "Mixtral supports 32k tokens; Llama 4 supports 8K tokens.",
                    "Falcon supports 32k tokens; Llama 3 supports 8K tokens."):
        assert attribute(altered, MODELS, scorer, AttributionSettings()).sentences[0].outcome == "unsupported", altered


def test_a_fact_its_own_page_states_otherwise_is_not_joined_from_another_page(scorer):
    # "3.5 trillion" stands on the Falcon page; the Llama 3 page gives 15 trillion in its place.
    a = attribute("Llama 3 has a context length of 8K tokens and was trained on 3.5 trillion tokens.", MODELS,
                  scorer, AttributionSettings())
    assert a.sentences[0].verdict == "contradicted"
    assert [d for e in a.sentences[0].evidence for d in e.differs] == [{"claim": "3.5 trillion", "source": "15 trillion"}]
    # Said of Falcon 180B, the same figure is a comparison of two pages: both support it.
    a = attribute("Llama 3 has a context length of 8K tokens, and Falcon 180B was trained on 3.5 trillion tokens.",
                  MODELS, scorer, AttributionSettings())
    assert a.sentences[0].verdict == "supported" and sorted(a.sentences[0].markers) == [2, 3]


def test_a_name_its_own_page_states_otherwise_is_not_joined_from_another_page(scorer):
    sources = [Source(1, "StarCoder", "https://blog.example/starcoder",
                      "BigCode is an open scientific collaboration led jointly by Hugging Face and ServiceNow. "
                      "It works on large language models for code.", 0.9),
               Source(2, "DGX Cloud", "https://blog.example/dgx",
                      "We are also working with NVIDIA to make accelerated computing more accessible to the "
                      "Hugging Face community.", 0.8)]
    right = attribute("BigCode is an open scientific collaboration led jointly by Hugging Face and ServiceNow.",
                      sources, scorer, AttributionSettings()).sentences[0]
    assert (right.verdict, right.markers) == ("supported", [1])
    wrong = attribute("BigCode is an open scientific collaboration led jointly by Hugging Face and NVIDIA.",
                      sources, scorer, AttributionSettings()).sentences[0]
    assert wrong.verdict == "contradicted"
    assert [d for e in wrong.evidence for d in e.differs] == [{"claim": "NVIDIA", "source": "ServiceNow"}]


def test_a_model_version_is_checked_with_its_name(scorer):
    ok = attribute("Llama 3 was trained on over 15 trillion tokens [2].", MODELS, scorer, AttributionSettings())
    assert ok.sentences[0].outcome == "supported"
    wrong = attribute("Llama 2 was trained on over 15 trillion tokens [2].", MODELS, scorer, AttributionSettings())
    assert wrong.sentences[0].outcome == "unsupported"


def test_a_figure_held_only_off_the_answers_pages_is_contradicted_by_them(scorer):
    # The answer stands on the Llama 2 page; its altered sentence ("8K") is held by a passage of
    # another page that happens to mention 8K tokens, while the Llama 2 page says 4K in its place.
    llama = Source(1, "Llama 2 is here", "https://blog.example/llama2",
                   "Llama 2 comes in three sizes: 7B, 13B and 70B parameters. The models were trained on "
                   "40% more tokens and have a much longer context length of 4K tokens.", 0.9)
    other = Source(2, "Long-context data", "https://blog.example/smolvlm",
                   "For long-context data we used code documents of 8K tokens, a much longer context than before.", 0.5)
    settings = AttributionSettings(mode="repair")
    altered = "They have a much longer context length of 8K tokens."
    alone = attribute(altered, [llama, other], scorer, settings).sentences[0]
    assert alone.verdict == "supported" and alone.markers == [2]  # nothing says what the answer is about
    answer = f"Llama 2 comes in three sizes: 7B, 13B and 70B parameters [1]. {altered}"
    first, second = attribute(answer, [llama, other], scorer, settings).sentences
    assert first.verdict == "supported" and first.markers == [1]
    assert second.verdict == "contradicted" and second.markers == []
    assert {"claim": "8K", "source": "4K"} in [d for e in second.evidence for d in e.differs]
    # The true sentence stays supported by its own page, and a true one held off the page stays too.
    kept = attribute(answer.replace("8K", "4K"), [llama, other], scorer, settings).sentences[1]
    assert kept.verdict == "supported" and kept.markers == [1]


BENCH = Source(1, "Vision models compared", "https://blog.example/vlm",
               "The results of each model on the benchmarks:\n\n"
               "| <nobr>Model</nobr> | <nobr>Open <br>weights</nobr> | <nobr>MMMU <br>(val/test)</nobr> | <nobr>DocVQA <br>(test)</nobr> |\n"
               "| --- | --- | --- | --- |\n"
               "| Gemini 1.0 Pro | ❌ | 47.9/- | 88.1 |\n"
               "| Gemini 1.5 Pro | ❌ | 58.5/- | 86.5 |\n"
               "| **Idefics2** (w/o im. split)* | ✅ | 43.5/37.9 | 67.3 |\n", 0.9)


def test_a_table_row_speaks_for_the_row_and_column_a_sentence_names(scorer):
    settings = AttributionSettings(mode="repair")
    true = attribute("Gemini 1.0 Pro scores 88.1 on DocVQA.", [BENCH], scorer, settings).sentences[0]
    assert true.verdict == "supported" and true.markers == [1]
    assert "Gemini 1.0 Pro ❌ 47.9/- 88.1" in true.evidence[0].quote
    # Another model's row holds the figure: it does not support the sentence; the named model's
    # cell under the named column says otherwise, and is shown.
    swapped = attribute("Gemini 1.5 Pro scores 88.1 on DocVQA.", [BENCH], scorer, settings).sentences[0]
    assert swapped.verdict == "contradicted" and swapped.markers == []
    assert {"claim": "88.1", "source": "Gemini 1.5 Pro, DocVQA: 86.5"} in [d for e in swapped.evidence for d in e.differs]
    # A sentence naming two rows is checked in each (the second under its label, asides dropped).
    both = attribute("On MMMU, Gemini 1.5 Pro reaches 58.5, above the 43.5 of Idefics2.", [BENCH], scorer,
                     settings).sentences[0]
    assert both.verdict == "supported"


def test_table_labels_and_named_rows():
    from opencite.app.citations.tables import TableRows, cell_conflict, label, named_rows, off_row
    from opencite.app.citations.facts import claim_facts

    assert label("**Idefics2** (w/o im. split)*") == "Idefics2"
    assert label("<nobr>DocVQA <br>(test)</nobr>") == "DocVQA"
    assert label("47.9/-") == label("") == label("✅") == ""
    keys = ("Gemini 1.0 Pro", "Gemini 1.5 Pro", "Claude 3 Haiku", "Meta-Llama-3-8B", "Meta-Llama-3.1-8B")
    assert named_rows("Gemini 1.5 Pro leads.", keys) == {"Gemini 1.5 Pro"}
    assert named_rows("Gemini and Claude are closed.", keys) == {"Gemini 1.0 Pro", "Gemini 1.5 Pro", "Claude 3 Haiku"}
    assert named_rows("Meta-Llama-3.1-8B averages 13.78.", keys) == {"Meta-Llama-3.1-8B"}
    assert named_rows("The best score in the table is 88.8.", keys) == frozenset()
    head = "| Model | MMLU | ARC-c |"
    row = TableRows(head, ("| Meta-Llama-3-8B | 66.6 | 60.2 |",), keys)
    assert off_row("Meta-Llama-3.1-8B averages 13.78.", row)
    assert not off_row("Meta-Llama-3-8B reaches 66.6 on MMLU.", row)
    assert not off_row("The best MMLU score is 66.6.", row)  # names no row: left to the other checks
    claim = "Meta-Llama-3-8B reaches 60.2 on MMLU."
    assert cell_conflict(claim, claim_facts(claim).figures, row) == ("60.2", "Meta-Llama-3-8B, MMLU: 66.6")
    fine = "Meta-Llama-3-8B reaches 66.6 on MMLU and 60.2 on ARC-c."  # two columns named: no one place
    assert cell_conflict(fine, claim_facts(fine).figures, row) is None


def test_a_tables_no_cells_do_not_negate_a_sentence(scorer):
    # "no" under "Open weights" says nothing of the polarity of a sentence the window's prose states.
    plain = Source(1, BENCH.title, BENCH.url, BENCH.snippet.replace("❌", "no").replace("✅", "yes"), 0.9)
    s = attribute("Gemini 1.0 Pro scores 88.1 on DocVQA.", [plain], scorer, AttributionSettings()).sentences[0]
    assert s.verdict == "supported" and s.markers == [1]


def test_a_setting_the_code_gives_another_value_is_contradicted_with_the_codes_words(scorer):
    code = Source(1, "Fine-tuning", "https://blog.example/tune",
                  "Then run the script:\n\n```bash\naccelerate launch sft.py \\\n    --dataset_name guanaco \\\n"
                  "    --per_device_train_batch_size 2 \\\n    --learning_rate 2e-4 \\\n    --max_seq_length 512\n```", 0.9)
    true = attribute("The script sets `--learning_rate 0.0002` and `--per_device_train_batch_size 2`.", [code], scorer,
                     AttributionSettings()).sentences[0]
    assert true.verdict == "supported" and true.markers == [1]  # 2e-4 is 0.0002
    altered = attribute("The script sets a learning rate of 0.0003 and `--per_device_train_batch_size 2`.", [code],
                        scorer, AttributionSettings()).sentences[0]
    assert altered.verdict == "contradicted" and altered.markers == []
    assert {"claim": "0.0003", "source": "learning_rate=2e-4"} in altered.evidence[0].differs


def test_a_page_about_none_of_the_things_a_sentence_names_does_not_contradict_it(scorer):
    claim = "LLaVA-NeXT spends 2,880 tokens on each image."
    other = Source(1, "Serving benchmark", "https://blog.example/serving",
                   "The vision model spends 768 tokens on each image in our serving benchmark.", 0.9)
    same = Source(1, "LLaVA-NeXT", "https://blog.example/llava",
                  "LLaVA-NeXT spends 768 tokens on each image in our serving benchmark.", 0.9)
    elsewhere = attribute(claim, [other], scorer, AttributionSettings()).sentences[0]
    assert elsewhere.verdict == "not_found"  # other figures of another thing, not a different one in its place
    there = attribute(claim, [same], scorer, AttributionSettings()).sentences[0]
    assert there.verdict == "contradicted" and {"claim": "2,880", "source": "768"} in there.evidence[0].differs


def test_a_sentence_two_pages_support_cites_the_page_the_rest_of_the_answer_stands_on(scorer):
    """A sibling post repeating a fact word for word outscores the answer's own page, which says
    it too: the citation goes where the rest of the answer comes from."""
    sources = [
        Source(1, "Llama 2", "https://blog.example/llama2",
               "Llama 2 was pretrained on 2 trillion tokens. Meta releases the family in three sizes: 7B, 13B "
               "and 70B parameters, each with a chat variant.", 0.9),
        Source(2, "Deploying LLMs", "https://blog.example/deploy",
               "Llama 2 comes in 7B, 13B and 70B sizes. Deploy it with one click.", 0.5),
    ]
    answer = "Llama 2 was pretrained on 2 trillion tokens. Llama 2 comes in 7B, 13B and 70B sizes."
    sizes = "Llama 2 comes in 7B, 13B and 70B sizes."
    assert attribute(sizes, sources, scorer, AttributionSettings()).sentences[0].markers == [2]  # by score: the sibling
    assert attribute(sizes, sources[:1], scorer, AttributionSettings()).sentences[0].verdict == "supported"
    a = attribute(answer, sources, scorer, AttributionSettings())
    assert [s.markers for s in a.sentences] == [[1], [1]]
    assert a.sentences[1].verdict == "supported"
