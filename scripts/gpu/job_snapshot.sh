#!/usr/bin/env bash
# Here (no GPU), from anywhere in the checkout: freezes what one GPU job needs into .gpu-jobs/NAME/ (ignored),
# so that the job builds and runs the sources as they were when it was queued, whatever else changes in
# the shared checkout meanwhile: src/ (native/ and packages/native's CMake project, laid out as in the repo
# so the addon's add_subdirectory(../../native) holds) and bundle/ (scripts/gpu/bundle.sh: the te CLI with
# @te/core and @te/native as packages of their own). The job's own build.sh, job.sh and budget sit beside them;
# touch .gpu-jobs/NAME/READY last. scripts/gpu/run_jobs.sh runs it on the GPU machine.
#   bash scripts/gpu/job_snapshot.sh NAME [--no-bundle]
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
name=${1:?usage: job_snapshot.sh NAME [--no-bundle]}
dir=.gpu-jobs/$name
grep -qx '/.gpu-jobs/' .git/info/exclude 2>/dev/null || echo '/.gpu-jobs/' >> .git/info/exclude
grep -qx '/.gpu-results/' .git/info/exclude 2>/dev/null || echo '/.gpu-results/' >> .git/info/exclude
rm -rf "$dir/src" "$dir/bundle"
mkdir -p "$dir/src"
# Only what git tracks or would track: ignored build folders (native/cudnn/tests/build, ...) would travel
# as objects that look newer than the sources and let a make on the GPU machine skip the rebuild.
git ls-files -z --cached --others --exclude-standard -- native packages/native/CMakeLists.txt packages/native/src |
  tar -cf - --null -T - | tar -xf - -C "$dir/src"
if [[ ${2:-} != --no-bundle ]]; then bash scripts/gpu/bundle.sh "$dir/bundle" > /dev/null; fi
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo +changes)" > "$dir/commit.txt"
du -sh "$dir"
