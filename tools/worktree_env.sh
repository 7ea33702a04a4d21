#!/usr/bin/env bash
# Developer helper: a git worktree with its own light venv that reuses the main checkout's installed dependencies.
# usage: tools/worktree_env.sh NAME   -> /work/wt/NAME on branch wt/NAME, with NAME/.venv (geovigie editable from there)
set -euo pipefail
name=$1
main=$(git rev-parse --show-toplevel)
dest=/work/wt/$name
mkdir -p /work/wt
git -C "$main" worktree add -q -b "wt/$name" "$dest" HEAD
python3.11 -m venv "$dest/.venv" 2>/dev/null || python3 -m venv "$dest/.venv"
site=$(echo "$dest"/.venv/lib/python3.11/site-packages)
echo "$main/.venv/lib/python3.11/site-packages" > "$site/zz_main_deps.pth"
rm -rf "$site"/setuptools* "$site"/_distutils_hack "$site"/distutils-precedence.pth  # the main venv's newer setuptools
(cd "$dest" && .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . >/dev/null)
ln -sf "$main/.venv/bin/ruff" "$dest/.venv/bin/ruff"
for tool in mypy pytest lint-imports playwright uvicorn; do
  [ -e "$main/.venv/bin/$tool" ] && [ ! -e "$dest/.venv/bin/$tool" ] && \
    printf '#!%s\nimport runpy,sys\nsys.argv[0]="%s"\nrunpy.run_path("%s", run_name="__main__")\n' \
      "$dest/.venv/bin/python" "$tool" "$main/.venv/bin/$tool" > "$dest/.venv/bin/$tool" && chmod +x "$dest/.venv/bin/$tool"
done
touch "$dest/.venv/.installed-stamp"
echo "$dest"
