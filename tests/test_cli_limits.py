"""The command line's numeric limits, each on both sides of its edge: just inside passes, just
outside is a one-line usage error (argparse's exit 2 with the message)."""

import argparse
import math

import pytest

from style_transformer.cli.common import _non_negative_float, _positive_float, _positive_int, _truncation


def test_positive_int_edge():
    assert _positive_int("1") == 1
    for bad in ("0", "-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a positive integer, got -?[01]$"):
            _positive_int(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="expected a positive integer, got '1.5'"):
        _positive_int("1.5")


def test_non_negative_and_positive_float_edges():
    assert _non_negative_float("0") == 0.0 and _non_negative_float("1e308") == 1e308
    assert _positive_float("5e-324") == 5e-324  # the smallest positive double
    for bad in ("-5e-324", "inf", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a finite number >= 0"):
            _non_negative_float(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number > 0, got 0"):
        _positive_float("0")
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number >= 0, got 'x'"):
        _non_negative_float("x")


def test_truncation_edges():
    assert _truncation("0") == 0.0 and _truncation("1") == 1.0
    for bad in (math.nextafter(0.0, -1.0), math.nextafter(1.0, 2.0), float("nan")):
        with pytest.raises(argparse.ArgumentTypeError, match=r"truncation must be in \[0, 1\]"):
            _truncation(repr(bad))


@pytest.mark.parametrize("argv,ok", [(["--n", "1"], True), (["--n", "0"], False),
                                     (["--truncation", "1"], True), (["--truncation", "1.0000001"], False),
                                     (["--batch-size", "1"], True), (["--batch-size", "0"], False)])
def test_generate_limits_through_the_parser(tmp_path, capsys, argv, ok):
    from style_transformer.cli import main

    cmd = ["generate", "--out", str(tmp_path / "g"), "--n", "1"] + argv
    if ok:
        assert main(cmd) == 0
        assert len(list((tmp_path / "g").glob("*.png"))) == 1
    else:
        with pytest.raises(SystemExit) as e:
            main(cmd)
        err = capsys.readouterr().err
        assert e.value.code == 2 and "Traceback" not in err and not (tmp_path / "g").exists()
