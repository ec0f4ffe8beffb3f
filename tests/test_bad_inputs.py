"""Bad inputs get a typed error that names the function and the bad argument (issue 13, item 12); the losses and
optimizers give what PyTorch gives at NaN, infinite and huge inputs (items 7, 8 and 9)."""
import math, random
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from micrograd.engine import Value
from micrograd.nn import MLP, Layer, Neuron
from micrograd.losses import mse_loss, hinge_loss, logsumexp, bce_with_logits_loss, cross_entropy_loss
from micrograd.optim import SGD, Adam
from micrograd.data import make_moons
from micrograd.viz import draw_dot
from micrograd.io import save_model, read_model

inf, nan = math.inf, math.nan


def assert_names(error, function, *argument):
    "The message names `function` and at least one of the ways to name the argument"
    message = str(error)
    assert function in message, f"{type(error).__name__} does not name {function}: {message}"
    assert any(a in message for a in argument), f"{type(error).__name__} does not name the argument ({' or '.join(argument)}): {message}"


# ---------------------------------------------------------------- issue 13, item 12: errors that say what was wrong

def test_mse_loss_with_lists_as_predictions():
    with pytest.raises(TypeError) as e: mse_loss([[Value(1.0), Value(2.0)]], [1.0])
    assert_names(e.value, 'mse_loss', 'preds', 'prediction')


def test_mse_loss_with_strings_as_predictions():
    with pytest.raises(TypeError) as e: mse_loss(['a'], [1.0])
    assert_names(e.value, 'mse_loss', 'preds', 'prediction')


def test_mse_loss_with_strings_as_targets():
    with pytest.raises(TypeError) as e: mse_loss([Value(1.0)], ['a'])
    assert_names(e.value, 'mse_loss', 'targets')


def test_sgd_given_a_model_accepts_it_or_says_parameters():
    random.seed(0)
    model = MLP(2, [3, 1])
    try: opt = SGD(model, lr=0.1)
    except TypeError as e: return assert_names(e, 'SGD', 'parameters()')
    assert opt.params == model.parameters()


@pytest.mark.parametrize('optimizer', [SGD, Adam])
@pytest.mark.parametrize('params', [[1.0, 2.0], 'abc', 5], ids=['floats', 'str', 'int'])
def test_optimizers_refuse_what_is_not_parameters(optimizer, params):
    with pytest.raises(TypeError) as e: optimizer(params, lr=0.1)
    assert_names(e.value, optimizer.__name__, 'param')


def test_logsumexp_of_a_string():
    with pytest.raises(TypeError) as e: logsumexp(['a'])
    assert_names(e.value, 'logsumexp', 'xs', "'a'")


def test_hinge_loss_with_numpy_labels_works_like_a_list():
    scores = [Value(0.5), Value(-0.2), Value(2.0)]
    assert hinge_loss(scores, np.array([1, -1, 1])).data == hinge_loss(scores, [1, -1, 1]).data


@pytest.mark.parametrize('labels', [np.array([[1, -1], [1, -1]]), np.array([[1], [-1]])], ids=['2x2', '2x1'])
def test_hinge_loss_with_a_2d_numpy_array_of_labels(labels):
    with pytest.raises((TypeError, ValueError)) as e: hinge_loss([Value(0.5), Value(-0.2)], labels)
    assert_names(e.value, 'hinge_loss', 'labels')


@pytest.mark.parametrize('model', [lambda: MLP(2, [3, 1]), lambda: Layer(2, 3), lambda: Neuron(2)], ids=['MLP', 'Layer', 'Neuron'])
@pytest.mark.parametrize('x', [{0: 5.0, 1: 7.0}, {5.0, 7.0}, 'ab'], ids=['dict', 'set', 'str'])
def test_a_model_refuses_inputs_that_are_not_a_list_of_numbers(model, x):
    random.seed(0)
    m = model()
    with pytest.raises(TypeError) as e: m(x)
    assert_names(e.value, type(m).__name__, type(x).__name__)


def test_make_moons_with_huge_noise():
    try: X, y = make_moons(10, noise=1e308, seed=0)
    except ValueError as e: return assert_names(e, 'make_moons', 'noise')
    assert all(math.isfinite(c) for p in X for c in p), "make_moons(noise=1e308) returned inf coordinates"


def test_a_label_with_nul_gives_valid_dot_or_a_clear_error():
    v = Value(1.0, label='a\x00b') * 2
    try: graph = draw_dot(v)
    except ValueError as e: return assert_names(e, 'draw_dot', 'label')
    assert '\x00' not in graph.source
    assert graph.pipe(format='svg').startswith(b'<?xml')


