"""Settings in code (`key=value`, `--flag value`) as the place of a claim's value."""

from opencite.app.citations.code_settings import setting_conflict, written_settings

SCRIPT = ("accelerate launch sft.py \\ --model_name google/gemma-7b \\ --per_device_train_batch_size 2 \\ "
          "--learning_rate 2e-4 \\ --lora-r 16 --lora_alpha=32")
CALL = 'outputs = pipe(messages, max_new_tokens=256, do_sample=True, temperature=0.7, revision="flax")'


def test_settings_as_code_writes_them():
    assert dict(written_settings(SCRIPT)) == {"model_name": "google/gemma-7b", "per_device_train_batch_size": "2",
                                              "learning_rate": "2e-4", "lora_r": "16", "lora_alpha": "32"}
    assert dict(written_settings(CALL))["revision"] == '"flax"'
    assert written_settings("Note: 5 models. Llama 2: the best.") == ()  # prose, not settings
    # A definition list names a setting and describes it: no value ("The" is not one).
    assert written_settings("top_p: The cumulative probability of tokens to keep.") == ()
    assert dict(written_settings("model_id: Qwen batch_size: 2")) == {"model_id": "Qwen", "batch_size": "2"}


def test_a_setting_given_another_value_in_code_or_in_words_is_contradicted():
    assert setting_conflict("LoRA uses `--lora_alpha 16`.", SCRIPT) == ("16", "lora_alpha=32")
    assert setting_conflict("The learning rate is 0.0003.", SCRIPT) == ("0.0003", "learning_rate=2e-4")
    assert setting_conflict('It loads `revision="main"`.', CALL) == ('"main"', 'revision="flax"')
    assert setting_conflict("It writes with `do_sample=False`.", CALL) == ("False", "do_sample=True")


def test_the_same_value_however_written_and_unnamed_settings_are_no_conflict():
    assert setting_conflict("The learning rate is 0.0002.", SCRIPT) is None  # 2e-4
    assert setting_conflict("It uses `--lora-alpha=32` and `lora_r=16`.", SCRIPT) is None  # separators
    assert setting_conflict("Training runs for 3 epochs at rank 8.", SCRIPT) is None  # not a setting it writes
    assert setting_conflict("The model name is Gemma 2.", SCRIPT) is None  # no value written as code
    # A setting the window gives two values: either may be the claim's.
    assert setting_conflict("It uses `top_k=10`.", "top_k=50 ... top_k=10") is None
