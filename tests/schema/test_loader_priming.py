"""A primed row answers as `DataLoader.prime` says, though it becomes a future only when loaded."""

from __future__ import annotations

from schema.loaders import OperationLoader


def _loader(batches: list[list[str]]) -> OperationLoader[str, str]:
    async def batch(keys: list[str]) -> list[str]:
        batches.append(keys)
        return [f"loaded {key}" for key in keys]

    return OperationLoader(batch)


async def test_a_primed_key_is_answered_without_a_batch() -> None:
    batches: list[list[str]] = []
    loader = _loader(batches)
    loader.prime("a", "first").prime("a", "second")  # the first value stays
    assert await loader.load("a") == "first"
    assert await loader.load("b") == "loaded b"
    assert batches == [["b"]]


async def test_priming_a_loaded_key_changes_nothing() -> None:
    batches: list[list[str]] = []
    loader = _loader(batches)
    assert await loader.load("a") == "loaded a"
    loader.prime("a", "primed")
    assert await loader.load("a") == "loaded a"
    assert batches == [["a"]]


async def test_cleared_keys_forget_what_was_primed() -> None:
    batches: list[list[str]] = []
    loader = _loader(batches)
    loader.prime("a", "primed").prime("b", "primed")
    loader.clear("a")
    assert await loader.load("a") == "loaded a"
    loader.clear_all()
    assert await loader.load("b") == "loaded b"
    assert batches == [["a"], ["b"]]
