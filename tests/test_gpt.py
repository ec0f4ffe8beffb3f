"""The GPT chapter's checks that a reader does not need on the page: bad arguments get a typed error naming the
function and the argument, seeds fix the weights and samples without touching the global random state, shapes."""
import math, random
import numpy as np
import pytest
from micrograd.engine import Value
from micrograd.engine import is_grad_enabled
from micrograd.gpt import (ValueGPT, GPT, Embedding, CausalSelfAttention, MLP, Block, make_batch, sample_names,
                           linear, rmsnorm, softmax)
from micrograd.data import load_names, split_names, CharTokenizer

SMALL = dict(vocab_size=27, block_size=16, n_embd=16, n_head=4, n_layer=1)


def assert_names(error, function, argument):
    "The message names `function` and `argument`"
    assert function in str(error) and argument in str(error), str(error)


# ---------------------------------------------------------------- sizes and seeds

@pytest.mark.parametrize('cls', [ValueGPT, GPT])
@pytest.mark.parametrize('name,bad,error', [('vocab_size', 0, ValueError), ('block_size', -3, ValueError),
                                            ('n_embd', 16.0, TypeError), ('n_head', True, TypeError),
                                            ('n_layer', '1', TypeError), ('n_layer', None, TypeError)])
def test_sizes_must_be_positive_integers(cls, name, bad, error):
    with pytest.raises(error) as e: cls(**dict(SMALL, **{name: bad}), seed=0)
    assert_names(e.value, cls.__name__, name)


@pytest.mark.parametrize('cls', [ValueGPT, GPT])
def test_width_must_split_into_heads(cls):
    with pytest.raises(ValueError) as e: cls(**dict(SMALL, n_embd=18), seed=0)
    assert_names(e.value, cls.__name__, 'n_embd'); assert 'n_head' in str(e.value)


@pytest.mark.parametrize('cls', [ValueGPT, GPT])
@pytest.mark.parametrize('bad', ['0', -1, 1.5, True, [0]])
def test_bad_seeds(cls, bad):
    with pytest.raises(TypeError) as e: cls(**SMALL, seed=bad)
    assert_names(e.value, cls.__name__, 'seed')


def weights(model): return [p.data for p in model.parameters()]


def test_value_gpt_seeds_fix_the_weights_and_leave_global_state_alone():
    state, np_state = random.getstate(), np.random.get_state()[1].copy()
    a, b = ValueGPT(**SMALL, seed=3), ValueGPT(**SMALL, seed=3)
    assert weights(a) == weights(b)
    assert weights(ValueGPT(**SMALL, seed=random.Random(5))) == weights(ValueGPT(**SMALL, seed=random.Random(5)))
    assert weights(ValueGPT(**SMALL, seed=np.random.default_rng(7))) == weights(ValueGPT(**SMALL, seed=np.random.default_rng(7)))
    assert weights(ValueGPT(**SMALL, seed=4)) != weights(a)
    assert weights(ValueGPT(**SMALL)) != weights(ValueGPT(**SMALL))
    assert random.getstate() == state and (np.random.get_state()[1] == np_state).all()


def test_value_gpt_sizes():
    model = ValueGPT(vocab_size=5, block_size=3, n_embd=6, n_head=2, n_layer=2, seed=0)
    C = 6
    assert len(model.parameters()) == 5 * C + 3 * C + 2 * (C * 3 * C + C * C + C * 4 * C + 4 * C * C) + C * 5
    cache = [([], []) for _ in model.layers]
    for pos, token in enumerate([0, 4, 2]):
        logits = model.forward(token, pos, cache)
        assert len(logits) == 5 and all(isinstance(v, Value) for v in logits)
    assert [len(keys) for keys, _ in cache] == [3, 3] and len(cache[0][0][0]) == C


# ---------------------------------------------------------------- tokens

@pytest.mark.parametrize('tokens,error,words', [([0], ValueError, 'at least two'), ([], ValueError, 'at least two'),
                                                ([0, 27], ValueError, 'tokens[1] to be an integer from 0 to 26'),
                                                ([0, -1], ValueError, 'tokens[1]'),
                                                ([0, 1.0], TypeError, 'tokens[1]'), ('ab', TypeError, 'tokens'),
                                                (5, TypeError, 'tokens')])
