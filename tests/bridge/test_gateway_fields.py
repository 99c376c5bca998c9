"""The gateway's job routes split a body into params and the submit command's own fields, as
the protocol's one schema table names them (no second list to fall out of step)."""

from __future__ import annotations

import pytest

from bridge import protocol
from bridge.errors import InvalidRequest
from bridge.gateway import JOB_FIELDS, _Handler


def test_job_fields_are_the_submit_commands_optional_fields() -> None:
    submit = protocol.COMMANDS["submit"]
    assert set(JOB_FIELDS) == {"seed", "idempotency_key"}
    assert set(JOB_FIELDS) == set(submit) - {"kind", "params"}


def test_a_route_body_keeps_seed_and_key_out_of_the_params() -> None:
    body = {"text": "rain on a window", "seed": 7, "idempotency_key": "k1", "knobs": {}}
    params, fields = _Handler._params("cue", body)
    assert params == {"text": "rain on a window", "knobs": {}}
    assert fields == {"seed": 7, "idempotency_key": "k1"}
    with pytest.raises(InvalidRequest, match="seed"):
        _Handler._params("cue", {"text": "x", "seed": -1})
