"""What a plugin's exception means for the caller, decided where the plugin runs."""

from __future__ import annotations

import decimal
import doctest
import math
import pickle

import marshmallow
import pytest

from deepaas_host.jobs.messages import RemoteError, decode, encode
from deepaas_host.model import v2
from deepaas_host.model.failures import InputRefusal, refusal_of
from deepaas_host.model.v2 import InvalidInput


def test_the_contracts_examples_run() -> None:
    result = doctest.testmod(v2, raise_on_error=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted >= 3


def test_invalid_input_names_its_arguments_and_is_a_value_error() -> None:
    error = InvalidInput("bad", argument=["a", "b"])
    assert isinstance(error, ValueError)
    assert error.arguments == ("a", "b")
    assert error.messages() == {"a": ["bad"], "b": ["bad"]}
    # it survives pickling with its arguments (a plugin may send it across processes)
    again = pickle.loads(pickle.dumps(error))
    assert (again.message, again.arguments) == ("bad", ("a", "b"))


def test_invalid_input_is_a_refusal_naming_the_model() -> None:
    refusal = refusal_of(InvalidInput("too dark", argument="image"), "vision")
    assert refusal == InputRefusal(
        "Model 'vision' refused the input: too dark", {"image": ["too dark"]}
    )


def test_a_validation_error_keeps_its_messages_made_json() -> None:
    nested = marshmallow.ValidationError({"rows": {0: ["Bad row."]}, "x": "Too big."})
    refusal = refusal_of(nested, "m")
    assert refusal is not None
    assert refusal.details == {"rows": {"0": ["Bad row."]}, "x": "Too big."}
    assert refusal.message == "Model 'm' refused the input: rows: 0: Bad row.; x: Too big."
    plain = refusal_of(marshmallow.ValidationError("Nonsense."), "m")
    assert plain == InputRefusal(
        "Model 'm' refused the input: Nonsense.", {"_schema": ["Nonsense."]}
    )


def test_overflows_are_the_callers() -> None:
    try:
        math.exp(1e6)
    except OverflowError as exc:
        refusal = refusal_of(exc, "m")
    assert refusal is not None
    assert refusal.message == "The values sent are out of range for model 'm': math range error"
    assert list(refusal.details) == ["_input"]
    with decimal.localcontext() as context:
        context.traps[decimal.Overflow] = True
        with pytest.raises(decimal.Overflow) as info:
            decimal.Decimal("9e999999") * 10
    assert refusal_of(info.value, "m") is not None


@pytest.mark.parametrize("exc", [ValueError("x"), TypeError("y"), KeyError("z"), RuntimeError()])
def test_anything_else_is_the_models_own_failure(exc: Exception) -> None:
    assert refusal_of(exc, "m") is None


def test_a_long_message_is_clipped() -> None:
    refusal = refusal_of(InvalidInput("x" * 10_000), "m")
    assert refusal is not None
    assert len(refusal.message) <= 2000


def test_the_refusal_crosses_the_process_boundary_as_a_remote_error() -> None:
    refusal = refusal_of(InvalidInput("no", argument="a"), "m")
    assert refusal is not None
    error = RemoteError("input", "InvalidInput", refusal.message, details=refusal.details)
    data = encode(error)
    assert decode(data[4:]) == error
