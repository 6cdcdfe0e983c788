"""Config layering, --set parsing and type checks, messages about a config file, and the config hash."""

from __future__ import annotations

import pytest

from harness.config import RunConfig, config_hash, load_run_config, parse_literal
from harness.errors import HarnessError


def test_defaults_are_the_offline_default():
    config = load_run_config()
    assert (config.method, config.backbone, config.tasks) == ("autoregembed", "smollm2-135m", ["offline"])
    assert config.train_data == "offline"


def test_layers_file_then_options_then_set(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('method = "prompteol"\neval_batch_size = 8\nseed = 3\n[method_args]\ntemplate = "x {text}"\n')
    config = load_run_config(
        path, {"seed": 5, "backbone": None}, ["eval_batch_size=4", "method_args.template='y {text}'"]
    )
    assert config.method == "prompteol"
    assert config.seed == 5  # option beats file
    assert config.eval_batch_size == 4  # --set beats file
    assert config.method_args == {"template": "y {text}"}
    assert config.backbone == "smollm2-135m"  # None options leave the default


@pytest.mark.parametrize(
    ("text", "value"),
    [("3", 3), ("0.5", 0.5), ("true", True), ('["a", "b"]', ["a", "b"]), ("plain words", "plain words"), ("'q'", "q")],
)
def test_set_values_are_toml_literals_or_strings(text, value):
    assert parse_literal(text) == value


def test_set_value_is_never_evaluated():
    assert parse_literal("__import__('os').system('false')") == "__import__('os').system('false')"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["eval_batch_size=many"], "--set 'eval_batch_size=many' eval_batch_size: expected int"),
        (["nokey"], "expected KEY=VALUE"),
        (["colour=red"], "unknown option(s) 'colour'"),
        (["eval_batch_sise=2"], "unknown option(s) 'eval_batch_sise' (did you mean 'eval_batch_size'?)"),
        (["dtype=float8"], "is not one of"),
        (["a.b.c=1"], "is not a config key"),
        (["eval_batch_size=0"], "eval_batch_size=0 must be >= 1"),
    ],
)
def test_bad_set_values_name_the_option(sets, message):
    with pytest.raises(HarnessError) as info:
        load_run_config(sets=sets)
    assert message in str(info.value)


def test_bad_toml_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('method = "x"\nbatch_size = = 3\n')
    with pytest.raises(HarnessError) as info:
        load_run_config(path)
    assert str(path) in str(info.value) and "line 2" in str(info.value) and "column" in str(info.value)


def test_unknown_key_in_file_names_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("batchsize = 3\n")
    with pytest.raises(HarnessError, match=r"c\.toml.*batchsize"):
        load_run_config(path)


def test_int_is_accepted_for_float_and_bool_is_not_an_int():
    with pytest.raises(HarnessError, match="expected an integer"):
        load_run_config(sets=["seed=true"])


def test_hash_ignores_the_seed_only():
    base = {"method": "m", "seed": 1, "batch_size": 2}
    assert config_hash(base) == config_hash({**base, "seed": 7})
    assert config_hash(base) != config_hash({**base, "batch_size": 3})
    assert len(config_hash(base)) == 64


def test_run_config_fields_all_have_defaults():
    """Every field is optional, so a config file may set any subset."""
    import dataclasses

    missing = [
        f.name
        for f in dataclasses.fields(RunConfig)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    assert missing == []


def test_config_messages_have_no_doubled_colons(tmp_path):
    from typer.testing import CliRunner

    from harness.cli import app

    config = tmp_path / "run.toml"
    config.write_text("eval_batch_sise = 3\n")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 2 and "::" not in result.output and "did you mean 'eval_batch_size'?" in result.output
