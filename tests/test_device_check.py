"""benches/python/device_check.py: the AI Hub perf-file reader, the comparison it prints, and that
docs/device-profiles.md holds the tables it prints today (the perf files below are quic/ai-hub-models'
``qai_hub_models/models/llama_v3_2_{1b,3b}_instruct/perf.yaml`` at commit
52c080d245d2d20c634459208ff2548ce10b3c9f, BSD-3-Clause, copied as published)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benches" / "python"))

import ai_hub_perf  # noqa: E402  # the bench scripts are not a package
import device_check  # noqa: E402

PERF_1B = """\
supported_devices:
  - Snapdragon 8 Elite QRD
  - SA8295P ADP
  - Snapdragon 8 Elite Gen 5 QRD
supported_chipsets:
  - qualcomm-snapdragon-8-elite
  - qualcomm-sa8295p
  - qualcomm-snapdragon-8-elite-gen5
precisions:
  w4:
    components:
      Llama-v3.2-1B-Instruct:
        performance_metrics:
          Snapdragon 8 Elite Gen 5 QRD:
            genie:
              llm_metrics:
                - context_length: 4096
                  time_to_first_token_range_milliseconds:
                    min: 53.757
                    max: 1720.243
                  tokens_per_second: 36.89705
          Snapdragon 8 Elite QRD:
            genie:
              llm_metrics:
                - context_length: 4096
                  time_to_first_token_range_milliseconds:
                    min: 81.244
                    max: 2599.808
                  tokens_per_second: 33.73819
          SA8295P ADP:
            genie:
              llm_metrics:
                - context_length: 4096
                  time_to_first_token_range_milliseconds:
                    min: 225.0
                    max: 7200.0
                  tokens_per_second: 11.0
  w4a16:
    components:
      Llama-v3.2-1B-Instruct:
        performance_metrics:
          Snapdragon 8 Elite Gen 5 QRD:
            genie:
              llm_metrics:
                - context_length: 4096
                  time_to_first_token_range_milliseconds:
                    min: 30.937
                    max: 990.003
                  tokens_per_second: 64.04112
          Snapdragon 8 Elite QRD:
            genie:
              llm_metrics:
                - context_length: 4096
                  time_to_first_token_range_milliseconds:
                    min: 37.0651
                    max: 1186.0832
                  tokens_per_second: 53.6399
"""

PERF_3B = """\
supported_devices:
  - Snapdragon X Elite CRD
  - Snapdragon 8 Elite QRD
  - Snapdragon 8 Elite Gen 5 QRD
  - SA8295P ADP
supported_chipsets:
  - qualcomm-snapdragon-8-elite
  - qualcomm-snapdragon-8-elite-gen5
  - qualcomm-snapdragon-x-elite
  - qualcomm-sa8295p
precisions:
  w4a16:
    components:
      Llama-v3.2-3B-Instruct:
        performance_metrics:
          Snapdragon 8 Elite Gen 5 QRD:
            genie:
              llm_metrics:
                - context_length: 4096
                  time_to_first_token_range_milliseconds:
                    min: 58.016
                    max: 1856.531
                  tokens_per_second: 29.48402
          Snapdragon 8 Elite QRD:
            genie:
              llm_metrics:
                - context_length: 4096
                  time_to_first_token_range_milliseconds:
                    min: 88.195
                    max: 2822.25
                  tokens_per_second: 23.4718
          Snapdragon X Elite CRD:
            genie:
              llm_metrics:
                - context_length: 4096
                  time_to_first_token_range_milliseconds:
                    min: 125.936
                    max: 4029.952
                  tokens_per_second: 18.4176
  w4:
    components:
      Llama-v3.2-3B-Instruct:
        performance_metrics:
          Snapdragon 8 Elite Gen 5 QRD:
            genie:
              llm_metrics:
                - context_length: 4096
                  time_to_first_token_range_milliseconds:
                    min: 131.546
                    max: 4209.475
                  tokens_per_second: 18.00883
          Snapdragon 8 Elite QRD:
            genie:
              llm_metrics:
                - context_length: 4096
                  time_to_first_token_range_milliseconds:
                    min: 88.195
                    max: 2822.25
                  tokens_per_second: 13.83
          SA8295P ADP:
            genie:
              llm_metrics:
                - context_length: 1024
                  time_to_first_token_range_milliseconds:
                    min: 373.117
                    max: 2984.936
                  tokens_per_second: 3.523
"""


@pytest.fixture
def perf_files(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "llama_v3_2_1b_instruct.yaml", tmp_path / "llama_v3_2_3b_instruct.yaml"]
    for path, text in zip(paths, (PERF_1B, PERF_3B), strict=True):
        path.write_text(text, encoding="utf-8")
    return paths


def test_the_reader_gives_every_chip_of_a_perf_file() -> None:
    found = ai_hub_perf.published_figures(ai_hub_perf.parse_perf_yaml(PERF_3B, "3b.yaml"))
    by_key = {(f.precision, f.chip): f for f in found}
    assert len(found) == 6
    elite = by_key["w4a16", "Snapdragon 8 Elite QRD"]
    assert elite.component == "Llama-v3.2-3B-Instruct"
    assert (elite.context_length, elite.ttft_min_s, elite.tokens_per_second) == (4096, 0.088195, 23.4718)
    assert by_key["w4", "SA8295P ADP"].context_length == 1024


def test_ai_hubs_ttft_is_read_linearly_and_not_past_the_context() -> None:
    entry = ai_hub_perf.Published("m", "w4a16", "chip", 4096, 0.1, 3.2, 20.0)
    assert entry.ttft_s(64) == entry.ttft_s(128) == 0.1
    assert entry.ttft_s(4096) == 3.2
    assert entry.ttft_s(2048) == pytest.approx(0.1 + 3.1 * (2048 - 128) / (4096 - 128))
    assert entry.ttft_s(4097) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a: {b: 1}\n", ":1:"),
        ("a:\n  - &x 1\n", ":2:"),
        ("a: |\n  text\n", ":1:"),
        ("a: 1\n b: 2\n", "indentation"),
        ("", "empty"),
    ],
)
def test_yaml_the_reader_does_not_take_is_refused_naming_the_line(text: str, says: str) -> None:
    with pytest.raises(ValueError, match="fix:") as raised:
        ai_hub_perf.parse_perf_yaml(text, "perf.yaml")
    assert says in str(raised.value)


def test_the_doc_holds_the_tables_the_script_prints(perf_files: list[Path]) -> None:
    doc = (ROOT / "docs" / "device-profiles.md").read_text(encoding="utf-8")
    block = doc.split("<!-- device_check.py: begin -->\n", 1)[1].split("<!-- device_check.py: end -->", 1)[0]
    assert block == device_check.report(perf_files)


def test_each_shipped_phone_profile_is_set_beside_its_chip(perf_files: list[Path]) -> None:
    text = device_check.report(perf_files)
    for name, match in device_check.MATCHES.items():
        assert f"`{name}`: AI Hub's {match.component}, {match.precision}" in text
        assert f"AI Hub, {match.chip} (the profile's chip)" in text
    assert "`smollm2-135m-q4-cpu2` | 524 |" in text
    assert text.count("[1]") == 2


def test_a_missing_perf_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert device_check.main([str(tmp_path / "nowhere.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "nowhere.yaml" in err
    assert "fix:" in err
