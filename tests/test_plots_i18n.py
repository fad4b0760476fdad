"""The lab's plots label themselves in the learner's language: English by default, Chinese after
set_language("zh-CN") when matplotlib has a CJK font, and English with one line that says which font to install when
it has none (never boxes in place of characters)."""
from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from labutils import BatchNormNet, i18n, plots, state_dict_table  # noqa: E402

# The Chinese the catalogue gets for the plots' labels (handed to the lead as /tmp/lab40/zh/h3_plots.json); until
# it is merged, the tests look the labels up here.
ZH = {
    "batch loss": "各批量的损失",
    "mean of {0} batches": "{0} 个批量的滑动平均",
    "test loss": "测试损失",
    "epoch": "epoch",
    "cross-entropy": "交叉熵",
    "Loss": "损失",
    "train (during the epoch)": "训练集（epoch 进行中）",
    "test (after the epoch)": "测试集（epoch 结束后）",
    "accuracy (%)": "准确率（%）",
    "Accuracy": "准确率",
    "predicted digit": "预测的数字",
    "true digit": "真实的数字",
    "Confusion matrix (mistakes in red)": "混淆矩阵（红色为分错的样本）",
    "elements (log scale)": "元素个数（对数坐标）",
    "What is inside the state_dict": "state_dict 里有什么",
    "parameter": "参数",
    "buffer": "缓冲区",
    "input": "输入",
    "output": "输出",
    "index": "索引",
    "value": "数值",
}
HISTORY = [{"epoch": epoch, "batch_losses": [1.0 / epoch] * 20, "test_loss": 0.5 / epoch, "train_acc": 0.9,
            "test_acc": 0.95} for epoch in (1, 2)]


def _in_chinese(message: str) -> str:
    """The Chinese of `message` in ZH (a template's too), or `message` itself."""
    for msgid, msgstr in ZH.items():
        match = re.fullmatch(re.escape(msgid).replace(r"\{0\}", "(.*)"), message)
        if match:
            return msgstr.format(*match.groups())
    return message


def _from_the_table(message: str) -> str:
    """translate() with ZH as its catalogue, answering in the language set."""
    return message if i18n.language() == "en" else _in_chinese(message)


@pytest.fixture(autouse=True)
def chinese_table(monkeypatch):
    """The plots look their labels up in ZH; every figure is closed and the language is English again after."""
    monkeypatch.setattr(plots, "translate", _from_the_table)
    monkeypatch.setattr(plots, "_told_no_font", False)
    try:
        yield
    finally:
        i18n.set_language("en")
        plt.close("all")


def _draw() -> dict[str, plt.Figure]:
    """One figure of each plot that has labels."""
    return {
        "training_curves": plots.training_curves(HISTORY),
        "plot_confusion": plots.plot_confusion(plots.confusion_matrix(torch.tensor([1, 2]), torch.tensor([1, 3]))),
        "layer_sizes": plots.layer_sizes(state_dict_table(BatchNormNet())),
        "weight_picture matrix": plots.weight_picture(torch.ones(3, 4)),
        "weight_picture vector": plots.weight_picture(torch.ones(4)),
    }


def _labels(figures: dict[str, plt.Figure] | None = None) -> dict[str, list[str]]:
    """Every title, axis label and legend text of `figures` (drawn now when not given), by plot."""
    found = {}
    for name, fig in (figures or _draw()).items():
        texts = []
        for ax in fig.axes:
            texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
            if ax.get_legend():
                texts += [text.get_text() for text in ax.get_legend().get_texts()]
        found[name] = [text for text in texts if text]
    return found


ENGLISH = {
    "training_curves": ["Loss", "epoch", "cross-entropy", "batch loss", "mean of 2 batches", "test loss",
                        "Accuracy", "epoch", "accuracy (%)", "train (during the epoch)", "test (after the epoch)"],
    "plot_confusion": ["Confusion matrix (mistakes in red)", "predicted digit", "true digit"],
    "layer_sizes": ["What is inside the state_dict", "elements (log scale)", "parameter", "buffer"],
    "weight_picture matrix": ["input", "output"],
    "weight_picture vector": ["index", "value"],
}
CHINESE = {name: [_in_chinese(text) for text in texts] for name, texts in ENGLISH.items()}