def test_draw_dot_accepts_numpy_integers_for_max_nodes():
    v = (Value(1.0) * 2 + 3).tanh()
    assert draw_dot(v, max_nodes=np.int64(3)).source == draw_dot(v, max_nodes=3).source


@pytest.mark.parametrize('change, key', [({'dropout': 0.5}, 'dropout'), ({'act': None}, 'act'), ({'nouts': None}, 'nouts')],
                         ids=['extra key', 'missing act', 'missing nouts'])
def test_read_model_names_the_wrong_key(change, key, tmp_path):
    import json
    random.seed(0)
    path = save_model(MLP(2, [3, 1]), tmp_path / 'm.json')
    state = json.loads(path.read_text())
    for k, v in change.items():
        if v is None: del state['architecture'][k]
        else: state['architecture'][k] = v
    path.write_text(json.dumps(state))
    with pytest.raises(ValueError) as e: read_model(path)
    assert_names(e.value, 'read_model', key)
    assert 'm.json' in str(e.value)


# ---------------------------------------------------------------- the checks at the edge (micrograd.checks), one per argument

CHECKED = [  # (call, error type, function, the ways to name the argument)
    (lambda: cross_entropy_loss([[Value(1.0), Value(2.0)]], [2]), ValueError, 'cross_entropy_loss', 'class_indices[0]'),
    (lambda: cross_entropy_loss([[Value(1.0), Value(2.0)]], [-1]), ValueError, 'cross_entropy_loss', 'class_indices[0]'),
    (lambda: cross_entropy_loss([[Value(1.0), Value(2.0)]], [True]), TypeError, 'cross_entropy_loss', 'class_indices[0]'),
    (lambda: mse_loss({0: 1.0}, [1.0]), TypeError, 'mse_loss', 'preds'),
    (lambda: hinge_loss([Value(1.0)], {1}), TypeError, 'hinge_loss', 'labels'),
    (lambda: bce_with_logits_loss('ab', [1, 0]), TypeError, 'bce_with_logits_loss', 'logits'),
    (lambda: SGD({Value(1.0)}, lr=0.1), TypeError, 'SGD', 'params'),
    (lambda: Adam({Value(1.0): 1}), TypeError, 'Adam', 'params'),
    (lambda: Adam([Value(1.0)], betas={0.999, 0.9}), TypeError, 'Adam', 'betas'),
    (lambda: Adam([Value(1.0)], betas={0.9: 0, 0.999: 1}), TypeError, 'Adam', 'betas'),
    (lambda: Adam([Value(1.0)], betas=(0.9, 0.99, 0.999)), TypeError, 'Adam', 'betas'),
    (lambda: Adam([Value(1.0)], betas=iter([0.9])), TypeError, 'Adam', 'betas'),
    (lambda: make_moons(1), ValueError, 'make_moons', 'n_samples'),
    (lambda: make_moons(10, seed=-1), ValueError, 'make_moons', 'seed'),
    (lambda: draw_dot(Value(1.0), rankdir='up'), ValueError, 'draw_dot', 'rankdir'),
    (lambda: draw_dot(Value(1.0), rankdir=None), TypeError, 'draw_dot', 'rankdir'),
    (lambda: draw_dot(Value(1.0), format='gif2'), ValueError, 'draw_dot', 'format'),
    (lambda: draw_dot(Value(1.0), format=['svg']), TypeError, 'draw_dot', 'format'),
    (lambda: draw_dot(Value(1.0), max_nodes=0), ValueError, 'draw_dot', 'max_nodes'),
    (lambda: draw_dot(Value(1.0), color_grad='yes'), TypeError, 'draw_dot', 'color_grad'),
    (lambda: draw_dot([Value(1.0)]), TypeError, 'draw_dot', 'root'),
]


@pytest.mark.parametrize('i', range(len(CHECKED)))
def test_each_checked_argument_names_the_function_and_the_argument(i):
    call, error, function, argument = CHECKED[i]
    with pytest.raises(error) as e: call()
    assert_names(e.value, function, argument)
    assert 'got ' in str(e.value), f"the message does not say what it got: {e.value}"


@pytest.mark.parametrize('n_class, error', [(0, ValueError), (11, ValueError), (True, TypeError), (2.0, TypeError)])
def test_load_digits_names_n_class(n_class, error):
    from micrograd.data import load_digits
    with pytest.raises(error) as e: load_digits(n_class)
    assert_names(e.value, 'load_digits', 'n_class')
    assert 'from 1 to 10' in str(e.value)


# ---------------------------------------------------------------- item 9: Adam with eps = 0

