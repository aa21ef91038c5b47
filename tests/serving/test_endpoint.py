from opencite.serving.endpoint import resolve_llm
from opencite.serving.presets import get_preset, load_presets
from opencite.settings import Settings


def test_defaults_follow_local_serve_and_preset(settings):
    ep = resolve_llm(settings)
    preset = get_preset(settings.serve.preset)
    assert ep.base_url == "http://127.0.0.1:8000/v1"
    assert ep.context_window == preset.context_window
    # The CPU engine pins its model and answers only to its id.
    assert ep.model == preset.model


def test_vllm_uses_served_model_name_and_max_model_len():
    s = Settings(serve={"engine": "vllm", "preset": "qwen2.5-7b-instruct", "max_model_len": 8192, "port": 9000})
    ep = resolve_llm(s)
    assert ep.model == "qwen2.5-7b-instruct"
    assert ep.context_window == 8192
    assert ep.base_url == "http://127.0.0.1:9000/v1"


def test_llm_settings_override_everything():
    s = Settings(
        serve={"api_key": "serve-key"},
        llm={"base_url": "https://api.example.com/v1/", "api_key": "k", "model": "m", "context_window": 4096},
    )
    ep = resolve_llm(s)
    assert (ep.base_url, ep.api_key, ep.model, ep.context_window) == ("https://api.example.com/v1", "k", "m", 4096)


def test_serve_api_key_used_when_llm_key_not_set():
    assert resolve_llm(Settings(serve={"api_key": "serve-key"})).api_key == "serve-key"


def test_every_preset_states_context_window_and_hardware():
    presets = load_presets()
    assert {"nous-hermes-2-mixtral-8x7b-dpo", "mixtral-8x7b-instruct", "qwen2.5-7b-instruct",
            "qwen2.5-0.5b-instruct"} <= set(presets)
    for p in presets.values():
        assert p.context_window > 0 and p.hardware
    assert any("cpu" in p.engines for p in presets.values())
