"""The labs: in sync with solutions/, solved by their solutions, failed by blanks and wrong answers.

The sandboxed checks run through the real grader (the same code path as ``coursekit grade``),
so a test that could not fail, or a solution that does not pass, breaks CI here.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from coursekit.grading import sandbox
from coursekit.grading.authoring import Answers, load_lab
from coursekit.grading.generate import out_of_sync, solution_notebooks
from coursekit.grading.judge import Pool, grade_question, secret_paths
from coursekit.grading.validate import run_checks

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, LABS = ROOT / "solutions", ROOT / "labs"
LIMITS = sandbox.Limits(timeout=20)
LAB_NAMES = [p.stem for p in solution_notebooks(SOLUTIONS)]


def test_every_lab_is_in_sync_with_its_solution():
    assert {"lab01_autodiff", "lab04_convolution"} <= set(LAB_NAMES)
    assert out_of_sync(SOLUTIONS, LABS) == [], "run: coursekit labs generate"


def test_labs_hold_no_solutions_or_hidden_tests():
    for name in LAB_NAMES:
        text = (LABS / f"{name}.ipynb").read_text()
        lab = load_lab(SOLUTIONS / f"{name}.ipynb")
        assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
        for question in lab.questions.values():
            for hidden in question.hidden_tests:
                for line in hidden.splitlines():
                    if line.startswith("def test_"):
                        assert line not in text


@pytest.fixture(scope="module", params=LAB_NAMES)
def lab_and_pool(request):
    lab = load_lab(SOLUTIONS / f"{request.param}.ipynb")
    with Pool(lab.preload_modules(), secret_paths(lab)) as pool:
        yield lab, pool


def test_solution_passes_every_test_and_blank_lab_passes_none(lab_and_pool):
    lab, pool = lab_and_pool
    assert run_checks(pool, lab, LIMITS) == []


def _with(lab, **answers: str) -> Answers:
    sources = {qid: q.answer for qid, q in lab.questions.items()}
    sources.update(answers)
    return Answers(sources, [])


def _body(lab, qid: str, old: str, new: str) -> str:
    source = lab.questions[qid].answer
    assert old in source, f"mutation target {old!r} not in the solution of {qid}"
    return source.replace(old, new)


# Lab 1, q3: the solution's backward pass, and two plausible wrong ones that give the right
# numbers whenever only leaves are shared or the graph is shallow.
TOPOLOGICAL_BACKWARD = """\
        order, seen, stack = [], set(), [(self, False)]
        while stack:  # depth-first, parents before children, without recursion
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((parent, False) for parent in node.parents)
        g = {id(node): 0.0 for node in order}
        g[id(self)] = 1.0
        for node in reversed(order):
            for parent, local in zip(node.parents, node.local_grads, strict=True):
                g[id(parent)] += g[id(node)] * local
        for node in order:
            node.grad += g[id(node)]
"""
BREADTH_FIRST_BACKWARD = """\
        g, queue, seen = {id(self): 1.0}, [self], {id(self)}
        for node in queue:  # each node passes its gradient on once, possibly incomplete
            for parent, local in zip(node.parents, node.local_grads, strict=True):
                g[id(parent)] = g.get(id(parent), 0.0) + g[id(node)] * local
                if id(parent) not in seen:
                    seen.add(id(parent))
                    queue.append(parent)
        for node in queue:
            node.grad += g[id(node)]
"""
EVERY_PATH_BACKWARD = """\
        def visit(node, g):  # right numbers, but one call per path: exponential time
            node.grad += g
            for parent, local in zip(node.parents, node.local_grads, strict=True):
                visit(parent, g * local)

        visit(self, 1.0)
