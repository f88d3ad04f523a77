"""Bad input: one line on stderr, exit code 2, never a traceback."""

import subprocess
import sys

import pytest

from ..conftest import assert_one_line_error


def test_unknown_model_suggests_close_names(cli):
    assert_one_line_error(cli("count", "mobilenetv2"), "unknown model 'mobilenetv2'", "did you mean mobilenet_v2")


@pytest.mark.parametrize("size", ["0", "0x32", "abc"])
def test_bad_input_size(cli, size):
    assert_one_line_error(cli("count", "resnet18", "--input-size", size), "input size")


@pytest.mark.parametrize("width", ["0", "-1"])
def test_bad_width(cli, width):
    assert_one_line_error(cli("count", "resnet18", "--width", width), "width must be a positive number")


def test_missing_file_and_callable(cli, tmp_path):
    assert_one_line_error(cli("count", f"{tmp_path}/nope.py:build"), "does not exist")
    (tmp_path / "net.py").write_text("x = 1\n")
    assert_one_line_error(cli("count", f"{tmp_path}/net.py:build"), "no callable named 'build'")


def test_unknown_option_and_bad_convention(cli):
    assert_one_line_error(cli("count", "resnet18", "--bogus"), "No such option")
    assert_one_line_error(cli("count", "resnet18", "--convention", "mine"), "unknown --convention")


@pytest.mark.slow
def test_console_script_process_exit_code():
    """The real process: `python -m autosc` with a bad model prints one line and exits 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "autosc", "count", "resnet_18"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "did you mean resnet18" in proc.stderr
    assert "Traceback" not in proc.stderr
