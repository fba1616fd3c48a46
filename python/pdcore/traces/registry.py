"""The public request traces pdcore reads, by name: where each is published, under which licence, and the
digest a download must have.

A `PublicTrace` names one file as its publisher serves it: the URL, the licence, the paper it accompanies,
the reader that loads it (`pdcore.traces.loaders`) and, when known, its size and SHA-256. pdcore never
ships these files (their licences ask for attribution, and the project's embedded default is generated,
not copied); ``pdcore traces fetch NAME`` downloads one into the user's cache and ``pdcore traces add NAME
PATH`` imports a copy the user has (`pdcore.traces.cache`).

How a file is checked (ours):

- ``sha256`` pinned: a download or an imported copy must have exactly this digest, else it is refused.
  The pins of ``azure-2023-conv``, ``azure-2023-code`` and ``mooncake-conversation`` are the SHA-256 of
  copies whose git blob ids equal the publishers' (the files in their repositories, byte for byte); those of
  ``mooncake-synthetic`` are of the file in the publisher's repository; the Qwen-Bailian pins are the
  ``oid sha256`` of the publisher's Git LFS pointers.
- ``sha256`` unknown (None) but ``git_blob`` known: the file must have that git blob id (the SHA-1 of
  ``"blob <size>\\0"`` and the bytes, as ``git hash-object`` computes it), the publisher's own record of
  the file's contents in its repository.
- Neither known: trust on first use. The first fetch or import records the file's SHA-256 beside it in the
  cache and says it was not pinned; a later fetch or import must match the recorded digest. Why: a trace
  served from blob storage has no published digest, and a silent change of the data under a name would make
  two runs of the same command disagree.

Names are lower-case words joined by hyphens (publisher, year or family, scenario), so that a name is never
mistaken for a file name: a ``--trace`` value that is an existing path is always read as a path.
"""

from __future__ import annotations

from dataclasses import dataclass

from pdcore.exceptions import InvalidInputError

__all__ = ["TRACES", "PublicTrace", "public_trace", "trace_names"]

_AZURE_2023_URL = "https://raw.githubusercontent.com/Azure/AzurePublicDataset/master/data/"
_AZURE_2024_URL = "https://azurepublicdatasettraces.blob.core.windows.net/azurellminfererencetrace/"
_MOONCAKE_URL = "https://raw.githubusercontent.com/kvcache-ai/Mooncake/main/FAST25-release/"
_BAILIAN_URL = "https://github.com/alibaba-edu/qwen-bailian-usagetraces-anon/raw/refs/heads/main/"

_CC_BY = "https://github.com/Azure/AzurePublicDataset/blob/master/LICENSE"
_APACHE = "https://www.apache.org/licenses/LICENSE-2.0"

_SPLITWISE = (
    "Patel et al., Splitwise: Efficient generative LLM inference using phase splitting, ISCA 2024 "
    "(Azure/AzurePublicDataset AzureLLMInferenceDataset2023.md)"
)
_DYNAMOLLM = (
    "Stojkovic et al., DynamoLLM: Designing LLM Inference Clusters for Performance and Energy "
    "Efficiency, arXiv 2408.00741 (Azure/AzurePublicDataset AzureLLMInferenceDataset2024.md)"
)
_MOONCAKE_PAPER = (
    "Qin et al., Mooncake: Trading More Storage for Less Computation, a KVCache-centric Architecture for "
    "Serving LLM Chatbot, FAST 2025 (kvcache-ai/Mooncake FAST25-release/README.md)"
)
_BAILIAN_PAPER = (
    "Wang et al., KVCache Cache in the Wild: Characterizing and Optimizing KVCache Cache at a Large Cloud "
    "Provider, USENIX ATC 2025 (alibaba-edu/qwen-bailian-usagetraces-anon README.md)"
)


