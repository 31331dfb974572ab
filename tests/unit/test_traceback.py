"""A notebook's traceback as a student reads it: their cells in full, library frames folded."""

import sys
from pathlib import Path

from grader.views.traceback import student_traceback

PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"  # lib/PYTHON/

SITE = f"{sys.prefix}/lib/{PYTHON}/site-packages"
CHECKOUT = Path(__file__).resolve().parents[2]
# What IPython 8 writes (one list item a frame, joined with newlines), with its colours.
IPYTHON = "\n".join(
    [
        "\x1b[31m---------------------------------------------------------------------------\x1b[39m",
        "\x1b[31mRuntimeError\x1b[39m                              Traceback (most recent call last)",
        "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[5]\x1b[39m\x1b[32m, line 3\x1b[39m\n"
        "\x1b[32m      2\x1b[39m net = Net()\n\x1b[32m----> 3\x1b[39m train(net)\n",
        "Cell In[4], line 6, in train(model, epochs)\n      5 for x in data:\n"
        "----> 6     loss = model(x).sum()\n",
        f"File {SITE}/torch/nn/modules/module.py:1783, in Module._wrapped_call_impl(self)\n"
        "   1781 pass\n-> 1783 return self._call_impl()\n",
        f"File {SITE}/torch/nn/modules/module.py:1794, in Module._call_impl(self)\n"
        "-> 1794 return forward_call()\n",
        "Cell In[3], line 9, in Net.forward(self, x)\n----> 9     return self.fc(x)\n",
        f"File {SITE}/torchvision/ops/misc.py:12, in f(x)\n-> 12 return g(x)\n",
        f"File {sys.base_prefix}/lib/{PYTHON}/functools.py:1, in g(x)\n-> 1 raise\n",
        f"File {CHECKOUT}/grader/child/inkernel.py:5, in h()\n",
        "\x1b[31mRuntimeError\x1b[39m: mat1 and mat2 shapes cannot be multiplied",
    ]
)


def test_the_students_cells_are_shown_in_full_in_the_order_they_ran():
    text = student_traceback(IPYTHON)
    cells = [line for line in text.splitlines() if line.startswith("Cell In[")]
    assert cells == [
        "Cell In[5], line 3",
        "Cell In[4], line 6, in train(model, epochs)",
        "Cell In[3], line 9, in Net.forward(self, x)",
    ]
    assert "----> 6     loss = model(x).sum()" in text and "      2 net = Net()" in text


def test_library_frames_are_folded_into_one_line_with_a_count():
    text = student_traceback(IPYTHON)
    assert "… 2 frames in torch\n" in text
    assert "… 3 frames in torchvision, the Python standard library, the grader" in text
    assert "module.py" not in text and "_call_impl" not in text
    assert text.endswith("RuntimeError: mat1 and mat2 shapes cannot be multiplied")
    assert text.startswith("RuntimeError                              Traceback")


def test_no_path_of_the_grading_machine_and_no_colour_codes_remain():
    text = student_traceback(IPYTHON)
    assert str(CHECKOUT) not in text and sys.prefix not in text and "\x1b" not in text


def test_a_plain_python_traceback_keeps_the_notebooks_own_files():
    text = student_traceback(
        "Traceback (most recent call last):\n"
        f'  File "{SITE}/papermill/execute.py", line 3, in run\n    cell()\n'
        '  File "./helper.py", line 2, in load\n    open("missing.csv")\n'
        "FileNotFoundError: missing.csv"
    )
    assert '  File "./helper.py", line 2, in load\n    open("missing.csv")' in text
    assert "… 1 frame in papermill" in text


def test_an_empty_traceback_stays_empty():
    assert student_traceback("") == ""
