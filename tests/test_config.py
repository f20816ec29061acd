"""Configuration: defaults, then YAML, then flags; bad values fail in one line naming the option."""

import pytest

from astrocnn.cli import main
from astrocnn.engine.config import RunConfig, model_kwargs, resolve
from astrocnn.engine.train import with_task_defaults
from astrocnn.errors import OptionError
from astrocnn.layers.dims import Norm
from astrocnn.tasks import get_task


def write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_flags_override_the_file_which_overrides_the_defaults(tmp_path):
    path = write(tmp_path, "epochs: 7\nbatch_size: 16\nmodel: vgg11_bn\nmodel_options: {small_input: true}\n")
    config = resolve("sky-shapes", config_file=path, epochs=2, seed=None)
    assert (config.epochs, config.batch_size, config.model, config.seed) == (2, 16, "vgg11_bn", 0)
    filled = with_task_defaults(config, get_task("sky-shapes"))
    assert filled.lr == get_task("sky-shapes").defaults.lr  # from the task's defaults
    assert filled.model_options == {"small_input": True}  # a chosen model does not inherit the task's options


def test_task_defaults_fill_what_is_not_given():
    task = get_task("sky-shapes")
    config = with_task_defaults(RunConfig(task="sky-shapes"), task)
    assert config.model == task.defaults.model and config.epochs == task.defaults.epochs
    assert config.model_options == task.defaults.model_options


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs: 0\n", "epochs must be at least 1, got 0"),
        ("batch_size: -4\n", "batch_size must be at least 1, got -4"),
        ("epochs: ten\n", "epochs must be an integer or null, got 'ten'"),
        ("epochs: true\n", "epochs must be an integer or null, got True"),
        ("lr: -0.1\n", "lr must be in (0, 10)"),
        ("bacth_size: 4\n", "unknown option(s) 'bacth_size'"),
        ("precision: 8-bit\n", "precision must be one of"),
        ("- a\n- b\n", "must be a mapping"),
        ("epochs: [1\n", "not valid YAML at line"),
        ("task: other\n", "is for task 'other'"),
    ],
)
def test_bad_configuration_files(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(OptionError) as info:
        resolve("sky-shapes", config_file=path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_bad_flag_values_on_the_command_line(capsys):
    assert main(["train", "sky-shapes", "--batch-size", "0"]) == 2
    assert capsys.readouterr().err == "astrocnn: error: command line: batch_size must be at least 1, got 0\n"
    assert main(["train", "sky-shapes", "--config", "/no/such/file.yaml"]) == 2
    assert "/no/such/file.yaml: cannot read the configuration" in capsys.readouterr().err


def test_global_batch_must_divide_over_the_processes():
    with pytest.raises(OptionError, match="batch_size 65 is the global batch and must divide evenly over 2"):
        resolve("sky-shapes", batch_size=65, devices=2)
    assert resolve("sky-shapes", batch_size=64, devices=2).batch_size == 64


def test_model_option_strings_are_resolved_at_the_edge():
    from torch import nn

    resolved = model_kwargs({"norm": "group", "act": "gelu", "width": 0.5})
    assert resolved == {"norm": Norm.GROUP, "act": nn.GELU, "width": 0.5}
    with pytest.raises(OptionError, match="norm must be one of batch, instance, group, none"):
        model_kwargs({"norm": "layer"})
    with pytest.raises(OptionError, match="act must be one of relu"):
        model_kwargs({"act": "swish"})
