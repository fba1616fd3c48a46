"""Where a cloud profile's ``[kv_transfer]`` timing comes from: the cited sources of the KV write and the KV
link, and the ``source`` text every shipped profile carries.

The KV write (``write_token_s``) is derived, not measured on the profile's GPU: a decode replica reads each
received token's K and V once and writes them once into its paged cache, ``2 x`` the per-GPU KV bytes at the
datasheet's HBM bandwidth. Two kernel measurements bound it:

- SGLang's KV-cache store kernel (sgl-project/sglang pull request 19103, merged; K and V scattered into cache
  slots by index, with an fp8 downcast) reaches about 4.2 TB/s, about 87% of the H200's nominal bandwidth, on
  its largest shapes: a write at 100% of the datasheet errs fast by about 13%;
- vLLM's ``reshape_and_cache_flash`` CUDA kernel (vllm-project/vllm pull request 20081; 8 KV heads x 256
  dims, the GPU not stated) takes 0.007 ms a layer at 64 and 128 tokens and 0.008 ms at 512: launch-bound
  at these sizes, so a small cache costs a few microseconds a layer more than its bytes.

The KV link is priced at its bandwidth alone (the native core's ``KvLink``: bytes over bytes per second),
with no per-transfer or per-descriptor term (ours; the measurements below say the term is under 1% of a
1,000-token transfer). MORI-IO's RDMA benchmark (ROCm/mori ``docs/MORI-IO-BENCHMARK.md``, commit
`MORI_COMMIT`, measured on ConnectX-7 and Thor2 400 Gb/s NICs): one write of 1 KiB takes 5.9 us and one of
64 MiB reaches 49.3 GB/s; a batch of 128 writes takes about 36 us at any size up to 2 KiB, 116.8 us at 32 KiB
each (35.9 GB/s) and 2,778 us at 1 MiB each (48.3 GB/s); 32,768 writes of 1 KiB take 4,618 us, 0.14 us a
write. A transfer thus costs its bytes at the link's rate plus a few tens of microseconds, and a descriptor
(vLLM's paged layout: one per layer, K or V, and 16-token block) of ``B`` bytes caps a NIC at
``B / 0.14 us``: 29 GB/s at 4 KiB, above the 25 GB/s default link (`pdcore.sim.scenario`). Where
descriptors are tiny and many, posting them does count (vllm-project/vllm issue 55434: 56.9% of a
transfer's time over CUDA IPC, about 15% over InfiniBand, for a model with up to 112k descriptors a
transfer); no shipped profile is such a model.
"""

from __future__ import annotations

__all__ = ["BLOCK_TOKENS", "DESCRIPTOR_POST_S", "MORI_COMMIT", "TRANSFER_OVERHEAD_S", "kv_transfer_source"]

MORI_COMMIT = "84a33cc0f15f019c78c995728973b70ea3d10bb7"
"""The ROCm/mori commit whose ``docs/MORI-IO-BENCHMARK.md`` holds the measured RDMA tables."""

TRANSFER_OVERHEAD_S = 36e-6
"""A batch of 128 RDMA writes' fixed cost in MORI-IO's measurement (36.3 us at 8 B a write), seconds: the
per-transfer overhead the KV link leaves out."""

BLOCK_TOKENS = 16
"""Tokens in one block of vLLM's paged KV cache (its default ``block_size``)."""

DESCRIPTOR_POST_S = 0.14e-6
"""Seconds to post one RDMA write when the writes are small and many (MORI-IO's batch sweep: 32,768 writes of
1 KiB in 4,618 us): a descriptor of ``B`` bytes caps one NIC at ``B / DESCRIPTOR_POST_S`` bytes a second."""

_REFERENCE_TOKENS = 1000
_REFERENCE_LINK_BYTES_PER_S = 25e9


def kv_transfer_source(
    *, kv_bytes_per_token: int, layers: int, tensor_parallel: int, hbm_bytes_per_s: float, gpu: str
) -> str:
    """The ``[kv_transfer] source`` of a profile: the write's derivation and the link's measurements, with
    this model's descriptor size and the overhead's share of a 1,000-token transfer on a 25 GB/s link.

    Args:
        kv_bytes_per_token: The model's KV bytes per token, all GPUs of a replica together.
        layers: The model's layers.
        tensor_parallel: GPUs a replica splits the KV cache over.
        hbm_bytes_per_s: One GPU's HBM bandwidth (datasheet).
        gpu: The GPU's name.
    """
    per_gpu = kv_bytes_per_token // tensor_parallel
    descriptor = BLOCK_TOKENS * per_gpu // (2 * layers)
    transfer_s = _REFERENCE_TOKENS * kv_bytes_per_token / _REFERENCE_LINK_BYTES_PER_S
    share = TRANSFER_OVERHEAD_S / transfer_s
    return (
        f"write_token_s derived: 2 x {per_gpu:,} B a token a GPU (read and write once) at the {gpu}'s "
        f"{hbm_bytes_per_s / 1e12:.4g} TB/s; SGLang's KV-cache store kernel reaches about 87% of an H200's "
        "nominal bandwidth (sgl-project/sglang pull request 19103), so the write errs fast by about 13%; "
        "vLLM's reshape_and_cache_flash kernel takes 0.007-0.008 ms a layer at 64-512 tokens "
        "(vllm-project/vllm pull request 20081). Transfer: bytes at the KV link's rate, no per-transfer "
        "term: MORI-IO's RDMA benchmark (ROCm/mori docs/MORI-IO-BENCHMARK.md, commit "
        f"{MORI_COMMIT}) measures about 36 us for a batch of 128 small writes over a 400 Gb/s NIC and "
        "35.9 GB/s with 32 KiB writes; this model's descriptor (one layer's K or V of a "
        f"{BLOCK_TOKENS}-token block on one GPU) is {descriptor:,} B, which posted at 0.14 us a write "
        "(MORI-IO's 32,768 x 1 KiB "
        f"batch) caps a NIC at {descriptor / DESCRIPTOR_POST_S / 1e9:.3g} GB/s, and 36 us is "
        f"{share * 100:.2g}% of a {_REFERENCE_TOKENS:,}-token transfer at 25 GB/s "
        f"({transfer_s * 1e3:.3g} ms)."
    )