@dataclass(frozen=True)
class PublicTrace:
    """One public trace file, as its publisher serves it.

    Attributes:
        name: The name ``--trace`` and ``pdcore traces`` take, e.g. ``azure-2023-conv``.
        title: What the trace is, in a few words.
        url: The publisher's URL of the file.
        source: The paper it accompanies, in a few words (``pdcore traces list``).
        licence: The licence's SPDX identifier.
        licence_url: Where the licence's text is.
        paper: The paper the publisher asks users to cite, and where that request is written.
        reader: The pdcore reader that loads it: ``"azure"``, ``"mooncake"`` or ``"bailian"``.
        suffix: The file's suffix, by which `pdcore.traces.load_trace` picks the reader.
        size_bytes: The file's size, when known.
        sha256: The pinned SHA-256 (lower-case hex), or None when unknown (module docstring).
        git_blob: The publisher's git blob id of the file, or None.
        requests: Requests in the file, when known.
    """

    name: str
    title: str
    url: str
    source: str
    licence: str
    licence_url: str
    paper: str
    reader: str
    suffix: str
    size_bytes: int | None = None
    sha256: str | None = None
    git_blob: str | None = None
    requests: int | None = None

    @property
    def pin(self) -> str:
        """How a copy is checked: ``"sha256"``, ``"git blob"`` or ``"first use"`` (module docstring)."""
        if self.sha256 is not None:
            return "sha256"
        if self.git_blob is not None:
            return "git blob"
        return "first use"

    @property
    def file_name(self) -> str:
        """The file's name in the cache: the trace's name and its suffix (so the workload is named after
        the trace, and `load_trace` picks the reader from the suffix)."""
        return self.name + self.suffix


@dataclass(frozen=True)
class _Publisher:
    """What the traces of one release share."""

    base_url: str
    source: str
    licence: str
    licence_url: str
    paper: str
    reader: str
    suffix: str


_AZURE_2023 = _Publisher(
    _AZURE_2023_URL,
    "Splitwise, ISCA'24",
    "CC-BY-4.0",
    _CC_BY,
    _SPLITWISE,
    "azure",
    ".csv",
)
_AZURE_2024 = _Publisher(
    _AZURE_2024_URL,
    "DynamoLLM, arXiv'24",
    "CC-BY-4.0",
    _CC_BY,
    _DYNAMOLLM,
    "azure",
    ".csv",
)
_MOONCAKE = _Publisher(
    _MOONCAKE_URL,
    "Mooncake, FAST'25",
    "Apache-2.0",
    _APACHE,
    _MOONCAKE_PAPER,
    "mooncake",
    ".jsonl",
)
_BAILIAN = _Publisher(
    _BAILIAN_URL,
    "KVCache in the Wild, ATC'25",
    "Apache-2.0",
    _APACHE,
    _BAILIAN_PAPER,
    "bailian",
    ".jsonl",
)


def _trace(
    publisher: _Publisher,
    name: str,
    title: str,
    file: str,
    *,
    size_bytes: int | None = None,
    sha256: str | None = None,
    git_blob: str | None = None,
    requests: int | None = None,
) -> PublicTrace:
    return PublicTrace(
        name=name,
        title=title,
        url=publisher.base_url + file,
        source=publisher.source,
        licence=publisher.licence,
        licence_url=publisher.licence_url,
        paper=publisher.paper,
        reader=publisher.reader,
        suffix=publisher.suffix,
        size_bytes=size_bytes,
        sha256=sha256,
        git_blob=git_blob,
        requests=requests,
    )


