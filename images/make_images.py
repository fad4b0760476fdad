"""Draw the figures that the notebooks' markdown shows; `make images` runs this and overwrites them.

Each figure is drawn in English (NAME.png) and, with a CJK font, in Chinese (NAME.zh-CN.png) for the Chinese
edition. Without a CJK font it writes the English figures, leaves the Chinese ones as they are, and says what to
install.

Usage: python images/make_images.py [OUTPUT_FOLDER]   (default: the folder of this script)
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from labutils import Net  # noqa: E402
from labutils.plots import cjk_font  # noqa: E402

PNG_OPTIONS = {"dpi": 110, "metadata": {"Software": None}}  # no version stamp: the same figure gives the same file
LANGUAGES = {"en": "", "zh-CN": ".zh-CN"}  # language: what its figures' names add before .png
NO_CJK_FONT = ("No CJK font, so the Chinese figures (images/*.zh-CN.png) were not drawn and are left as they are. "
               "Install one (Debian/Ubuntu: sudo apt-get install fonts-noto-cjk; conda: conda install -c conda-forge "
               "font-ttf-noto-cjk; macOS and Windows have one) and run `make images` again.")

# The figures' text in Chinese, in the words of the Chinese catalogues (translations/zh-CN/): 断点续训, 填充, 调度器,
# 随机数生成器状态, 分片, 审查. Code stays as it is.
ZH = {
    "the model (code + tensors)": "模型（代码 + 张量）",
    "model.state_dict(): name → tensor": "model.state_dict()：名称 → 张量",
    "tensor": "张量",
    "Saved: the names and the tensors. Not saved: the class, forward(), padding, the optimizer.":
        "保存的：名称和张量。不保存的：类、forward()、填充、优化器。",
    "trained\nNet": "训练好的\nNet",
    "net_mnist.pt\n(a zip: pickle +\none entry per tensor)":
        "net_mnist.pt\n（zip 归档：pickle +\n每个张量各一项）",
    "new Net()\nsame weights\nthen .eval()": "新的 Net()\n同样的权重\n再调用 .eval()",
    "The class is not in the file: the code that builds Net must exist where you load.":
        "文件里没有类：在加载的地方，必须有构建 Net 的代码。",
    "What will you\ndo with\nthe file?": "你要拿\n这个文件\n做什么？",
    "resume training": "断点续训",
    "a torch.save dict": "torch.save 的字典",
    "model, optimizer, scheduler, epoch, RNG\ntorch.load(weights_only=True)":
        "模型、优化器、调度器、epoch、随机数生成器状态\ntorch.load(weights_only=True)",
    "inference in Python,\nwith the model's class": "在 Python 中推理，\n有模型的类",
    "inference without the\nclass, or from C++": "没有模型的类时推理，\n或在 C++ 中推理",
    "torch.export.save / load\nC++: an AOTInductor package": "torch.export.save / load\nC++：用 AOTInductor 打包",
    "another runtime\nor language": "其他运行时\n或语言",
    "share it with anyone": "与任何人共享",
    "safetensors.torch.save_file\n+ SHA256SUMS beside it": "safetensors.torch.save_file\n旁边附上 SHA256SUMS",
    "too big for memory,\nor many processes": "内存装不下，\n或有多个进程",
    "shards + index, DCP": "分片 + 索引，DCP",
    "load a file someone\nelse made": "加载不是你\n制作的文件",
    "audit it first": "先审查它",
    "get_unsafe_globals_in_checkpoint(path)\nnever weights_only=False":
        "get_unsafe_globals_in_checkpoint(path)\n永远不要用 weights_only=False",
}


class Words:
    """What a figure in one language says, and the fonts it says it with."""

    def __init__(self, language: str = "en", cjk: str | None = None):
        self.language = language
        chinese = language == "zh-CN"
        self.sans = [cjk, "DejaVu Sans"] if chinese else "DejaVu Sans"
        self.mono = ["DejaVu Sans Mono", cjk] if chinese else "DejaVu Sans Mono"
        self.heading = {"family": self.sans} if chinese else {}  # English: matplotlib's default, DejaVu Sans
        self.note = {"family": self.sans} if chinese else {"style": "italic"}  # Chinese has no italics
        self.linespacing = 1.4 if chinese else None  # None: matplotlib's 1.2, too tight for Chinese

    def __call__(self, text: str) -> str:
        """Return `text` in this language (a text with no Chinese is code, the same in both)."""
        return ZH.get(text, text) if self.language == "zh-CN" else text


def box(ax, x, y, w, h, text, colour, size=10, weight=None, words=Words()):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=colour, ec="#333333", lw=1.2))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight, family=words.sans,
            linespacing=words.linespacing)


def arrow(ax, start, end, text=None, offset=0.18, words=Words()):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=16, lw=1.4, color="#333333"))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + offset, text, ha="center", va="bottom",
                fontsize=9, family=words.mono)


def state_dict_figure(words: Words = Words()) -> plt.Figure:
    """A Net's modules on the left, its state_dict (name -> tensor) on the right."""
    state = Net().state_dict()
    fig, ax = plt.subplots(figsize=(9.5, 5.2))
    ax.set(xlim=(0, 10), ylim=(0, 11.2))
    ax.axis("off")
    ax.text(1.6, 10.6, words("the model (code + tensors)"), ha="center", fontsize=11, weight="bold", **words.heading)
    ax.text(7.1, 10.6, words("model.state_dict(): name → tensor"), ha="center", fontsize=11, weight="bold",
            **words.heading)
    layers = ["conv1", "conv2", "fc1", "fc2", "fc3"]
    for i, name in enumerate(layers):
        y = 8.6 - i * 2.0
        module = getattr(Net(), name)
        box(ax, 0.2, y, 2.8, 1.3, f"{name}\n{type(module).__name__}", "#cfe2f3", size=10, words=words)
        for j, suffix in enumerate(("weight", "bias")):
            key = f"{name}.{suffix}"
            shape = "×".join(map(str, state[key].shape))
            yy = y + 0.7 - j * 0.75
            box(ax, 4.3, yy, 5.4, 0.6, f"'{key}'  →  {words('tensor')} {shape}", "#fff2cc", size=9, words=words)
            arrow(ax, (3.05, y + 0.65), (4.25, yy + 0.3))
    ax.text(5, 0.1, words("Saved: the names and the tensors. Not saved: the class, forward(), padding, the optimizer."),
            ha="center", fontsize=9.5, **words.note)
    return fig