"""


# Plausible wrong answers; each must lose points on its question.
WRONG: dict[str, list[tuple[str, str, str]]] = {
    "lab04_convolution": [
        ("q1", "span = size + 2 * padding - kernel_size", "span = size + padding - kernel_size"),
        ("q1", "return span // stride + 1", "return span / stride + 1"),
        ("q1", "return span // stride + 1", "return -(-span // stride) + 1"),
        ("q1", "padding=0, stride=1):", "stride=1, padding=0):"),  # nn.Conv2d's order
        ("q1", "if span < 0:", "if False:"),  # no error for a window that does not fit
        ("q1", "if span < 0:", "if span <= 0:"),  # refuses a window that fits exactly once
        ("q2", "+ (out_channels if bias else 0)", "+ out_channels"),
        ("q2", "+ (out_channels if bias else 0)", "+ in_channels"),
        ("q2", "    f1, f2 = kernel_size", "    f1 = f2 = kernel_size[0]"),
        ("q3", "weight[:, :, a, b]", "weight.flip(-1, -2)[:, :, a, b]"),
        ("q3", "padded[:, :, ph:ph + h, pw:pw + w] = x", "padded[:, :, :h, :w] = x"),
        ("q3", "    if bias is not None:\n        out += bias.view(1, c_out, 1, 1)\n", ""),
        ("q3", "out = x.new_zeros(n, c_out, h_out, w_out)",
         "out = x.new_zeros(n, c_out, h_out, w_out, dtype=torch.float64)"),
        ("q3", "    return out\n    # END SOLUTION",
         "    import torch.nn.functional as F\n"
         "    return F.conv2d(x, weight, bias, stride, padding)\n    # END SOLUTION"),
        ("q3", "    return out\n    # END SOLUTION",
         "    return torch.convolution(x, weight, bias, (sh, sw), (ph, pw), (1, 1), False, (0, 0),"
         " 1)\n    # END SOLUTION"),
        ("q3", "    return out\n    # END SOLUTION",
         "    return torch.ops.aten.convolution(x, weight, bias, [sh, sw], [ph, pw], [1, 1], False,"
         " [0, 0], 1)\n    # END SOLUTION"),
        ("q4", "torch.maximum(out, window)", "torch.maximum(torch.maximum(out, window), "
                                             "torch.zeros_like(window))"),
        ("q4", "stride = kernel_size if stride is None else stride", "stride = 1"),
        ("q4", "    out = None\n", "    import torch.nn.functional as F\n"
                                   "    return F.max_pool2d(x, kernel_size, stride)\n"),
        ("q4", "    out = None\n",
         "    import torch.nn.functional as F\n"
         "    return F.max_pool2d_with_indices(x, kernel_size, stride)[0]\n"),
        ("q5", "return out / kernel_size**2", "return out / kernel_size"),
        ("q5", "stride = kernel_size if stride is None else stride",
         "stride = kernel_size if stride is None else kernel_size"),
        ("q5", "return out / kernel_size**2",
         "import torch.nn.functional as F\n"
         "    return F.lp_pool2d(x, 1, kernel_size, stride) / kernel_size**2"),
        ("q6", "weight.reshape(weight.shape[0], channels, height, width)",
         "weight.reshape(weight.shape[0], height, width, channels).permute(0, 3, 1, 2)"),
        ("q6", "weight.reshape(weight.shape[0], channels, height, width)",
         "weight.reshape(weight.shape[0], channels, width, height)"),
        ("q7", "h_out = (height + 2 * padding - kernel_size) // stride + 1",
         "h_out = (height - kernel_size) // stride + 1"),  # padding forgotten
        ("q7", "w_out = (width + 2 * padding - kernel_size) // stride + 1",
         "w_out = (height + 2 * padding - kernel_size) // stride + 1"),  # a square input assumed
        ("q7", "return one_position, one_position * h_out * w_out",
         "return one_position, (one_position - out_channels) * h_out * w_out + out_channels"),
        ("q7", "return one_position, one_position * h_out * w_out",
         "return one_position, channels * height * width * out_channels * h_out * w_out"),
    ],
    "lab01_autodiff": [
        ("q1", "-x / (y * y)", "x / (y * y)"),
        ("q1", "(0.5 / root,)", "(1.0 / root,)"),
        ("q1", "return x * y, (y, x)", "return x * y, (x, y)"),
        ("q1", "return math.log(x), (1.0 / x,)",
         "h = 1e-6\n    return math.log(x), ((math.log(x + h) - math.log(x - h)) / (2 * h),)"),
        ("q1", "return root, (0.5 / root,)",
         "h = 6e-6 * x\n    return root, ((math.sqrt(x + h) - math.sqrt(x - h)) / (2 * h),)"),
        ("q1", "return x * y, (y, x)",
         "from coursekit.autodiff import ops\n    return ops.mul(x, y)"),
        ("q2", "self.tangent * other.primal + self.primal * other.tangent",
         "self.tangent * other.tangent"),
        ("q2", "return Dual(math.log(self.primal), self.tangent / self.primal)",
         "return Dual(math.log(self.primal), 1.0 / self.primal)"),
        ("q2", "return out.primal, out.tangent", "return out.primal, sum(direction)"),
        ("q2", "    out = f(*(Dual(p, d) for p, d in zip(point, direction, strict=True)))\n"
               "    return out.primal, out.tangent",
         "    h = 1e-6\n"
         "    ahead = f(*(Dual(p + h * d) for p, d in zip(point, direction))).primal\n"
         "    behind = f(*(Dual(p - h * d) for p, d in zip(point, direction))).primal\n"
         "    return f(*(Dual(p) for p in point)).primal, (ahead - behind) / (2 * h)"),
        ("q2", "return Dual(self.primal - other.primal, self.tangent - other.tangent)",
         "return Dual(self.primal - other.primal, self.tangent + other.tangent)"),
        ("q3", "g[id(parent)] += g[id(node)] * local", "g[id(parent)] = g[id(node)] * local"),
        ("q3", "node.grad += g[id(node)]", "node.grad = g[id(node)]"),
        ("q3", "for node in reversed(order):", "for node in order:"),
        ("q3", "(1.0 / other.data, -self.data / other.data**2)",
         "(1.0 / other.data, self.data / other.data**2)"),
        ("q3", TOPOLOGICAL_BACKWARD, BREADTH_FIRST_BACKWARD),
        ("q3", TOPOLOGICAL_BACKWARD, EVERY_PATH_BACKWARD),
        ("q4", "return out.data, tuple(x.grad for x in inputs)",
         "return out.data, tuple(x.grad for x in reversed(inputs))"),
        ("q4", "    out.backward()\n", ""),
        ("q5", "widths[k] * widths[k - 1] * widths[0]", "widths[k] * widths[k - 1] * widths[-1]"),
        ("q5", "range(1, len(widths) - 1)", "range(1, len(widths))"),
        ("q5", "            best[i, j] = min(", "            best[i, j] = max("),
        ("q5", "    n = len(widths) - 1\n",
         "    return min(forward_cost(widths), reverse_cost(widths))\n"),  # greedy: one of two
        ("q5", "widths[j] * widths[k] * widths[i]", "widths[j] * widths[k] * widths[k]"),
        ("q5", "    n = len(widths) - 1\n",  # every bracketing: exponential time
         "    def c(i, j):\n"
         "        if j - i <= 1:\n"
         "            return 0\n"
         "        return min(c(i, k) + c(k, j) + widths[j] * widths[k] * widths[i]\n"
         "                   for k in range(i + 1, j))\n"
         "    return c(0, len(widths) - 1)\n"),
        ("q5", "    return sum(widths[k] * widths[k - 1] * widths[0] "
               "for k in range(2, len(widths)))",
         "    from coursekit.autodiff import chain\n    return chain.forward_cost(widths)"),
    ],
}


def test_wrong_answers_lose_points(lab_and_pool):
    lab, pool = lab_and_pool
    assert lab.name in WRONG, "add plausible wrong answers for every new lab"
    assert {qid for qid, _, _ in WRONG[lab.name]} == set(lab.questions)
    survivors = []
    for qid, old, new in WRONG[lab.name]:
        result = grade_question(pool, lab, _with(lab, **{qid: _body(lab, qid, old, new)}), qid,
                                LIMITS)
        if result.score >= lab.questions[qid].points:
            survivors.append(f"{qid}: {old!r} -> {new!r}")
    assert survivors == [], "wrong answers that still get full marks"


@pytest.mark.parametrize("lab_and_pool", ["lab01_autodiff"], indirect=True)
def test_a_wrong_dependency_costs_the_dependent_question_too(lab_and_pool):
    lab, pool = lab_and_pool
    broken_var = _body(lab, "q3", "node.grad += g[id(node)]", "pass")
    result = grade_question(pool, lab, _with(lab, q3=broken_var), "q4", LIMITS)
    assert result.score == 0 and lab.run_order("q4") == ["q3", "q4"]


def test_self_check_runs_in_a_real_kernel(tmp_path):
    """The blank lab runs top to bottom in Jupyter and check() explains what is missing."""
    from nbclient import NotebookClient

    nb = nbformat.read(LABS / "lab04_convolution.ipynb", as_version=4)
    solution = load_lab(SOLUTIONS / "lab04_convolution.ipynb")
    for cell in nb.cells:  # answer q1 correctly and q2 wrongly, leave the rest blank
        if cell.source.startswith("# ANSWER q1"):
            cell.source = solution.questions["q1"].answer
        if cell.source.startswith("# ANSWER q2"):
            cell.source = _body(solution, "q2", "+ (out_channels if bias else 0)", "")
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    out = {cell.source.split("\n", 1)[0]: "".join(o.get("text", "") for o in cell.outputs)
           for cell in nb.cells if cell.cell_type == "code"}
    assert "q1: 4/4 public tests passed (all passed)" in out["# TESTS q1"]
    assert "✗ test_lenet_first_layer: the result has the wrong value" in out["# TESTS q2"]
    assert "expected 156" in out["# TESTS q2"] and "got 150" in out["# TESTS q2"]
    assert "hint: LeNet5's C1: six 5x5 filters" in out["# TESTS q2"]
    assert "your code raised NotImplementedError: q3" in out["# TESTS q3"]
