"""Support looked up beyond the prompt (app/rag/lookup.py): real index (MiniLM, embedded Chroma,
tantivy BM25) + the ScriptedLLMDouble. A sentence whose support is only in a chunk that was not
sent to the LLM is cited from the knowledge base, as a found-after source."""

from langchain_core.documents import Document

from opencite.app.rag.chain import RagChain
from opencite.store import constants as C
from opencite.store.index import open_index
from tests.app.rag.test_chain_attribution import numbers

ROUTER = "https://blog.example/router"
CHUNKS = [
    "The Wombat router is a small office router made by Marsupial Networks. It sits on a desk and "
    "needs no fan. Its case is made of recycled aluminium.",
    "Setting up the Wombat router takes a browser and ten minutes. The setup page asks for a new "
    "admin password first.",
    "The Wombat router ships with 48 Ethernet ports and two fibre uplinks. Each port runs at ten gigabits.",
]


def add_router(settings) -> None:
    with open_index(settings, write=True) as idx:
        docs = [Document(text, metadata={C.SOURCE: ROUTER, C.TITLE: "Wombat router", C.HEADING_PATH: "Wombat",
                                         C.CHUNK_INDEX: i, C.CONTENT_HASH: "v1"})
                for i, text in enumerate(CHUNKS)]
        idx.store.add_documents(docs, ids=[f"{ROUTER}#{i}" for i in range(len(CHUNKS))])


def test_sentence_supported_only_outside_the_prompt_is_cited_as_found_after(llm_settings, scripted_llm):
    add_router(llm_settings)
    llm_settings.retrieval.neighbours = 0
    scripted_llm.responder = lambda messages: (
        f"The Wombat router is made by Marsupial Networks [{numbers(messages)[ROUTER]}]. "
        "The Wombat router ships with 48 Ethernet ports.")
    ans = RagChain(llm_settings).invoke([{"role": "user", "content": "Who makes the Wombat router?"}], k=1)
    prompt = scripted_llm.requests[-1]["messages"][-1]["content"]
    assert "48 Ethernet ports" not in prompt and "Marsupial Networks" in prompt  # the LLM never saw the ports
    assert [s.found_after for s in ans.sources] == [False] + [True] * (len(ans.sources) - 1)
    found = next(s for s in ans.sources if s.chunk_id == f"{ROUTER}#2")
    assert found.found_after and found.n > 1 and "48 Ethernet ports" in found.snippet
    assert ans.answer == f"The Wombat router is made by Marsupial Networks [1]. " \
                         f"The Wombat router ships with 48 Ethernet ports [{found.n}]."
    assert [s.n for s in ans.cited] == [1, found.n] and ans.cited[1].found_after
    first, second = ans.attribution.sentences
    assert first.outcome == "supported" and second.outcome == "added" and second.markers == [found.n]
    assert second.quote_for(found.n).quote.startswith("The Wombat router ships with 48 Ethernet ports")
    assert ans.attribution.counts == {"supported": 1, "repointed": 0, "added": 1, "unsupported": 0}
    assert ans.answer[second.start:second.end] == second.text
    assert ans.timings["lookup_s"] > 0


def test_no_lookup_when_the_prompt_supports_everything_or_when_turned_off(llm_settings, scripted_llm):
    add_router(llm_settings)
    llm_settings.retrieval.neighbours = 0
    scripted_llm.reply("The Wombat router is made by Marsupial Networks [1].")
    ans = RagChain(llm_settings).invoke([{"role": "user", "content": "Who makes the Wombat router?"}], k=1)
    assert "lookup_s" not in ans.timings and not any(s.found_after for s in ans.sources)
    llm_settings.retrieval.lookup_passages = 0
    scripted_llm.reply("The Wombat router is made by Marsupial Networks [1]. "
                       "The Wombat router ships with 48 Ethernet ports.")
    ans = RagChain(llm_settings).invoke([{"role": "user", "content": "Who makes the Wombat router?"}], k=1)
    assert "lookup_s" not in ans.timings and len(ans.sources) == 1
    assert ans.attribution.sentences[1].outcome == "unsupported"


def test_what_the_prompt_supports_keeps_its_citations_and_unfound_stays_unsupported(llm_settings, scripted_llm):
    scripted_llm.responder = lambda messages: (
        f"Paris is the capital of France [{numbers(messages)['https://blog.example/paris']}]. "
        "The Berlin Wall fell in 1989. The Moon is made of green cheese.")
    ans = RagChain(llm_settings).invoke([{"role": "user", "content": "What is the capital of France?"}], k=1)
    berlin = next(s for s in ans.sources if s.url == "https://blog.example/berlin")
    assert berlin.found_after and not ans.sources[0].found_after
    assert [s.outcome for s in ans.attribution.sentences] == ["supported", "added", "unsupported"]
    assert ans.answer == f"Paris is the capital of France [1]. The Berlin Wall fell in 1989 [{berlin.n}]. " \
                         "The Moon is made of green cheese."
    assert all(s.n == i for i, s in enumerate(ans.sources, start=1))  # numbered without gaps