def test_value_gpt_loss_bad_tokens(tokens, error, words):
    with pytest.raises(error) as e: ValueGPT(**SMALL, seed=0).loss(tokens)
    assert_names(e.value, 'ValueGPT.loss', words)


def test_value_gpt_loss_cuts_long_names_to_the_context():
    model = ValueGPT(vocab_size=27, block_size=4, n_embd=8, n_head=2, n_layer=1, seed=0)
    long = [0, 1, 2, 3, 4, 5, 6, 0]
    assert model.loss(long).data == pytest.approx(model.loss(long[:5]).data, abs=1e-15)


# ---------------------------------------------------------------- the list functions

def test_list_functions_match_numpy():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=7), rng.normal(size=(7, 4))
    xs = [Value(v) for v in x]
    assert np.allclose([v.data for v in linear(xs, w.tolist())], x @ w, atol=1e-13)
    assert np.allclose([v.data for v in rmsnorm(xs)], x / np.sqrt((x ** 2).mean() + 1e-5), atol=1e-13)
    e = np.exp(x - x.max())
    assert np.allclose([v.data for v in softmax(xs)], e / e.sum(), atol=1e-15)


# ---------------------------------------------------------------- names and tokens

def test_tokenizer_on_surnames():
    surnames = load_names('last')
    tokenizer = CharTokenizer(surnames)
    assert tokenizer.vocab_size == 27
    assert max(len(tokenizer.encode(n)) for n in surnames) == 15  # the longest surname has 13 letters


def test_split_names_of_surnames_is_fixed_and_disjoint():
    train, valid, test = load_names('last', split='train'), load_names('last', split='valid'), load_names('last', split='test')
    assert (len(train), len(valid), len(test)) == (87799, 500, 500)
    assert not (set(valid) & set(test)) and not (set(train) & set(valid))
    assert split_names(['b', 'a', 'c'], 1, 1, seed=1) == split_names(['b', 'a', 'c'], 1, 1, seed=1)


# ---------------------------------------------------------------- the tensor GPT and its modules

def flat(model):
    "Every weight of a GPT or a ValueGPT, in order, as one array"
    params = model.parameters()
    return np.concatenate([p.data.ravel() for p in params]) if isinstance(model, GPT) else np.array([p.data for p in params])


@pytest.mark.parametrize('sizes', [SMALL, dict(vocab_size=5, block_size=3, n_embd=6, n_head=2, n_layer=2),
                                   dict(vocab_size=27, block_size=8, n_embd=8, n_head=1, n_layer=3)])
def test_same_seed_same_weights_same_gradients(sizes):
    gpt, value_gpt = GPT(**sizes, seed=11), ValueGPT(**sizes, seed=11)
    assert (flat(gpt) == flat(value_gpt)).all()
    rng = np.random.default_rng(0)
    tokens = [0] + rng.integers(1, sizes['vocab_size'], size=sizes['block_size'] + 2).tolist() + [0]  # cut to the context
    idx, targets = make_batch([tokens], sizes['block_size'])
    ours, theirs = gpt.loss(idx, targets), value_gpt.loss(tokens)
    ours.backward(); theirs.backward()
    assert ours.item() == pytest.approx(theirs.data, abs=1e-12)
    grads = np.concatenate([p.grad.ravel() for p in gpt.parameters()])
    assert np.abs(grads - np.array([p.grad for p in value_gpt.parameters()])).max() < 1e-9


def test_shapes():
    gpt = GPT(vocab_size=11, block_size=6, n_embd=8, n_head=2, n_layer=2, seed=0)
    for B, T in [(1, 1), (3, 6), (5, 2)]:
        assert gpt(np.zeros((B, T), dtype=int)).shape == (B, T, 11)
    assert gpt([[1, 2, 3]]).shape == (1, 3, 11)  # nested lists are fine
    assert sum(p.data.size for p in gpt.parameters()) == 11 * 8 + 6 * 8 + 2 * 12 * 8 * 8 + 8 * 11
    assert Embedding(7, 3, seed=0)(np.array([[[1, 2]]])).shape == (1, 1, 2, 3)
    attn = CausalSelfAttention(8, 4, seed=0)
    assert attn.weights(Tensor_of((2, 5, 8))).shape == (2, 4, 5, 5)
    assert MLP(8, seed=0)(Tensor_of((2, 5, 8))).shape == (2, 5, 8)
    assert Block(8, 4, seed=0)(Tensor_of((2, 5, 8))).shape == (2, 5, 8)


