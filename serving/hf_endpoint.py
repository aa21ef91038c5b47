"""`opencite serve --engine hf-endpoint`: deploy a preset to Hugging Face Inference Endpoints with
`huggingface_hub.create_inference_endpoint` (the notebook's call), with a vLLM or TGI image,
authenticated ("protected") access and scale-to-zero; wait for it; print what to configure."""

from __future__ import annotations

import re
from contextlib import contextmanager

from opencite.serving.presets import Preset, get_preset
from opencite.settings import Settings

# Inference Endpoints run a custom container on this port.
CONTAINER_PORT = 80


class EndpointDeployError(RuntimeError):
    pass


def endpoint_name(settings: Settings, preset: Preset) -> str:
    # Endpoint names: lowercase letters, digits and '-', at most 32 characters.
    name = settings.serve.hf_endpoint_name or preset.name
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:32].strip("-")


def served_name(settings: Settings, preset: Preset) -> str:
    # TGI's Messages API answers to the model name "tgi" (as in the notebook).
    return "tgi" if settings.serve.hf_image == "tgi" else preset.served_model_name


def deployed_context_window(settings: Settings, preset: Preset) -> int:
    return settings.serve.max_model_len or preset.max_model_len or preset.context_window


def endpoint_spec(settings: Settings, preset: Preset | None = None) -> dict:
    """Keyword arguments for `create_inference_endpoint`."""
    serve = settings.serve
    preset = preset or get_preset(serve.preset)
    if not preset.hf_instance_type:
        raise EndpointDeployError(
            f"preset {preset.name!r} has no Inference Endpoints instance; use one of "
            + ", ".join(p for p, v in _presets().items() if v.hf_instance_type)
        )
    max_len = deployed_context_window(settings, preset)
    if serve.hf_image == "tgi":
        image = {
            "health_route": "/health",
            "url": serve.tgi_image,
            "env": {
                "MODEL_ID": "/repository",
                "MAX_INPUT_LENGTH": str(max_len // 2),
                "MAX_TOTAL_TOKENS": str(max_len),
                "MAX_BATCH_PREFILL_TOKENS": str(max(max_len // 2, 4096)),
                "PORT": str(CONTAINER_PORT),
            },
        }
        args = None
    else:
        image = {"health_route": "/health", "url": serve.vllm_image, "port": CONTAINER_PORT}
        args = [
            "--model", "/repository", "--served-model-name", preset.served_model_name,
            "--port", str(CONTAINER_PORT), "--max-model-len", str(max_len),
        ]
        if preset.tensor_parallel_size:
            args += ["--tensor-parallel-size", str(preset.tensor_parallel_size)]
        if preset.quantization:
            args += ["--quantization", preset.quantization]
        if preset.dtype:
            args += ["--dtype", preset.dtype]
    spec = {
        "name": endpoint_name(settings, preset),
        "repository": preset.model,
        "framework": "pytorch",
        "task": "text-generation",
        "accelerator": "gpu",
        "vendor": serve.hf_vendor,
        "region": serve.hf_region,
        # "authenticated" is the current name of the notebook's "protected": a HF token is required.
        "type": "authenticated",
        "instance_type": preset.hf_instance_type,
        "instance_size": preset.hf_instance_size or "x1",
        "min_replica": 0,
        "max_replica": 1,
        "scale_to_zero_timeout": serve.hf_scale_to_zero_minutes,
        "custom_image": image,
        "namespace": serve.hf_namespace,
    }
    if args:
        spec["container_args"] = args
    return spec


def _presets():
    from opencite.serving.presets import load_presets

    return load_presets()


@contextmanager
def endpoints_api(url: str | None):
    """Point huggingface_hub at another Endpoints API (a private deployment, or a test stand-in):
    the library reads this module constant on every call and has no setting for it."""
    from huggingface_hub import constants

    if not url:
        yield
        return
    saved = constants.INFERENCE_ENDPOINTS_ENDPOINT
    constants.INFERENCE_ENDPOINTS_ENDPOINT = url.rstrip("/")
    try:
        yield
    finally:
        constants.INFERENCE_ENDPOINTS_ENDPOINT = saved


def deploy(settings: Settings, timeout: float | None = None):
    """Create (or reuse, when the name exists) the endpoint and wait until it answers."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, InferenceEndpointError, InferenceEndpointTimeoutError

    spec = endpoint_spec(settings)
    api = HfApi()
    with endpoints_api(settings.serve.hf_endpoints_api):
        try:
            endpoint = api.create_inference_endpoint(**spec)
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status != 409:
                hint = " (set HF_TOKEN or run `hf auth login`)" if status in (401, 403) else ""
                raise EndpointDeployError(f"creating endpoint {spec['name']!r} failed: {exc}{hint}") from exc
            # Already there (a second `opencite serve`): wait for the existing one instead.
            endpoint = api.get_inference_endpoint(spec["name"], namespace=spec["namespace"])
        try:
            endpoint.wait(timeout=int(timeout or settings.serve.startup_timeout), refresh_every=settings.serve.hf_poll_seconds)
        except (InferenceEndpointError, InferenceEndpointTimeoutError) as exc:
            raise EndpointDeployError(
                f"endpoint {spec['name']!r} is not running ({endpoint.status}): {exc} "
                "See its logs at https://endpoints.huggingface.co"
            ) from exc
    return endpoint
