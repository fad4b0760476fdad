"""labutils.lm (notebook 10's task, tokenizer and log collector) and scripts/lm_answer.py's refusals."""
from __future__ import annotations

import logging
import runpy

import pytest
import transformers

from labutils.lm import char_tokenizer, problems, split_pairs, transformers_log
from labutils.paths import REPO_ROOT

SCRIPT = runpy.run_path(str(REPO_ROOT / "notebooks" / "scripts" / "lm_answer.py"), run_name="lm_answer")


def test_the_task_and_the_tokenizer_round_trip():
    assert problems("+", [(27, 58), (5, 3)]) == (["27+58=", "05+03="], ["085", "008"])
    assert problems("-", [(27, 58)]) == (["58-27="], ["031"]), "the larger number first"
    train, test = split_pairs(0, 500)
    assert len(test) == 500 and len(train) == 9_500 and not set(train) & set(test)
    tokenizer = char_tokenizer()
    assert tokenizer.decode(tokenizer("58-27=031").input_ids) == "58-27=031" and len(tokenizer) == 15


def test_a_bad_operation_or_split_is_refused_by_name():
    with pytest.raises(ValueError, match=r"operation '\*' is not one of \['\+', '-'\]"):
        problems("*", [(1, 2)])
    with pytest.raises(ValueError, match="test_size=10000 is not allowed"):
        split_pairs(0, 10_000)


def test_transformers_log_collects_every_level_and_puts_the_logger_back():
    logger = logging.getLogger("transformers")
    handlers, verbosity = logger.handlers[:], transformers.logging.get_verbosity()
    with transformers_log() as log:
        transformers.logging.get_logger("transformers.trainer").info("an info line")
        transformers.logging.get_logger("transformers.trainer").debug("below the level")
        transformers.logging.get_logger("transformers.modeling_utils").warning("a warning")
    assert log == [("INFO", "an info line"), ("WARNING", "a warning")]
    assert logger.handlers == handlers and transformers.logging.get_verbosity() == verbosity
    with pytest.raises(RuntimeError), transformers_log():
        raise RuntimeError("the block failed")
    assert logger.handlers == handlers and transformers.logging.get_verbosity() == verbosity


def test_lm_answer_refuses_a_folder_without_its_config(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    for argv, named in (([str(tmp_path / "nowhere"), "27+58="], "nowhere: no config.json there"),
                        ([str(tmp_path / "model"), "--adapter", str(tmp_path), "27+58="], "no adapter_config.json")):
        with pytest.raises(SystemExit) as stopped:
            SCRIPT["main"](argv)
        err = capsys.readouterr().err
        assert stopped.value.code == 2 and named in err and "pass a folder written by save_pretrained" in err