def Tensor_of(shape):
    from micrograd.tensor import Tensor
    return Tensor(np.random.default_rng(0).normal(size=shape))


@pytest.mark.parametrize('make,error,words', [
    (lambda: Embedding(0, 3), ValueError, ['Embedding', 'num']), (lambda: Embedding(3, 2.0), TypeError, ['Embedding', 'dim']),
    (lambda: Embedding(3, 2, seed='x'), TypeError, ['Embedding', 'seed']),
    (lambda: CausalSelfAttention(10, 4), ValueError, ['CausalSelfAttention', 'n_embd', 'n_head']),
    (lambda: CausalSelfAttention(8, 0), ValueError, ['CausalSelfAttention', 'n_head']),
    (lambda: MLP(-1), ValueError, ['MLP', 'n_embd']), (lambda: Block(8, 3), ValueError, ['Block', 'n_embd'])])
def test_module_arguments(make, error, words):
    with pytest.raises(error) as e: make()
    assert all(w in str(e.value) for w in words), str(e.value)


@pytest.mark.parametrize('idx,error,words', [([1, 2], ValueError, 'shape (2,)'), ([[]], ValueError, 'shape (1, 0)'),
                                             ([[0.5, 1]], TypeError, 'integer'), ([['a']], TypeError, 'integer'),
                                             ([[0, -1]], ValueError, 'from 0 to 26'), ([[0, 27]], ValueError, 'from 0 to 26'),
                                             ([[0] * 17], ValueError, 'block_size=16')])
def test_bad_token_ids(idx, error, words):
    gpt = GPT(**SMALL, seed=0)
    for call, name in [(lambda: gpt(idx), 'GPT()'), (lambda: gpt.loss(idx, idx), 'GPT.loss()')]:
        with pytest.raises(error) as e: call()
        assert name in str(e.value) and words in str(e.value), str(e.value)


def test_whole_floats_are_token_ids():
    gpt = GPT(**SMALL, seed=0)
    assert np.array_equal(gpt(np.array([[0.0, 5.0]])).data, gpt(np.array([[0, 5]])).data)


@pytest.mark.parametrize('targets,words', [(np.zeros((1, 3), int), 'shape of idx'), (np.full((1, 2), -1), 'at least one target'),
                                           (np.array([[1, 27]]), 'targets from 0 to 26'), (np.array([[1, -2]]), 'targets from 0 to 26'),
                                           (np.array([[1.0, 2.0]]), 'integers')])
def test_bad_targets(targets, words):
    with pytest.raises(ValueError) as e: GPT(**SMALL, seed=0).loss(np.array([[0, 1]]), targets)
    assert 'GPT.loss()' in str(e.value) and words in str(e.value), str(e.value)


@pytest.mark.parametrize('args,error,words', [(([], 16), ValueError, 'at least one'), (('abc', 16), TypeError, 'token_lists'),
                                              (([[0]], 16), ValueError, 'at least two'), (([[0, 1]], 0), ValueError, 'block_size'),
                                              (([[0, 1.5]], 4), TypeError, 'tokens[1]')])
def test_bad_batches(args, error, words):
    with pytest.raises(error) as e: make_batch(*args)
    assert 'make_batch()' in str(e.value) and words in str(e.value), str(e.value)


# ---------------------------------------------------------------- generate

def test_generate_is_fixed_by_its_seed_and_leaves_global_state_alone():
    gpt = GPT(**SMALL, seed=0)
    state, np_state = random.getstate(), np.random.get_state()[1].copy()
    start = np.zeros((4, 1), dtype=int)
    a = gpt.generate(start, 10, seed=5)
    assert np.array_equal(a, gpt.generate(start, 10, seed=5))
    assert not np.array_equal(a, gpt.generate(start, 10, seed=6))
    assert np.array_equal(gpt.generate(start, 10, seed=random.Random(3)), gpt.generate(start, 10, seed=random.Random(3)))
    assert np.array_equal(gpt.generate(start, 10, seed=np.random.default_rng(3)), gpt.generate(start, 10, seed=np.random.default_rng(3)))
    assert random.getstate() == state and (np.random.get_state()[1] == np_state).all()