def save_load_flow_figure(words: Words = Words()) -> plt.Figure:
    """The first save and load: state_dict -> torch.save -> file -> torch.load -> load_state_dict -> eval()."""
    fig, ax = plt.subplots(figsize=(11, 2.6))
    ax.set(xlim=(0, 12), ylim=(0, 3.2))
    ax.axis("off")
    box(ax, 0.1, 1.0, 1.8, 1.1, words("trained\nNet"), "#cfe2f3", weight="bold", words=words)
    box(ax, 5.0, 1.0, 2.0, 1.1, words("net_mnist.pt\n(a zip: pickle +\none entry per tensor)"), "#fff2cc", size=8.5,
        words=words)
    box(ax, 10.1, 0.85, 1.8, 1.4, words("new Net()\nsame weights\nthen .eval()"), "#d9ead3", weight="bold",
        words=words)
    arrow(ax, (1.95, 1.55), (4.95, 1.55), "torch.save(\nmodel.state_dict(), path)", offset=0.12, words=words)
    arrow(ax, (7.05, 1.55), (10.05, 1.55), "model.load_state_dict(\ntorch.load(path,\n weights_only=True))",
          offset=0.12, words=words)
    ax.text(6.0, 0.35, words("The class is not in the file: the code that builds Net must exist where you load."),
            ha="center", fontsize=9.5, **words.note)
    return fig


