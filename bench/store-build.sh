# Sourced by bench/store.sh and bench/store-profile.sh: the epochfs build that is measured.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
#   prepare_build WORKDIR    sets CLI (the main.js to run), BUILD_ID and BUILD_DESC
#
# ROOT must be the repo. BUILD_FROM=dist (default) runs a copy of dist/, native/build/ and
# node_modules/ taken now (SNAPSHOT=0: dist/ in place), so that a rebuild by someone else during
# the run cannot mix builds. BUILD_FROM=head compiles the committed HEAD (git archive + tsc) in
# WORKDIR, with copies of node_modules/ and native/build/, so uncommitted work in src/ is not
# measured (native/, patches/ and package*.json must then be unchanged since HEAD).
# BUILD_FROM=/abs/dir runs a build prepared there (<dir>/dist, native/build, node_modules), as is.


prepare_build() { # workdir
  local snap=$1/epochfs-build
  BUILD_FROM=${BUILD_FROM:-dist}
  SNAPSHOT=${SNAPSHOT:-1}
  BUILD_ID=$(build_id "$ROOT")
  CLI=$ROOT/dist/src/cli/main.js
  local commit dirty=
  commit=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')
  [[ -z $(cd "$ROOT" && git status --porcelain -- src native patches 2>/dev/null) ]] || dirty=' + uncommitted changes in src/native/patches'
  case $BUILD_FROM in
    head)
      if [[ -n $(cd "$ROOT" && git status --porcelain -- native patches package.json package-lock.json) ]]; then
        echo "BUILD_FROM=head: native/, patches/ or package*.json have uncommitted changes; their builds would not match HEAD" >&2
        return 1
      fi
      mkdir -p "$snap"
      (cd "$ROOT" && git archive HEAD) | tar -x -C "$snap"
      cp -a "$ROOT/node_modules" "$snap/"
      rm -rf "$snap/native/build"; cp -a "$ROOT/native/build" "$snap/native/"
      (cd "$snap" && rm -rf dist && node_modules/.bin/tsc -p tsconfig.json && chmod +x dist/src/cli/main.js) || { echo "compiling HEAD failed" >&2; return 1; }
      CLI=$snap/dist/src/cli/main.js
      BUILD_ID=$(build_id "$snap")
      BUILD_DESC="commit $commit, compiled from git HEAD in the temp dir (BUILD_FROM=head$([[ -n $dirty ]] && echo '; uncommitted changes in src/native/patches not measured')), build id $BUILD_ID"
      ;;
    dist)
      BUILD_DESC="commit $commit$dirty, dist built $(date -r "$ROOT/dist/src/cli/main.js" +%Y-%m-%dT%H:%M), build id $BUILD_ID"
      if [[ $SNAPSHOT == 1 ]]; then
        mkdir -p "$snap/native"
        cp -a "$ROOT/dist" "$ROOT/node_modules" "$ROOT/package.json" "$snap/"
        cp -a "$ROOT/native/build" "$snap/native/"
        [[ $(build_id "$snap") == "$BUILD_ID" ]] || { echo "the build changed while it was being copied; run again" >&2; return 1; }
        CLI=$snap/dist/src/cli/main.js
        BUILD_DESC+=" (run from a copy)"
      fi
      ;;
    /*)
      # a prepared build (e.g. a patched copy for an experiment): <dir>/dist, native/build, node_modules
      [[ -f $BUILD_FROM/dist/src/cli/main.js ]] || { echo "BUILD_FROM=$BUILD_FROM: no dist/src/cli/main.js there" >&2; return 1; }
      CLI=$BUILD_FROM/dist/src/cli/main.js
      BUILD_ID=$(build_id "$BUILD_FROM")
      BUILD_DESC="the build in $BUILD_FROM (BUILD_FROM), build id $BUILD_ID; the repo is at commit $commit"
      ;;
    *) echo "BUILD_FROM must be dist, head or an absolute path" >&2; return 1 ;;
  esac
  return 0
}
