"""Cards record input paths relative to the repository root holding the config (a checkout's absolute path says
nothing on another machine), and as given when the input lies outside it."""

from __future__ import annotations

from pathlib import Path

from geovigie.training._experiment import recorded_path, repository_root


def test_inputs_inside_the_repository_are_recorded_relative_to_its_root(tmp_path: Path) -> None:
    repo = tmp_path / "checkout"
    (repo / ".git").mkdir(parents=True)  # a clone
    configs = repo / "training" / "configs"
    configs.mkdir(parents=True)
    assert repository_root(configs) == repo.resolve()
    inside = configs / ".." / ".." / "data" / "scene.tif"
    assert recorded_path(inside, repository_root(configs)) == "data/scene.tif"
    outside = tmp_path / "elsewhere" / "scene.tif"
    assert recorded_path(outside, repo) == str(outside)  # as given
    assert recorded_path("relative/scene.tif", None) == "relative/scene.tif"  # no repository: as given



def test_a_worktree_root_is_found_by_its_git_file(tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    (worktree / "training").mkdir(parents=True)
    (worktree / ".git").write_text("gitdir: /elsewhere/.git/worktrees/wt\n", encoding="utf-8")
    assert repository_root(worktree / "training") == worktree.resolve()
    assert recorded_path(worktree / "training" / "labels.tif", worktree.resolve()) == "training/labels.tif"
