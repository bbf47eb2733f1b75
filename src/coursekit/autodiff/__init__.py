"""A small automatic-differentiation engine that shows its work: both modes, step by step.

The public API (one concept per module)::

    from coursekit.autodiff import Value, jvp, log, sqrt
    from coursekit.autodiff import forward_table, tangent_table, backward_table

    def f(x, y):                       # any code made of the operations below
        return sqrt(y * log(x)) + y * log(x)

    # reverse mode (value.py): trace a graph while computing, then backpropagate
    x, y = Value(3.0, "x"), Value(2.0, "y")
    out = f(x, y)
    out.backward()                     # adds into x.grad, y.grad; out.zero_grad() clears
    # forward mode (dual.py): dual numbers, one pass per seed direction, no graph
    value, slope = jvp(f, (3.0, 2.0), (1.0, 0.0))        # slope = ∂f/∂x
    # the passes written out step by step (tables.py); the graph is drawn by coursekit.viz
    forward_table(out); tangent_table(out, wrt=[x, y]); backward_table(out)

Operations: ``+ - * / **`` (numbers on either side), unary ``-``, and ``exp log sqrt sin
cos tanh sigmoid relu`` as methods or as the functions of :mod:`.functions`, which also
accept a ``Dual``, a ``torch.Tensor`` or a plain number. Their local derivatives live in
:mod:`.ops`, shared by both modes; undefined points raise :class:`DomainError`.
:mod:`.chain` counts the multiply-adds of a Jacobian chain product in either order, and
:func:`counting` the work the engine does in either mode. :mod:`.autograd` looks inside
PyTorch's autograd: the tensors it saves for backward, the Jacobians of a chain of layers.
"""

from coursekit.autodiff.dual import Dual, forward_gradient, jvp
from coursekit.autodiff.functions import cos, exp, log, relu, sigmoid, sin, sqrt, tanh
from coursekit.autodiff.ops import Counts, DomainError, counting
from coursekit.autodiff.tables import StepTable, backward_table, forward_table, tangent_table
from coursekit.autodiff.value import Value, backprop, gradient

__all__ = [
    "Counts",
    "DomainError",
    "Dual",
    "StepTable",
    "Value",
    "backprop",
    "backward_table",
    "cos",
    "counting",
    "exp",
    "forward_gradient",
    "forward_table",
    "gradient",
    "jvp",
    "log",
    "relu",
    "sigmoid",
    "sin",
    "sqrt",
    "tangent_table",
    "tanh",
]