TRACES: dict[str, PublicTrace] = {
    trace.name: trace
    for trace in (
        _trace(
            _AZURE_2023,
            "azure-2023-conv",
            "Azure LLM inference trace 2023, conversation (one hour)",
            "AzureLLMInferenceTrace_conv.csv",
            size_bytes=719_188,
            sha256="2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8",
            git_blob="5b9219f2caf93bbbf95ec29894e206115658e235",
            requests=19_366,
        ),
        _trace(
            _AZURE_2023,
            "azure-2023-code",
            "Azure LLM inference trace 2023, coding (one hour)",
            "AzureLLMInferenceTrace_code.csv",
            size_bytes=320_117,
            sha256="54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6",
            git_blob="62bd8109d0f2b1bc48206d397ecca48d8de03aab",
            requests=8_819,
        ),
        _trace(
            _AZURE_2024,
            "azure-2024-conv",
            "Azure LLM inference trace 2024, conversation (one week)",
            "AzureLLMInferenceTrace_conv_1week.csv",
        ),
        _trace(
            _AZURE_2024,
            "azure-2024-code",
            "Azure LLM inference trace 2024, coding (one week)",
            "AzureLLMInferenceTrace_code_1week.csv",
        ),
        _trace(
            _MOONCAKE,
            "mooncake-conversation",
            "Mooncake (Kimi) conversation trace, FAST'25 release",
            "traces/conversation_trace.jsonl",
            size_bytes=3_029_533,
            sha256="b8cbb061a85206d729d91cdc2981f43c9e0d99209dce588d3af5f7934408b9df",
            git_blob="5a371794b81d7fc7487ec8a02a2c631bcc7fbdf8",
            requests=12_031,
        ),
        _trace(
            _MOONCAKE,
            "mooncake-toolagent",
            "Mooncake (Kimi) tool-and-agent trace, FAST'25 release",
            "traces/toolagent_trace.jsonl",
            git_blob="b765599d1e0828b37f68d481563c385d3c11de54",
        ),
        _trace(
            _MOONCAKE,
            "mooncake-synthetic",
            "Mooncake synthetic long-context trace, FAST'25 release",
            "traces/synthetic_trace.jsonl",
            size_bytes=1_136_313,
            sha256="bd070915a98fc0ed264d7cfef2ce746002eb3076a695ec31ba2674c0111ec131",
            git_blob="e4838049c0dcfc358a5f24ab08251279475cba94",
            requests=3_993,
        ),
        _trace(
            _MOONCAKE,
            "mooncake-arxiv",
            "Mooncake (Kimi) trace of the arXiv technical report",
            "arxiv-trace/mooncake_trace.jsonl",
            git_blob="d68d1c6ce27b35a168edc235d36d0202d233f0f2",
        ),
        _trace(
            _BAILIAN,
            "qwen-bailian-a",
            "Qwen-Bailian to-C (chat) trace A, two hours",
            "qwen_traceA_blksz_16.jsonl",
        ),
        _trace(
            _BAILIAN,
            "qwen-bailian-b",
            "Qwen-Bailian to-B (API task) trace B, two hours",
            "qwen_traceB_blksz_16.jsonl",
        ),
        _trace(
            _BAILIAN,
            "qwen-bailian-coder",
            "Qwen-Bailian coder trace",
            "qwen_coder_blksz_16.jsonl",
            size_bytes=132_054_902,
            sha256="3d74974cebb7bccb69b1ca6ea210a44d9a3033443c0271ed015327284dea1aff",
        ),
        _trace(
            _BAILIAN,
            "qwen-bailian-thinking",
            "Qwen-Bailian thinking-model trace",
            "qwen_thinking_blksz_16.jsonl",
            size_bytes=27_901_454,
            sha256="41ac36d9d1b54d084eeb6b05e9d142ba9d02f8bf79cfc9fff418d8ab7cdee906",
        ),
    )
}
"""Every registered public trace by name, in the order ``pdcore traces list`` shows them.

Not registered: BurstGPT (HPMLL/BurstGPT, CC-BY-4.0), whose columns (``Timestamp``, ``Request tokens``,
``Response tokens``) no pdcore reader reads yet."""


def trace_names() -> tuple[str, ...]:
    """The registered names, in `TRACES` order."""
    return tuple(TRACES)


def public_trace(name: str) -> PublicTrace:
    """The registered trace called ``name``.

    Raises:
        InvalidInputError: No trace has that name; the message lists the known names.
    """
    found = TRACES.get(name)
    if found is None:
        raise InvalidInputError(
            f"no registered trace is called {name!r}; fix: use one of {', '.join(TRACES)} "
            "(`pdcore traces list`), or pass the path of a trace file"
        )
    return found
