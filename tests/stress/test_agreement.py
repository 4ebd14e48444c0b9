"""Cross-device agreement: a wrong device is named against the float64 golden, an odd one out by its bits."""

import torch

from acceldoctor.stress.agreement import agreement_product, judge_agreement

CPU = torch.device("cpu")


def _flip(product: torch.Tensor, bit: int) -> torch.Tensor:
    flipped = product.clone()
    flipped.view(-1).view(torch.int32)[4242] ^= 1 << bit
    return flipped


def test_identical_healthy_devices_all_pass():
    good = agreement_product(CPU)
    outcomes = judge_agreement({"cuda:0": good, "cuda:1": good.clone()}, {"cuda:0": "H100", "cuda:1": "H100"})
    assert {o.status for o in outcomes.values()} == {"pass"}
    assert "bit-identical to the 1 other device" in outcomes["cuda:0"].message


def test_a_device_that_is_wrong_is_named_even_among_two():
    good = agreement_product(CPU)
    outcomes = judge_agreement({"cuda:0": good, "cuda:1": _flip(good, 27)}, {"cuda:0": "H100", "cuda:1": "H100"})
    assert outcomes["cuda:0"].status == "pass"
    assert outcomes["cuda:1"].status == "fail" and "odd device out" in outcomes["cuda:1"].message
    assert "cuda:0 agrees with the golden" in outcomes["cuda:1"].message


def test_a_device_whose_bits_differ_from_its_peers_within_rounding_is_a_warning():
    good = agreement_product(CPU)
    products = {"cuda:0": good, "cuda:1": good.clone(), "cuda:2": _flip(good, 0), "cpu": _flip(good, 1)}
    models = {"cuda:0": "MI300X", "cuda:1": "MI300X", "cuda:2": "MI300X", "cpu": "EPYC"}
    outcomes = judge_agreement(products, models)
    assert outcomes["cuda:2"].status == "warn" and "2 other MI300X" in outcomes["cuda:2"].message
    assert outcomes["cuda:0"].status == outcomes["cuda:1"].status == "pass"
    assert outcomes["cpu"].status == "pass"  # another model may round differently


def test_two_devices_whose_bits_differ_are_not_called_bit_identical():
    good = agreement_product(CPU)
    outcomes = judge_agreement({"cuda:0": good, "cuda:1": _flip(good, 0)}, {"cuda:0": "H100", "cuda:1": "H100"})
    assert all("bit-identical to the" not in o.message for o in outcomes.values())
    assert "bit-identical to 0 of the 1 other" in outcomes["cuda:0"].message
