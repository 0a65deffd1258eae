"""Training jobs through the client: start, follow, wait, cancel."""

from __future__ import annotations

import pytest

from deepaas_host.client import Client, JobNotFound, TrainingTimeout, ValidationError


def test_train_and_wait(client: Client) -> None:
    job = client.train("demo", epochs=4, duration=0.8)
    assert job["status"] in ("queued", "running")
    assert job["arguments"]["epochs"] == 4
    done = client.wait_for_training("demo", job["id"], timeout=60, poll=0.1)
    assert done["status"] == "done"
    assert done["progress"] == 1.0
    assert done["progress_message"].startswith("epoch 4/4")
    assert done["result"]["epochs"] == 4
    assert client.train_status("demo", job["id"])["status"] == "done"
    assert job["id"] in [j["id"] for j in client.get_training_jobs("demo")]


def test_failed_training_is_returned_not_raised(client: Client) -> None:
    job = client.train("demo", epochs=1, duration=0, fail=True)
    done = client.wait_for_training("demo", job["id"], timeout=60, poll=0.1)
    assert done["status"] == "error"
    assert "RuntimeError" in str(done["error"])


def test_cancel_training(client: Client) -> None:
    job = client.train("demo", epochs=100, duration=60)
    cancelled = client.cancel_training("demo", job["id"])
    assert cancelled["status"] == "cancelled"
    final = client.wait_for_training("demo", job["id"], timeout=30, poll=0.1)
    assert final["status"] == "cancelled"


def test_wait_gives_up_after_timeout(client: Client) -> None:
    job = client.train("demo", epochs=100, duration=60)
    try:
        with pytest.raises(TrainingTimeout) as info:
            client.wait_for_training("demo", job["id"], timeout=0.3, poll=0.1)
        assert isinstance(info.value, TimeoutError)
        assert info.value.job["status"] in ("queued", "running")
        assert job["id"] in str(info.value)
    finally:
        client.cancel_training("demo", job["id"])


def test_unknown_job(client: Client) -> None:
    with pytest.raises(JobNotFound) as info:
        client.train_status("demo", "0" * 32)
    assert info.value.status == 404
    assert "0" * 32 in str(info.value)


def test_bad_training_arguments(client: Client) -> None:
    with pytest.raises(ValidationError) as info:
        client.train("demo", epochs=0)
    assert "epochs" in info.value.fields
