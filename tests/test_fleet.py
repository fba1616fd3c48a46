"""Fleet files (`pdcore.fleet`): the shipped examples, the seeded draw of each request's class, and one
clear error for every bad field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pdcore.exceptions import InvalidInputError, ProfileError
from pdcore.fleet import NO_DEVICE, list_fleets, load_fleet

GOOD = """
name = "two"
description = "a test fleet"

[[class]]
name = "capable"
share = 0.25
device = "llama32-3b-w4a16-8elite-genie"
network = "wifi"

[[class]]
name = "cloud-only"
share = 0.75
device = "none"
network = "lte"
[class.slo]
ttft_s = 2.0
"""


def _write(folder: Path, text: str, name: str = "fleet.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_fleets_load_and_their_shares_sum_to_one() -> None:
    assert set(list_fleets()) >= {"phones-2025", "phones-laptops-2028"}
    for name in list_fleets():
        fleet = load_fleet(name)
        assert abs(sum(c.share for c in fleet.classes) - 1.0) <= 1e-9
        assert fleet.citation
        assert fleet.notes
        assert 0.0 < fleet.capable_share < 1.0
    assert load_fleet("phones-2025").capable_share == pytest.approx(0.33)


def test_a_fleet_file_reads_its_classes(tmp_path: Path) -> None:
    fleet = load_fleet(_write(tmp_path, GOOD))
    capable, cloud_only = fleet.classes
    assert capable.device is not None
    assert capable.device.name == "llama32-3b-w4a16-8elite-genie"
    assert cloud_only.device is None
    assert cloud_only.device_name == NO_DEVICE
    assert not cloud_only.capable
    assert cloud_only.network.name == "lte"
    assert cloud_only.slo is not None
    assert cloud_only.slo.ttft_s == 2.0
    assert cloud_only.slo.max_tpot_s is None
    assert capable.slo is None
    assert fleet.describe()["classes"][1] == {
        "name": "cloud-only",
        "share": 0.75,
        "device": "none",
        "network": "lte",
        "slo": {"ttft_s": 2.0, "max_tpot_s": None},
    }


def test_a_device_path_is_read_beside_the_fleet_file(tmp_path: Path) -> None:
    shipped = (
        Path(__file__).parents[1] / "python/pdcore/profiles/data/device/llama32-1b-w4a16-8elite-genie.toml"
    )
    (tmp_path / "phone.toml").write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    text = GOOD.replace('"llama32-3b-w4a16-8elite-genie"', '"./phone.toml"')
    fleet = load_fleet(_write(tmp_path, text))
    assert fleet.classes[0].device is not None
    assert fleet.classes[0].device_name == "./phone.toml"


def test_the_draw_is_seeded_and_follows_the_shares(tmp_path: Path) -> None:
    fleet = load_fleet(_write(tmp_path, GOOD))
    first = fleet.draw(20_000, seed=3)
    assert first.dtype == np.int64
    assert first.shape == (20_000,)
    assert np.array_equal(first, fleet.draw(20_000, seed=3))
    assert not np.array_equal(first, fleet.draw(20_000, seed=4))
    assert abs(float(np.mean(first == 0)) - 0.25) < 0.02
    # the same uniform numbers as NumPy's seeded generator, cut at the cumulative shares
    uniform = np.random.default_rng(3).random(20_000)
    assert np.array_equal(first, (uniform >= 0.25).astype(np.int64))
    assert len(fleet.draw(0, seed=0)) == 0
    with pytest.raises(InvalidInputError, match="n = -1"):
        fleet.draw(-1, seed=0)
    with pytest.raises(InvalidInputError, match=r"seed = 1\.5"):
        fleet.draw(3, seed=1.5)  # type: ignore[arg-type]


def test_a_share_of_zero_is_never_drawn_and_a_share_of_one_always(tmp_path: Path) -> None:
    text = GOOD.replace("share = 0.25", "share = 0.0").replace("share = 0.75", "share = 1.0")
    drawn = load_fleet(_write(tmp_path, text)).draw(5_000, seed=1)
    assert np.all(drawn == 1)
    text = GOOD.replace("share = 0.25", "share = 1").replace("share = 0.75", "share = 0")
    assert np.all(load_fleet(_write(tmp_path, text)).draw(5_000, seed=1) == 0)


BAD = [
    (GOOD.replace("share = 0.25", "share = nan"), "share = nan is not finite"),
    (GOOD.replace("share = 0.25", "share = -0.25").replace("0.75", "1.25"), "is negative"),
    (GOOD.replace("share = 0.75", "share = 1.5"), "is above 1"),
    (GOOD.replace("share = 0.25", 'share = "a quarter"'), "is not a number"),
    (GOOD.replace("share = 0.25", "share = true"), "is not a number"),
    (GOOD.replace("share = 0.75", "share = 0.7"), "the class shares sum to 0.95, not 1"),
    (GOOD.replace('name = "cloud-only"', 'name = "capable"'), "class 'capable' is named twice"),
    (GOOD.replace("llama32-3b-w4a16-8elite-genie", "iphone-99"), "unknown device profile 'iphone-99'"),
    (GOOD.replace('network = "lte"', 'network = "dialup"'), "network = 'dialup' is not a preset"),
    (GOOD.replace("ttft_s = 2.0", "ttft_s = 0"), "ttft_s = 0"),
    (GOOD.replace("ttft_s = 2.0", "ttft_s = inf"), "ttft_s = inf"),
    (GOOD.replace("ttft_s = 2.0", "tpot = 0.05"), "unknown key '[class.slo] tpot'"),
    (GOOD.replace('network = "wifi"', 'network = "wifi"\nphone = "x"'), "unknown key '[class] phone'"),
    (GOOD.replace('network = "wifi"\n', ""), "missing key '[class] network'"),
    (GOOD.replace("share = 0.25\n", ""), "missing key 'share'"),
    ('name = "x"\ndescription = "y"\n', "needs one or more [[class]]"),
    (GOOD.replace('description = "a test fleet"', ""), "missing key 'description'"),
    (GOOD + "\nowner = 1\n", "unknown key"),
    (GOOD.replace("[[class]]", "[[class]", 1), "invalid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m for _, m in BAD])
def test_every_bad_field_is_one_clear_error_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        load_fleet(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert "fix:" in str(caught.value)


def test_an_unknown_fleet_name_or_missing_file_says_what_exists(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"unknown fleet 'phones-1999'.*phones-2025"):
        load_fleet("phones-1999")
    with pytest.raises(ProfileError, match="does not exist"):
        load_fleet(tmp_path / "absent.toml")