def test_generate_shapes_context_and_grad_mode():
    gpt = GPT(vocab_size=5, block_size=4, n_embd=4, n_head=2, n_layer=1, seed=0)
    out = gpt.generate([[0, 1, 2, 3, 4, 1, 2]], 9, seed=0)  # a context longer than block_size is cut to its end
    assert out.shape == (1, 16) and out[0, :7].tolist() == [0, 1, 2, 3, 4, 1, 2]
    assert out.min() >= 0 and out.max() < 5
    assert is_grad_enabled()
    assert gpt.wte.weight.grad is None  # generating built no graph and computed no gradient


def test_generate_draws_from_the_probabilities():
    "With a model that always gives the same probabilities, the draws follow them"
    gpt = GPT(vocab_size=3, block_size=2, n_embd=2, n_head=1, n_layer=1, seed=0)
    for p in gpt.parameters(): p.data[...] = 0.0
    gpt.lm_head.data[...] = 0.0  # all logits 0: every token as likely
    drawn = gpt.generate(np.zeros((3000, 1), dtype=int), 1, seed=0)[:, 1]
    assert np.allclose(np.bincount(drawn, minlength=3) / 3000, 1 / 3, atol=0.03)


@pytest.mark.parametrize('kwargs,error,words', [(dict(max_new_tokens=-1), ValueError, 'max_new_tokens'),
                                                (dict(max_new_tokens=2.0), TypeError, 'max_new_tokens'),
                                                (dict(max_new_tokens=2, temperature=0), ValueError, 'temperature'),
                                                (dict(max_new_tokens=2, temperature='hot'), TypeError, 'temperature'),
                                                (dict(max_new_tokens=2, temperature=math.inf), ValueError, 'temperature'),
                                                (dict(max_new_tokens=2, seed=-5), TypeError, 'seed')])
def test_generate_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as e: GPT(**SMALL, seed=0).generate([[0]], **kwargs)
    assert 'GPT.generate()' in str(e.value) and words in str(e.value), str(e.value)


def test_sample_names():
    tokenizer = CharTokenizer(load_names(split='train'))
    gpt = GPT(**SMALL, seed=0)
    names = sample_names(gpt, tokenizer, 7, seed=2)
    assert len(names) == 7 and names == sample_names(gpt, tokenizer, 7, seed=2)
    assert all(set(n) <= set(tokenizer.chars[1:]) and len(n) <= 16 for n in names)
    with pytest.raises(ValueError) as e: sample_names(gpt, tokenizer, 0)
    assert 'sample_names()' in str(e.value) and 'n' in str(e.value)


# ---------------------------------------------------------------- weights by name

def test_state_dict_round_trip_and_refusals():
    sizes = dict(vocab_size=7, block_size=5, n_embd=8, n_head=2, n_layer=2)
    a, b = GPT(**sizes, seed=1), GPT(**sizes, seed=2)
    state = a.state_dict()
    assert list(state) == ['wte.weight', 'wpe.weight'] + [f'h.{i}.{m}' for i in range(2) for m in
                                                          ('attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj')] + ['lm_head']
    state['wte.weight'][0, 0] = 99.0  # a copy: the model is unchanged
    assert a.wte.weight.data[0, 0] != 99.0
    b.load_state_dict(a.state_dict())
    assert (flat(a) == flat(b)).all()
    before = flat(b)
    for bad, error, words in [([1, 2], TypeError, 'dict'), ({}, ValueError, 'missing'),
                              (dict(a.state_dict(), extra=np.zeros(1)), ValueError, "unexpected ['extra']"),
                              (dict(a.state_dict(), lm_head=np.zeros((8, 6))), ValueError, 'lm_head of shape (8, 7)')]:
        with pytest.raises(error) as e: b.load_state_dict(bad)
        assert 'GPT.load_state_dict()' in str(e.value) and words in str(e.value), str(e.value)
        assert (flat(b) == before).all()
