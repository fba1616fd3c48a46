"""``pdcore profile-cloud``: measure an OpenAI-compatible endpoint and write the cloud profile the simulator
loads (`pdcore.runtime.cloud_profiler`), within the physics guard when the GPU and the model's size are given
(``--gpu``, ``--gpu-peak-flops``, ``--hbm-bandwidth``, ``--parameters``).

Registered by `pdcore.cli.runtime.register`; the ``device`` extra (httpx) is imported only when it runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from pdcore.cli.live_options import (
    BytesPerParameterOption,
    CloudUrlOption,
    GpuOption,
    GpuPeakFlopsOption,
    HbmBandwidthOption,
    ParametersOption,
    TensorParallelOption,
)
from pdcore.cli.live_options import cloud_params as _params
from pdcore.cli.live_options import lengths_flag as _lengths
from pdcore.cli.options import check_outputs, reported, stderr
from pdcore.outputs import write_text

__all__ = ["profile_cloud"]


def profile_cloud(
    *,
    out: Annotated[Path, typer.Option("--out", help="Where to write the cloud profile TOML.")],
    cloud_url: CloudUrlOption = None,
    lengths: Annotated[
        str, typer.Option("--lengths", help="Prompt lengths whose first token is timed, comma-separated.")
    ] = "128,256,512,1024,2048",
    concurrency: Annotated[
        str, typer.Option("--concurrency", help="Concurrent streams whose gaps are timed, comma-separated.")
    ] = "1,2,4",
    decode_tokens: Annotated[int, typer.Option("--decode-tokens", help="Tokens per concurrent stream.")] = 32,
    repeats: Annotated[int, typer.Option("--repeats", help="Rounds over the prompt lengths.")] = 3,
    max_tokens_per_iteration: Annotated[
        int, typer.Option("--max-tokens-per-iteration", help="The server's prompt batch (llama.cpp n_batch).")
    ] = 512,
    kv_cache_tokens: Annotated[
        int | None,
        typer.Option("--kv-cache-tokens", help="KV-cache capacity in tokens; default: the server's context."),
    ] = None,
    kv_bytes_per_token: Annotated[
        int, typer.Option("--kv-bytes-per-token", help="The model's KV cache per token, bytes.")
    ] = 23040,
    name: Annotated[str, typer.Option("--name", help="Profile name.")] = "measured-cloud",
    model_name: Annotated[
        str, typer.Option("--model-name", help="The served model, for the record.")
    ] = "unknown",
    gpu: GpuOption = "unknown",
    gpu_peak_flops: GpuPeakFlopsOption = None,
    hbm_bandwidth: HbmBandwidthOption = None,
    parameters: ParametersOption = None,
    bytes_per_parameter: BytesPerParameterOption = 2.0,
    tensor_parallel: TensorParallelOption = 1,
    api: Annotated[str, typer.Option("--api", help="completions or chat.")] = "completions",
    cloud_param: Annotated[
        list[str] | None, typer.Option("--cloud-param", help="Extra request field KEY=VALUE (repeatable).")
    ] = None,
) -> None:
    """Measure an OpenAI-compatible endpoint and write a cloud profile the simulator loads."""
    with reported(live=True):
        check_outputs({"--out": out}, {})
        from pdcore.runtime import CloudClient  # noqa: PLC0415  # reason: the optional runtime
        from pdcore.runtime.cloud_profiler import (  # noqa: PLC0415  # reason: the optional runtime
            cloud_profile_toml,
            fit_cloud_profile,
            measure_cloud,
            physics_inputs,
        )

        console = stderr()
        hardware, model_size = physics_inputs(
            gpu,
            peak_dense_flops=gpu_peak_flops,
            hbm_bytes_per_s=hbm_bandwidth,
            parameters=parameters,
            bytes_per_parameter=bytes_per_parameter,
        )
        streams = _lengths(concurrency, "--concurrency")

        async def run() -> Any:
            async with CloudClient(cloud_url, extra_body=_params(cloud_param), api=api) as client:
                return await measure_cloud(
                    client,
                    lengths=_lengths(lengths, "--lengths"),
                    concurrency=streams,
                    decode_tokens=decode_tokens,
                    repeats=repeats,
                    progress=lambda line: console.print(escape(line)),
                )

        measured = asyncio.run(run())
        fit = fit_cloud_profile(
            measured,
            max_tokens_per_iteration=max_tokens_per_iteration,
            hardware=hardware,
            model_size=model_size,
            tensor_parallel=tensor_parallel,
        )
        text = cloud_profile_toml(
            measured,
            fit,
            name=name,
            model=model_name,
            gpu=gpu,
            kv_bytes_per_token=kv_bytes_per_token,
            kv_cache_tokens=kv_cache_tokens,
            gpus_per_replica=tensor_parallel,
            tensor_parallel=tensor_parallel,
            hardware=hardware,
            model_size=model_size,
        )
        write_text(out, text)
        if fit.held:
            console.print(
                f"physics guard: {', '.join(fit.held)} held at the floor the GPU allows (the measured "
                "rows alone priced a step faster than its FLOPs or HBM can)"
            )
        console.print(
            f"wrote {escape(str(out))} in {measured.seconds:.0f} s: base {fit.base_s * 1e3:.2f} ms, "
            f"{fit.prefill_token_s * 1e6:.1f} us per prompt token, decode step "
            f"{(fit.base_s + fit.decode_seq_s) * 1e3:.2f} ms + {fit.decode_context_s * 1e9:.1f} ns per "
            f"context token, at most {measured.max_overlap} stream(s) at once; largest fit error "
            f"{fit.prefill_error * 100:.1f}% (first token), {fit.decode_error * 100:.1f}% (gaps)"
        )