def test_the_lookup_queries_with_the_very_text_attribution_scored(minilm_path):
    """The chain hands the lookup its scorer's kept vectors, keyed by text: the lookup's query
    for a sentence must be the claim the scorer embedded, whatever the attributed text's markers,
    table pipes or spacing (else every claim would be embedded again after the last token)."""
    from opencite.app.answer import Source
    from opencite.app.citations.attribution import attribute, default_scorer
    from opencite.app.citations.sentences import split_sentences
    from opencite.app.rag import lookup
    from opencite.settings import AttributionSettings, EmbeddingSettings
    from opencite.store.embeddings import load_embeddings

    scorer = default_scorer(AttributionSettings(), load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu")))
    answer = ("The router has 48 ports [1] . It costs $99 [2][3].\n\n"
              "| model | ports |\n|---|---|\n| Wombat | 48 [1] |\n\nRun `wombat --setup` first [9].")
    written = [s.claim for s in split_sentences(answer)]
    attributed = attribute(answer, [Source(1, "Wombat", ROUTER, CHUNKS[2], 1.0)], scorer,
                           AttributionSettings(min_claim_words=1))
    assert attributed.text != answer and len(attributed.sentences) >= 3  # repair mode rewrote markers
    assert {lookup.claim_of(s) for s in attributed.sentences} <= set(written)


def test_checking_while_the_llm_writes_leaves_the_last_sentence_and_changes_nothing(llm_settings, scripted_llm):
    """The chain checks the sentences complete so far while the LLM writes (`warm_attribution`
    with a Groundwork), KB lookup included. After the last token the answer, its sources and its
    verdicts are what checking the whole answer at once gives, and only the last sentence is
    decided anew."""
    from dataclasses import replace

    from opencite.app.answer import RagAnswer
    from opencite.app.citations.sentences import split_sentences
    from opencite.app.rag.checking import Groundwork

    # float32: ahead, sentences are embedded a few at a time, and a vector must not move with its
    # batch-mates beyond float rounding (bf16 autocast, `auto` on some CPUs, moves it ~1e-3).
    llm_settings.embedding.precision = "float32"
    add_router(llm_settings)
    llm_settings.retrieval.neighbours = 0
    question = "Who makes the Wombat router?"
    sources, _ = RagChain(llm_settings).prepare([{"role": "user", "content": question}], k=1)
    answer = ("The Wombat router is made by Marsupial Networks [1]. The Wombat router ships with 48 Ethernet "
              "ports. Its case is made of recycled aluminium. Setting up the Wombat router takes ten minutes.")
    whole = RagChain(llm_settings).attribute(RagAnswer(question, question, answer, sources, [], 0))

    chain, groundwork = RagChain(llm_settings), Groundwork()
    last = split_sentences(answer)[-1]
    chain.warm_attribution(sources, answer[:last.start] + "Setting up", groundwork).result()
    assert {text for text, *_ in groundwork.decisions} == {s.text for s in split_sentences(answer)[:-1]}
    assert "The Wombat router ships with 48 Ethernet ports." in groundwork.ranked  # looked up ahead
    ahead = set(groundwork.decisions)
    done = chain.attribute(RagAnswer(question, question, answer, sources, [], 0), groundwork=groundwork)
    assert {text for text, *_ in set(groundwork.decisions) - ahead} == {last.text}
    assert done.answer == whole.answer
    for got, want in ((done.sources, whole.sources), (done.cited, whole.cited)):  # scores: float rounding apart
        assert [replace(s, score=round(s.score, 4)) for s in got] == [replace(s, score=round(s.score, 4)) for s in want]
    assert [(s.outcome, s.verdict, s.markers, s.evidence) for s in done.attribution.sentences] == \
        [(s.outcome, s.verdict, s.markers, s.evidence) for s in whole.attribution.sentences]
    assert any(s.found_after for s in done.cited)  # the lookup's find is part of what matched


def test_checks_ahead_only_when_the_llm_does_not_decode_on_these_cores(llm_settings):
    """`attribution.ahead=auto`: a local CPU engine (`opencite serve`, no llm.base_url) decodes on
    the cores the checks would take, so only vectors are made ahead; an engine elsewhere gets
    the checks ahead. Explicit values win."""
    from opencite.app.rag.checking import Groundwork

    add_router(llm_settings)
    local = llm_settings.model_copy(deep=True)
    local.llm.base_url, local.serve.engine = None, "llamacpp"
    remote = llm_settings.model_copy(deep=True)
    sources, _ = RagChain(remote).prepare([{"role": "user", "content": "Who makes the Wombat router?"}], k=1)
    written = "The Wombat router ships with 48 Ethernet ports. It has"
    for settings, ahead, checks in ((local, "auto", False), (remote, "auto", True), (local, "check", True),
                                    (remote, "embed", False)):
        settings.attribution.ahead = ahead
        chain, groundwork = RagChain(settings), Groundwork()
        chain.warm_attribution(sources, written, groundwork).result()
        assert chain.checks_ahead() is checks and bool(groundwork.decisions) is checks, (ahead, checks)


SWITCH = "https://blog.example/switch"


def test_in_flag_mode_the_answers_pages_come_from_evidence_not_written_markers(llm_settings, scripted_llm):
    """The lookup's second pass decides a sentence found only off the answer's pages again against
    them; in flag mode a sentence keeps the markers it was written with (here none), so the
    answer's pages must come from what supported the other sentences."""
    add_router(llm_settings)
    with open_index(llm_settings, write=True) as idx:
        idx.store.add_documents([Document("Unlike the Wombat router, the Kangaroo switch ships with 96 Ethernet ports.",
                                          metadata={C.SOURCE: SWITCH, C.TITLE: "Kangaroo switch", C.CHUNK_INDEX: 0,
                                                    C.CONTENT_HASH: "v1"})], ids=[f"{SWITCH}#0"])
    llm_settings.retrieval.neighbours = 0
    llm_settings.attribution.mode = "flag"
    scripted_llm.reply("The Wombat router is made by Marsupial Networks. The Wombat router ships with 96 Ethernet ports.")
    question = "Which company makes the Wombat router, and does it need a fan on the desk?"
    ans = RagChain(llm_settings).invoke([{"role": "user", "content": question}], k=1)
    assert ans.sources[0].chunk_id == f"{ROUTER}#0" and not ans.sources[0].found_after
    first, second = ans.attribution.sentences
    assert first.verdict == "supported" and first.original_markers == []
    # 96 stands in the switch's page; the router's page the answer stands on says 48 in its place.
    assert second.verdict == "contradicted", [(e.url if hasattr(e, "url") else e.n, e.quote) for e in second.evidence]
    assert {"claim": "96", "source": "48"} in [d for e in second.evidence for d in e.differs]


def test_two_sentences_whose_best_chunk_is_the_same_each_get_their_own_window_of_it(llm_settings, scripted_llm):
    # One long chunk holds both facts, far apart: the window picked around the first sentence
    # does not hold the second's words, so the second must get a window of its own.
    long_chunk = " ".join(
        ["The Wombat router ships with 48 Ethernet ports and two fibre uplinks."]
        + [f"Its status light number {i} blinks green while the firmware checks the disk." for i in range(1, 9)]
        + ["The Wombat router's case is made of recycled aluminium from old bicycles."])
    with open_index(llm_settings, write=True) as idx:
        idx.store.add_documents([Document(long_chunk, metadata={C.SOURCE: ROUTER, C.TITLE: "Wombat router",
                                                                 C.HEADING_PATH: "Wombat", C.CHUNK_INDEX: 0,
                                                                 C.CONTENT_HASH: "v1"})], ids=[f"{ROUTER}#0"])
    llm_settings.retrieval.neighbours = 0
    scripted_llm.reply("Paris is the capital of France [1]. The Wombat router ships with 48 Ethernet ports. "
                       "The Wombat router's case is made of recycled aluminium.")
    ans = RagChain(llm_settings).invoke([{"role": "user", "content": "What is the capital of France?"}], k=1)
    found = [s for s in ans.sources if s.found_after and s.chunk_id == f"{ROUTER}#0"]
    assert len(found) == 2 and all(len(s.snippet) < len(long_chunk) for s in found)
    ports, case = ans.attribution.sentences[1:]
    assert ports.outcome == case.outcome == "added" and ports.markers != case.markers
    assert "48 Ethernet ports" in ans.sources[ports.markers[0] - 1].snippet
    assert "recycled aluminium" in ans.sources[case.markers[0] - 1].snippet


def test_the_prompts_own_pages_are_looked_up_before_other_pages(llm_settings, scripted_llm):
    """The answer was written from the prompt's pages: a fact their excerpts left out is taken from
    the same page, before a sibling page that words it even more alike."""
    add_router(llm_settings)
    review = "https://blog.example/router-review"
    with open_index(llm_settings, write=True) as idx:
        idx.store.add_documents([Document("The Wombat router ships with 48 Ethernet ports.",
                                          metadata={C.SOURCE: review, C.TITLE: "Review", C.HEADING_PATH: "Review",
                                                    C.CHUNK_INDEX: 0, C.CONTENT_HASH: "v1"})], ids=[f"{review}#0"])
    llm_settings.retrieval.neighbours = 0
    llm_settings.retrieval.lookup_passages = 1
    scripted_llm.responder = lambda messages: (
        f"The Wombat router is made by Marsupial Networks [{numbers(messages)[ROUTER]}]. "
        "The Wombat router ships with 48 Ethernet ports.")
    ans = RagChain(llm_settings).invoke([{"role": "user", "content": "What is the Wombat router's case made of?"}],
                                       k=1)
    assert [s.url for s in ans.sources] == [ROUTER, ROUTER]  # the prompt's page, then its own chunk
    found = ans.sources[1]
    assert found.found_after and found.chunk_id == f"{ROUTER}#2"
    assert ans.attribution.sentences[1].outcome == "added" and ans.attribution.sentences[1].markers == [2]