def test_plots_are_labelled_in_english_by_default(capsys):
    assert _labels() == ENGLISH
    assert capsys.readouterr().out == ""


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # the stand-in font has no Chinese glyphs
def test_with_a_cjk_font_the_labels_are_chinese_and_drawn_with_it(monkeypatch, capsys):
    monkeypatch.setattr(plots, "cjk_font", lambda: "DejaVu Sans")  # stands in for Noto Sans CJK SC
    families = list(plt.rcParams["font.family"])
    i18n.set_language("zh-CN")
    figures = _draw()
    assert _labels(figures) == CHINESE
    assert CHINESE["training_curves"][:2] == ["损失", "epoch"] and CHINESE["layer_sizes"][-1] == "缓冲区"
    assert [ax.title.get_fontfamily() for ax in figures["training_curves"].axes] == [["DejaVu Sans", *families]] * 2, \
        "the Chinese labels must be drawn with the CJK font"
    assert figures["layer_sizes"].axes[0].get_legend().get_texts()[0].get_fontfamily()[0] == "DejaVu Sans"
    assert plt.rcParams["font.family"] == families, "the learner's rcParams must stay as they were"
    assert capsys.readouterr().out == "", "a font was found: nothing to install"
    i18n.set_language("en")
    figures = _draw()
    assert _labels(figures) == ENGLISH
    assert [ax.title.get_fontfamily() for ax in figures["training_curves"].axes] == [families] * 2


def test_without_a_cjk_font_the_labels_are_english_and_one_line_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    i18n.set_language("zh-CN")
    assert _labels() == ENGLISH, "no CJK font: Chinese labels would be drawn as boxes"
    assert plots.weight_picture(torch.ones(4)).axes[0].get_xlabel() == "index"
    assert i18n.language() == "zh-CN", "the checks still answer in Chinese"
    assert capsys.readouterr().out == plots.NO_CJK_FONT + "\n", "one line, once per session"
    for what in ("sudo apt-get install fonts-noto-cjk", "conda install -c conda-forge font-ttf-noto-cjk", "macOS",
                 "Windows", "重启内核"):
        assert what in plots.NO_CJK_FONT
    assert i18n.CHINESE.search(plots.NO_CJK_FONT)
    i18n.set_language("en")
    assert _labels() == ENGLISH


def test_the_cjk_font_is_found_among_matplotlibs_fonts_and_among_fonts_installed_after_its_cache(monkeypatch):
    manager = font_manager.fontManager
    find = plots.cjk_font.__wrapped__  # without the once-per-session cache
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *args, **kwargs: [])
    monkeypatch.setattr(manager, "ttflist", [font_manager.FontEntry(fname="dejavu.ttf", name="DejaVu Sans")])
    assert find() is None
    monkeypatch.setattr(manager, "ttflist", [font_manager.FontEntry(fname="wqy.ttc", name="WenQuanYi Zen Hei"),
                                             font_manager.FontEntry(fname="noto.ttc", name="Noto Sans CJK SC")])
    assert find() == "Noto Sans CJK SC", "the first of CJK_FONTS that matplotlib has"
    # installed after matplotlib cached its font list: found on disk, and added
    monkeypatch.setattr(manager, "ttflist", [font_manager.FontEntry(fname="dejavu.ttf", name="DejaVu Sans")])
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *args, **kwargs: ["dejavu.ttf", "new/wqy.ttc"])
    added = []
    monkeypatch.setattr(manager, "addfont", lambda path: added.append(path) or manager.ttflist.append(
        font_manager.FontEntry(fname=path, name="WenQuanYi Zen Hei")))
    assert find() == "WenQuanYi Zen Hei"
    assert added == ["new/wqy.ttc"], "only the fonts matplotlib does not know yet are read"


def test_the_plots_labels_are_marked_for_the_catalogue():
    marked = {segment.msgid for segment in i18n.extract() if segment.where.startswith("labutils/plots.py")}
    assert marked == set(ZH)