FORMAT_CHOICES = [  # (what you will do, the format, the calls): the table of docs/CHEATSHEET.md, as a flow
    ("resume training", "a torch.save dict", "model, optimizer, scheduler, epoch, RNG\ntorch.load(weights_only=True)"),
    ("inference in Python,\nwith the model's class", "state_dict (.pt)",
     "torch.save(model.state_dict(), path)\nmodel.load_state_dict(torch.load(...))"),
    ("inference without the\nclass, or from C++", "torch.export (.pt2)",
     "torch.export.save / load\nC++: an AOTInductor package"),
    ("another runtime\nor language", "ONNX (.onnx)",
     "torch.onnx.export(..., dynamo=True)\nonnxruntime.InferenceSession"),
    ("share it with anyone", "safetensors", "safetensors.torch.save_file\n+ SHA256SUMS beside it"),
    ("too big for memory,\nor many processes", "shards + index, DCP",
     "save_torch_state_dict, dcp.save\nmeta device + mmap=True + assign=True"),
    ("load a file someone\nelse made", "audit it first",
     "get_unsafe_globals_in_checkpoint(path)\nnever weights_only=False"),
]


def format_choice_figure(words: Words = Words()) -> plt.Figure:
    """Which format when: what you will do with the file, then the format and the calls."""
    rows = len(FORMAT_CHOICES)
    fig, ax = plt.subplots(figsize=(11.5, 0.8 * rows + 0.4))
    ax.set(xlim=(0, 12.4), ylim=(0.25, 1.25 * rows + 0.25))
    ax.axis("off")
    top = 1.25 * rows - 0.35
    box(ax, 0.05, top / 2 - 0.55, 2.0, 1.1, words("What will you\ndo with\nthe file?"), "#cfe2f3", size=10,
        weight="bold", words=words)
    for i, (task, fmt, calls) in enumerate(FORMAT_CHOICES):
        y = top - 1.25 * i - 0.5
        box(ax, 3.0, y, 2.6, 0.95, words(task), "#fff2cc", size=9, words=words)
        box(ax, 6.3, y, 2.35, 0.95, words(fmt), "#d9ead3", size=9, weight="bold", words=words)
        ax.text(8.85, y + 0.475, words(calls), ha="left", va="center", fontsize=8, family=words.mono,
                linespacing=words.linespacing)
        arrow(ax, (2.1, top / 2), (2.95, y + 0.475), words=words)
        arrow(ax, (5.65, y + 0.475), (6.25, y + 0.475), words=words)
    return fig


FIGURES = {"state_dict.png": state_dict_figure, "save_load_flow.png": save_load_flow_figure,
           "format_choice.png": format_choice_figure}


def font_version(family: str) -> str:
    """Return the family and the version of the font file matplotlib draws `family` with."""
    font = font_manager.get_font(font_manager.findfont(family, fallback_to_default=False))
    version = next((value.decode("utf-16-be" if value.startswith(b"\0") else "latin-1")
                    for (_, _, _, name_id), value in font.get_sfnt().items() if name_id == 5), "")
    return f"{family}, {version.partition(';')[0]}".rstrip(", ")


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cjk = cjk_font()
    for language, suffix in LANGUAGES.items():
        options = PNG_OPTIONS
        if language == "zh-CN":
            if cjk is None:
                print(NO_CJK_FONT, file=sys.stderr)
                continue
            # which font drew it: a figure drawn with another font (or version) differs in its pixels
            options = {**PNG_OPTIONS, "metadata": {**PNG_OPTIONS["metadata"], "Font": font_version(cjk)}}
        for name, draw in FIGURES.items():
            fig = draw(Words(language, cjk))
            written = name.replace(".png", f"{suffix}.png")
            fig.savefig(folder / written, **options)
            plt.close(fig)
            print(f"wrote images/{written}" if folder == Path(__file__).parent else f"wrote {written}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
