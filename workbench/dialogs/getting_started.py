"""Help > Getting started: the steps of a first compression, in the window itself (the README's steps for
people who started the program from a menu)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

#: The checkout's docs folder (benchmarks, recipes, reliability, scaling); an installed wheel has none.
DOCS = Path(__file__).resolve().parents[2] / "docs"

STEPS = """
<h3>Getting started</h3>
<ol>
<li><b>New run</b> (Ctrl+N): pick a preset. The <i>-sample</i> presets bring their own data (made from
scikit-image's photographs) and a trained teacher, and finish in about ten minutes on two CPU cores.
For your own task: the family, a dataset folder in the layout of pytorch-CycleGAN-and-pix2pix (checked
before you can start) and your teacher's checkpoint (or train one here).</li>
<li>Choose the budget: a target ratio (the teacher's MACs divided by the student's), a MACs budget, or a time
per image on this machine. <b>Start</b> runs the pipeline in a background process: teacher, once-for-all
supernet, search, fine-tuning, export.</li>
<li><b>Monitor</b> shows each stage's progress and losses; <b>Cancel</b> stops at the next checkpoint and
<b>Resume</b> continues from it.</li>
<li><b>Pareto</b> plots every scored sub-network as the search finds it (metric against MACs or predicted
latency); click a point to see it in <b>Compare</b>: input, teacher, student and their difference, with
latency measured on this machine.</li>
<li><b>Summary</b> gives teacher against student on the test split, the grid, and links to the ONNX file and
its model card; <b>Export</b> writes any candidate (or the final student) to ONNX and OpenVINO, checked against PyTorch.</li>
</ol>
<p>The same pipeline runs without a window: <code>python main.py compress --preset pix2pix-sample</code>;
<code>python main.py --help</code> lists every command.</p>
"""


class GettingStartedDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Getting started")
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
        docs = (f"<p>More in the documentation folder {DOCS} (benchmarks, recipes, reliability, scaling): "
                "Help &gt; Documentation folder opens it.</p>") if DOCS.is_dir() else ""
        self.text.setHtml(STEPS + docs)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(640, 520)