def test_adam_with_eps_zero_refuses_or_behaves_as_torch():
    p = Value(1.0)
    try: opt = Adam([p], lr=0.1, eps=0.0)
    except ValueError as e: return assert_names(e, 'Adam', 'eps')
    opt.step()  # grad 0: torch gives 0 / (0 + 0) = nan
    tp = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    tp.grad = torch.zeros(1, dtype=torch.float64)
    topt = torch.optim.Adam([tp], lr=0.1, eps=0.0); topt.step()
    t = tp.item()
    assert p.data == t or (math.isnan(p.data) and math.isnan(t)), f"micrograd {p.data}, torch {t}"


@pytest.mark.parametrize('eps', [-1e-8, nan, -inf])
def test_adam_refuses_a_negative_or_nan_eps(eps):
    with pytest.raises(ValueError) as e: Adam([Value(1.0)], eps=eps)
    assert_names(e.value, 'Adam', 'eps')


# ---------------------------------------------------------------- items 7 and 8: losses at NaN, inf and huge logits

def test_the_issue_reproducers():
    assert math.isnan(logsumexp([Value(0.0), Value(nan)]).data)
    assert math.isnan(bce_with_logits_loss([Value(nan)], [1]).data)
    assert logsumexp([Value(-inf)] * 2).data == -inf
    for big in (1e15, 1e308):
        assert abs(cross_entropy_loss([[Value(big), Value(big)]], [0]).data - math.log(2)) < 1e-12


LOGITS = [0.0, -0.0, 5e-324, 1e-310, 1.0, -2.5, 30.0, -30.0, 1e15, -1e15, 1e300, 1e308, -1e308, inf, -inf, nan]


def same(a, b):
    if a == b or (math.isnan(a) and math.isnan(b)): return True
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-9 * max(1.0, abs(b))


def torch_loss(torch_fn, xs):
    return torch_fn(torch.tensor(xs, dtype=torch.float64)).item()


def compare(ours_fn, torch_fn, grad_fn, xs):
    """None if micrograd's loss matches torch's (and, at finite logits with a finite loss, its gradients match the
    stable formula: softmax, or sigmoid minus the target), else what differs. Where torch's own formula gives nan
    at an infinite logit (inf - inf inside it) the limit is accepted too: torch's loss with inf as 1e300."""
    vs = [Value(x) for x in xs]
    try:
        out = ours_fn(vs)
        out.backward()
    except Exception as e: return f"{type(e).__name__}: {e}"
    theirs = torch_loss(torch_fn, xs)
    if math.isnan(theirs) and not any(math.isnan(x) for x in xs) and not math.isnan(out.data):
        limit = torch_loss(torch_fn, [math.copysign(1e300, x) if math.isinf(x) else x for x in xs])
        theirs = math.copysign(inf, limit) if abs(limit) > 1e290 else limit
    if not same(out.data, theirs): return f"loss {out.data!r}, torch {theirs!r}"
    if math.isfinite(theirs) and all(math.isfinite(x) for x in xs):
        grads = grad_fn(torch.tensor(xs, dtype=torch.float64)).tolist()
        for i, v in enumerate(vs):
            if not same(v.grad, grads[i]): return f"grad {i} {v.grad!r}, expected {grads[i]!r} (loss {out.data!r})"
    return None


def onehot(c): return torch.tensor([1.0 if i == c else 0.0 for i in range(2)], dtype=torch.float64)


LOSSES = {
    'logsumexp': (lambda vs: logsumexp(vs), lambda t: torch.logsumexp(t, 0), lambda t: torch.softmax(t, 0), 2),
    **{f'bce_with_logits_loss, target {y}': (
        lambda vs, y=y: bce_with_logits_loss(vs, [y]),
        lambda t, y=y: F.binary_cross_entropy_with_logits(t, torch.full((1,), float(y), dtype=torch.float64)),
        lambda t, y=y: torch.sigmoid(t) - y, 1) for y in (1, 0, 0.25)},
    **{f'cross_entropy_loss, class {c}': (
        lambda vs, c=c: cross_entropy_loss([vs], [c]),
        lambda t, c=c: F.cross_entropy(t[None], torch.tensor([c])),
        lambda t, c=c: torch.softmax(t, 0) - onehot(c), 2) for c in (0, 1)},
}


@pytest.mark.parametrize('loss', LOSSES)
def test_losses_at_extreme_logits_match_torch(loss, fuzz_counts):
    ours, theirs, grads, arity = LOSSES[loss]
    cases = [[a] for a in LOGITS] if arity == 1 else [[a, b] for a in LOGITS for b in LOGITS]
    problems = [f"{loss} at {xs}: {p}" for xs in cases for p in [compare(ours, theirs, grads, xs)] if p]
    counts = fuzz_counts['losses at extreme logits vs torch']
    counts['cases'] += len(cases)
    counts['disagreements'] += len(problems)
    assert not problems, f"{len(problems)} of {len(cases)} cases disagree:\n" + "\n".join(problems[:12])
