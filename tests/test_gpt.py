"""The GPT chapter's checks that a reader does not need on the page: bad arguments get a typed error naming the
function and the argument, seeds fix the weights and samples without touching the global random state, shapes."""
import math, random
import numpy as np
import pytest
from micrograd.engine import Value
from micrograd.gpt import ValueGPT, linear, rmsnorm, softmax
from micrograd.data import load_names, split_names, CharTokenizer

SMALL = dict(vocab_size=27, block_size=16, n_embd=16, n_head=4, n_layer=1)


def assert_names(error, function, argument):
    "The message names `function` and `argument`"
    assert function in str(error) and argument in str(error), str(error)


# ---------------------------------------------------------------- sizes and seeds

@pytest.mark.parametrize('cls', [ValueGPT])
@pytest.mark.parametrize('name,bad,error', [('vocab_size', 0, ValueError), ('block_size', -3, ValueError),
                                            ('n_embd', 16.0, TypeError), ('n_head', True, TypeError),
                                            ('n_layer', '1', TypeError), ('n_layer', None, TypeError)])
def test_sizes_must_be_positive_integers(cls, name, bad, error):
    with pytest.raises(error) as e: cls(**dict(SMALL, **{name: bad}), seed=0)
    assert_names(e.value, cls.__name__, name)


@pytest.mark.parametrize('cls', [ValueGPT])
def test_width_must_split_into_heads(cls):
    with pytest.raises(ValueError) as e: cls(**dict(SMALL, n_embd=18), seed=0)
    assert_names(e.value, cls.__name__, 'n_embd'); assert 'n_head' in str(e.value)


@pytest.mark.parametrize('cls', [ValueGPT])
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
                                                ([0, 27], ValueError, 'vocab_size=27'), ([0, -1], ValueError, 'tokens[1]'),
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
