"""The hub probe: one unreachable answer stands for every repo asked after it."""

from __future__ import annotations

from harness import hub


def test_an_unreachable_hub_is_probed_once_for_many_repos(monkeypatch):
    import huggingface_hub

    calls = []

    def unreachable(url, timeout):
        calls.append(url)
        raise ConnectionError("timed out")

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", unreachable)
    monkeypatch.setattr(hub, "offline", lambda: False)
    monkeypatch.setattr(hub, "_unreachable", [])
    hub.problem.cache_clear()
    try:
        answers = [hub.problem(repo) for repo in ("org/a", "org/b", "org/c")]
    finally:
        hub.problem.cache_clear()
    assert len(calls) == 1 and "org/a" in calls[0]
    assert len(set(answers)) == 1 and "cannot be reached (timed out)" in answers[0]
