"""Cloud profiles built from Vidur's measured rows (a fixture of real rows, tests/data/vidur), the physics
guard, the optional tables and the kernel|engine cloud models."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pdcore.cli import app
from pdcore.exceptions import InvalidInputError, ProfileError
from pdcore.profiles import list_cloud_profiles, load_cloud_profile
from pdcore.profiles._toml import toml_value
from pdcore.profiles.build import build_profile
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.kv_transfer import MORI_COMMIT
from pdcore.profiles.vidur import VidurSource

VIDUR = Path(__file__).parent / "data" / "vidur"
COMMIT = "7d47513363ec447a741ac5e47241580b47724fbf"
MODEL = "meta-llama/Meta-Llama-3-8B"


def test_a_profile_built_from_real_rows_fits_them_within_ten_percent() -> None:
    profile, text = build_profile(VidurSource(VIDUR, COMMIT), "a100", MODEL, 1)
    assert profile.fit is not None
    assert all(profile.fit.mean[kind] < 0.10 for kind in ("prefill", "decode", "mixed"))
    assert profile.prefill_knee_tokens > 0
    assert COMMIT in profile.citation
    again = CloudProfile.from_toml_text(text)
    assert again.iteration_s([1024], [1000] * 8) == profile.iteration_s([1024], [1000] * 8)
    assert "[price]" in text
    assert "pricegpu" in text


def test_the_build_command_writes_a_profile_that_loads(tmp_path: Path) -> None:
    out = tmp_path / "built.toml"
    result = CliRunner().invoke(
        app,
        [
            "profiles",
            "build",
            "--gpu",
            "a100",
            "--model",
            MODEL,
            "--vidur",
            str(VIDUR),
            "--vidur-commit",
            COMMIT,
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "prefill" in result.output
    assert load_cloud_profile(str(out)).engine is not None


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--gpu", "a40"], "a40"),
        (["--gpu", "b200"], "--gpu"),
        (["--vidur-commit", "abc"], "--vidur-commit"),
        (["--tp", "2"], "--tp 2"),
    ],
)
def test_the_build_command_names_bad_flags(tmp_path: Path, flags: list[str], named: str) -> None:
    base = {"--gpu": "a100", "--model": MODEL, "--vidur": str(VIDUR), "--vidur-commit": COMMIT}
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        base[flag] = value
    args = [item for pair in base.items() for item in pair]
    result = CliRunner().invoke(app, ["profiles", "build", *args, "--out", str(tmp_path / "x.toml")])
    assert result.exit_code == 2
    assert named in result.output
    assert not (tmp_path / "x.toml").exists()


def test_every_shipped_profile_loads_and_built_ones_carry_their_tables() -> None:
    names = list_cloud_profiles()
    built = [name for name in names if name.endswith("-vidur")]
    assert len(built) >= 10
    assert {"llama3-70b-a100-tp4-vidur", "llama3-70b-a100-tp8-vidur"} <= set(built)
    for name in built:
        profile = load_cloud_profile(name)
        assert profile.fit is not None
        assert profile.hardware is not None
        assert profile.engine is not None
        assert max(profile.fit.mean.values()) < 0.10
    for name in ("llama3-8b-a100", "llama3-8b-h100", "llama2-70b-a100-tp2", "llama2-70b-h100-tp2"):
        profile = load_cloud_profile(name)
        assert profile.hardware is not None
        assert profile.model_size is not None
        assert profile.engine is None
        assert profile.prefill_knee_tokens == 0


def test_kernel_and_engine_differ_by_the_engine_overhead() -> None:
    profile = load_cloud_profile("llama3-8b-a100-tp1-vidur")
    assert profile.engine is not None
    kernel = profile.with_cloud_model("kernel")
    assert profile.with_cloud_model("engine") is profile
    gap = profile.iteration_s([512], [100]) - kernel.iteration_s([512], [100])
    assert gap == pytest.approx(profile.engine.step_overhead_s)
    old = load_cloud_profile("llama3-8b-a100")
    assert old.with_cloud_model("kernel") is old
    with pytest.raises(InvalidInputError, match="--cloud-model"):
        profile.with_cloud_model("roofline")


def _impossible(extra: str) -> str:
    bare = dataclasses.replace(load_cloud_profile("llama3-8b-a100"), hardware=None, model_size=None)
    return bare.to_toml() + extra


def test_the_guard_refuses_a_prefill_faster_than_the_flops_allow() -> None:
    text = _impossible(
        "\n[hardware]\npeak_dense_flops = 1e12\nhbm_bytes_per_s = 2.039e12\n"
        "\n[model_size]\nparameters = 8.03e9\nbytes_per_parameter = 2\n"
    )
    with pytest.raises(ProfileError, match=r"\[iteration\] prefill_token_s.*peak_dense_flops"):
        CloudProfile.from_toml_text(text)


def test_the_guard_refuses_a_decode_faster_than_the_hbm_reads_the_weights() -> None:
    text = _impossible(
        "\n[hardware]\npeak_dense_flops = 312e12\nhbm_bytes_per_s = 1e11\n"
        "\n[model_size]\nparameters = 8.03e9\nbytes_per_parameter = 2\n"
    )
    with pytest.raises(ProfileError, match=r"\[iteration\] base_s.*hbm_bytes_per_s"):
        CloudProfile.from_toml_text(text)


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ("\n[hardware]\npeak_dense_flops = 312e12\n", "hbm_bytes_per_s"),
        ('\n[engine]\nengine = "vLLM"\nstep_overhead_s = 99.0\ncitation = "x"\n', "step_overhead_s"),
        ("\n[model_size]\nparameters = 8e9\nbytes = 2\n", "bytes"),
    ],
)
def test_optional_tables_are_checked(table: str, named: str) -> None:
    with pytest.raises(ProfileError, match=named):
        CloudProfile.from_toml_text(_impossible(table))


def test_a_negative_knee_is_refused() -> None:
    text = (
        load_cloud_profile("llama3-8b-a100")
        .to_toml()
        .replace(
            "decode_context_s =", "prefill_knee_tokens = -1\nprefill_knee_token_s = 1e-5\ndecode_context_s ="
        )
    )
    with pytest.raises(ProfileError, match="prefill_knee_tokens"):
        CloudProfile.from_toml_text(text)


def test_every_shipped_profile_cites_its_kv_write_and_transfer_timing() -> None:
    for name in list_cloud_profiles():
        profile = load_cloud_profile(name)
        assert profile.kv_source is not None, name
        assert MORI_COMMIT in profile.kv_source, name
        assert "pull request 19103" in profile.kv_source, name
        assert CloudProfile.from_toml_text(profile.to_toml()).kv_source == profile.kv_source, name


def test_a_built_profile_carries_the_kv_source_and_its_descriptor_size() -> None:
    profile, text = build_profile(VidurSource(VIDUR, COMMIT), "a100", MODEL, 1)
    assert profile.kv_source is not None
    # one layer's K or V of a 16-token block of Llama-3-8B: 16 x 8 KV heads x 128 x 2 B
    assert "is 32,768 B" in profile.kv_source
    assert "0.69% of a 1,000-token transfer" in profile.kv_source
    assert f"source = {toml_value(profile.kv_source)}" in text


def test_a_kv_source_that_is_not_text_is_refused() -> None:
    text = load_cloud_profile("llama3-8b-a100").to_toml()
    broken = text.replace("[kv_transfer]\n", "[kv_transfer]\nsource = 3\n", 1)
    broken = "\n".join(line for line in broken.splitlines() if not line.startswith('source = "write_token_s'))
    with pytest.raises(ProfileError, match=r"kv_transfer.*source"):
        CloudProfile.from_toml_text(broken)
