#!/usr/bin/env bash
# POSIX conformance of issue 7: the pjdfstest suite on bindfs and on epochfs, test file by test
# file, and the subtests epochfs fails that bindfs passes (docs/CONFORMANCE.md).
#
#   PJDFSTEST=/opt/pjdfstest bash bench/conformance.sh        run as root
#
# The suite is not part of this repository: PJDFSTEST is a built checkout of pjdfstest (its
# `pjdfstest` binary and `tests/` directory, built as its README says, outside this repository).
# pjdfstest runs as root and creates and deletes files under its current directory, so each test
# file runs with its current directory at the root of the mount under test, nowhere else.
#
# Targets, each from fresh directories under one temp dir on the filesystem of $BENCH_TMP:
#   bindfs          bindfs as root with its defaults (allow_other, default_permissions, new nodes
#                   owned by their creator): the FUSE passthrough reference
#   epochfs         epochfs mount with its journal (no store)
#   epochfs-store   epochfs mount shipping to an encrypted store with --epoch-interval 1s
# Each test file runs under `prove -v`, bounded by $FILE_TIMEOUT seconds. A subtest fails when
# its TAP line is `not ok` (TODO excepted) or when it never ran (a crash or the timeout: the
# subtests from the last one seen up to the plan count as failed).
#
# Output: per test file, failed/planned subtests on each target; then every subtest that fails on
# an epochfs target and passes on bindfs. After its run, epochfs-store's store must pass
# `epochfs verify`. Exits 1 when there is any such subtest or the store fails, 2 on bad usage.
#
# Environment:
#   PJDFSTEST=dir         the built suite (required)
#   EPOCHFS_ROOT=dir      the epochfs checkout whose dist/ is run (default: this script's own)
#   TARGETS="bindfs epochfs epochfs-store"   a subset, in this order
#   TESTS="chmod open"    test directories (or files, relative to tests/) to run; default all
#   FILE_TIMEOUT=120      seconds per test file
#   EPOCHFS_MOUNT_OPTS="" more `epochfs mount` options for both epochfs targets (e.g. "--cache-timeout 1")
#   BENCH_TMP=/tmp        where the temp dir goes;  KEEP=1 keeps it (with state dirs) at the end
#   RESULTS=dir           where the TSV, the TAP logs and the epochfs daemons' logs go (default a
#                         new dir in $BENCH_TMP)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EPOCHFS_ROOT=$(cd "${EPOCHFS_ROOT:-$HERE/..}" && pwd)
CLI="$EPOCHFS_ROOT/dist/src/cli/main.js"
TARGETS=${TARGETS:-bindfs epochfs epochfs-store}
TESTS=${TESTS:-}
read -r -a EPOCHFS_MOUNT_OPTS <<<"${EPOCHFS_MOUNT_OPTS:-}"
FILE_TIMEOUT=${FILE_TIMEOUT:-120}
BENCH_TMP=${BENCH_TMP:-/tmp}
KEEP=${KEEP:-0}
export EPOCHFS_PASSPHRASE=${EPOCHFS_PASSPHRASE:-epochfs-conformance-passphrase}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "conformance.sh: $*"; exit 1; }
usage() {
  cat >&2 <<'EOF'
conformance.sh: PJDFSTEST must name a built pjdfstest checkout (its pjdfstest binary and tests/).
Get the suite (the public repository pjd/pjdfstest on GitHub) into a directory outside this
repository and build its pjdfstest binary as its README says; then run, as root:
  PJDFSTEST=/path/to/pjdfstest bash bench/conformance.sh
EOF
  exit 2
}

# ---------------------------------------------------------------- preflight
[[ -n ${PJDFSTEST:-} && -x ${PJDFSTEST}/pjdfstest && -d ${PJDFSTEST}/tests ]] || usage
PJDFSTEST=$(cd "$PJDFSTEST" && pwd)
[[ $(id -u) == 0 ]] || die "run as root (pjdfstest changes owners and creates devices)"
for cmd in bindfs node prove timeout; do command -v "$cmd" >/dev/null || die "$cmd not found"; done
[[ -f $CLI ]] || die "$CLI missing; run: npm run build (in $EPOCHFS_ROOT)"
read -r -a TARGET_LIST <<<"$TARGETS"
for t in "${TARGET_LIST[@]}"; do
  case $t in bindfs|epochfs|epochfs-store) ;; *) echo "conformance.sh: unknown target $t" >&2; exit 2 ;; esac
done
[[ ${TARGET_LIST[0]} == bindfs ]] || echo "conformance.sh: note: without bindfs first there is no reference to compare with" >&2

# The test files, relative to tests/, in order.
list_tests() {
  local sel
  if [[ -z $TESTS ]]; then sel=.; else sel=$TESTS; fi
  (cd "$PJDFSTEST/tests" && for s in $sel; do find "$s" -name '*.t' | sed 's|^\./||'; done) | sort -V
}
for s in $TESTS; do [[ -e $PJDFSTEST/tests/$s ]] || { echo "conformance.sh: no test $s in $PJDFSTEST/tests" >&2; exit 2; }; done
mapfile -t TEST_FILES < <(list_tests)
((${#TEST_FILES[@]} > 0)) || { echo "conformance.sh: no test files in $PJDFSTEST/tests" >&2; exit 2; }

WORK=$(mktemp -d "$BENCH_TMP/epochfs-conformance.XXXXXX")
RESULTS=${RESULTS:-$BENCH_TMP/epochfs-conformance-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RESULTS/tap"
TSV="$RESULTS/results.tsv"   # target, file, planned, failed, failed subtests (comma-separated), run|n/a
: >"$TSV"
export EPOCHFS_RUN_DIR="$WORK/run" # a private registry: group names cannot collide with others'

# ---------------------------------------------------------------- mounts and cleanup
declare -A MOUNTED=() # target -> bindfs: pid of our background child; epochfs: "epochfs"

backing_of() { echo "$WORK/$1/backing"; }
mnt_of() { echo "$WORK/$1/mnt"; }
state_of() { echo "$WORK/$1/state"; }

mount_target() {
  local t=$1 b m s
  b=$(backing_of "$t"); m=$(mnt_of "$t"); s=$(state_of "$t")
  rm -rf "${WORK:?}/$t"
  mkdir -p "$b" "$m" "$s"
  case $t in
    bindfs)
      start_bindfs "$WORK/bindfs.log" "$m" "$b" && { MOUNTED[$t]=$BINDFS_PID; return 0; }
      MOUNTED[$t]=$BINDFS_PID
      die "bindfs did not mount $m (see $WORK/bindfs.log)"
      ;;
    epochfs | epochfs-store)
      local extra=("${EPOCHFS_MOUNT_OPTS[@]}")
      if [[ $t == epochfs-store ]]; then
        node "$CLI" init --store "$WORK/$t/store" >/dev/null
        extra+=(--store "$WORK/$t/store" --epoch-interval 1s)
      fi
      MOUNTED[$t]=epochfs
      start_epochfs "$CLI" "$b" "$m" "$s" "${extra[@]}" || die "epochfs did not mount $m"
      ;;
  esac
}

# Normal unmount; on failure (or in cleanup) a lazy unmount and the daemon killed by its pid.
umount_target() {
  [[ -n ${MOUNTED[$1]:-} ]] || return 0
  stop_mount "$CLI" "$(mnt_of "$1")" "$(state_of "$1")" "${MOUNTED[$1]}" "$WORK/umount.log"
  unset "MOUNTED[$1]"
  if [[ -f $(state_of "$1")/daemon.log ]]; then cp "$(state_of "$1")/daemon.log" "$RESULTS/$1-daemon.log"; fi
}

cleanup() {
  local rc=$? t mnts=()
  trap - EXIT INT TERM
  for t in "${TARGET_LIST[@]}"; do mnts+=("$(mnt_of "$t")"); done
  unmount_all "${mnts[@]}"
  if [[ $KEEP == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- one test file
# Reads `prove -v` output; prints "planned<TAB>failed<TAB>list" where list names the failed
# subtests (a plan that never came or subtests that never ran count as failed: "N-M").
tap_summary() {
  awk '
    /^1\.\.[0-9]+/ && !planned { planned = substr($1, 4) + 0 }
    /^(not )?ok [0-9]+/ {
      n = ($1 == "not") ? $3 + 0 : $2 + 0
      if (n > last) last = n
      if ($1 == "not" && $0 !~ /# *TODO/) { failed++; list = list (list ? "," : "") n }
    }
    END {
      if (!planned) { print "0\t1\tno-plan"; exit }
      if (last < planned) {
        failed += planned - last
        list = list (list ? "," : "") (last + 1) "-" planned
      }
      printf "%d\t%d\t%s\n", planned, failed + 0, list
    }'
}

run_file() { # target file
  local t=$1 f=$2 out
  out="$RESULTS/tap/$t/${f//\//_}.tap"
  mkdir -p "$(dirname "$out")"
  (cd "$(mnt_of "$t")" && timeout -k 5 "$FILE_TIMEOUT" prove -v "$PJDFSTEST/tests/$f") >"$out" 2>&1 || true
  printf '%s\t%s\t%s\t%s\n' "$t" "$f" "$(tap_summary <"$out")" "$(applicability "$f" "$out")" >>"$TSV"
}

# "n/a" for a test file that does not apply here: pjdfstest's quick_exit (an unsupported call or
# filesystem) plans one passing subtest, a plan the file itself never announces.
applicability() { # file tap
  if grep -qx '1\.\.1' "$2" && ! grep -q 'echo "1\.\.1"' "$PJDFSTEST/tests/$1"; then echo n/a; else echo run; fi
}

# The store the run shipped to (an epoch a second of every file pjdfstest made: devices, fifos,
# sockets, setuid bits, long names) must pass `epochfs verify`.
STORE_BAD=0
verify_store() { # store
  if node "$CLI" verify --store "$1" >"$RESULTS/store-verify.txt" 2>&1; then
    log "epochfs-store: epochfs verify: $(tail -1 "$RESULTS/store-verify.txt")"
  else
    log "epochfs-store: epochfs verify FAILED (see $RESULTS/store-verify.txt)"
    return 1
  fi
}

# Epochs that failed while the suite ran (the mount is unaffected; the backup stops advancing).
report_shipping() { # daemon log
  local failed; failed=$(grep -c 'epoch failed' "$1" 2>/dev/null || true)
  if [[ ${failed:-0} == 0 ]]; then log "epochfs-store: no epoch failed"; return; fi
  log "epochfs-store: $failed epochs failed; the first: $(grep -m1 'epoch failed' "$1" | cut -c1-200)"
}

# ---------------------------------------------------------------- run
log "pjdfstest $(git -C "$PJDFSTEST" rev-parse --short HEAD 2>/dev/null || echo "(no git)") from $PJDFSTEST: ${#TEST_FILES[@]} test files"
log "epochfs build $(build_id "$EPOCHFS_ROOT") (commit $(git -C "$EPOCHFS_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')) from $EPOCHFS_ROOT${EPOCHFS_MOUNT_OPTS[*]:+ (mount options: ${EPOCHFS_MOUNT_OPTS[*]})}; bindfs $(bindfs --version 2>&1 | awk '{print $2; exit}')"
for t in "${TARGET_LIST[@]}"; do
  log "$t: mounting"
  mount_target "$t"
  gone=0
  for f in "${TEST_FILES[@]}"; do
    if ((!gone)) && ! { is_mounted "$(mnt_of "$t")" && ls "$(mnt_of "$t")" >/dev/null 2>&1; }; then # a dead daemon's mount stays listed, its root's attributes cached
      log "$t: the mount is gone before $f: that file and the rest count as failed"
      gone=1
    fi
    if ((gone)); then printf '%s\t%s\t%s\trun\n' "$t" "$f" "$(tap_summary </dev/null)" >>"$TSV"; else run_file "$t" "$f"; fi
  done
  log "$t: $(awk -F'\t' -v t="$t" '$1 == t && $6 == "run" { p += $3; f += $4 } END { printf "%d of %d subtests failed", f, p }' "$TSV")"
  umount_target "$t"
  if [[ $t == epochfs-store ]] && ! verify_store "$WORK/$t/store"; then STORE_BAD=1; fi
  if [[ $t == epochfs-store ]]; then report_shipping "$RESULTS/$t-daemon.log"; fi
done

# ---------------------------------------------------------------- report
# Table: one row per test file, "failed/planned" per target; then the regressions: subtests that
# fail on an epochfs target and pass on bindfs.
awk -F'\t' -v targets="$TARGETS" '
  function expand(list, set,   parts, i, r, a, b, k) {
    split("", set)
    if (list == "" || list == "no-plan") { if (list == "no-plan") set["all"] = 1; return }
    split(list, parts, ",")
    for (i in parts) {
      if (split(parts[i], r, "-") == 2) { a = r[1] + 0; b = r[2] + 0 } else { a = b = parts[i] + 0 }
      for (k = a; k <= b; k++) set[k] = 1
    }
  }
  {
    key = $1 SUBSEP $2; cell[key] = ($6 == "n/a") ? "n/a" : ($5 == "no-plan") ? "no TAP" : $4 "/" $3
    failed[key] = $5; nfail[key] = $4
    if (!($2 in seen)) { seen[$2] = 1; files[++nf] = $2 }
    if ($6 == "n/a") { na[$1]++; next }
    total_p[$1] += $3; total_f[$1] += $4; files_run[$1]++
    if ($4 > 0) files_failed[$1]++
  }
  END {
    nt = split(targets, T, " ")
    printf "%-28s", "test file"; for (i = 1; i <= nt; i++) printf " %14s", T[i]; printf "\n"
    for (j = 1; j <= nf; j++) {
      f = files[j]; printf "%-28s", f
      for (i = 1; i <= nt; i++) {
        k = T[i] SUBSEP f
        c = !(k in cell) ? "-" : cell[k] == "n/a" ? "n/a" : (nfail[k] > 0 ? "FAIL " : "ok ") cell[k]
        printf " %14s", c
      }
      printf "\n"
    }
    printf "%-28s", "failed/run subtests"
    for (i = 1; i <= nt; i++) printf " %14s", sprintf("%d/%d", total_f[T[i]], total_p[T[i]])
    printf "\n%-28s", "failed/run files (n/a)"
    for (i = 1; i <= nt; i++) printf " %14s", sprintf("%d/%d (%d)", files_failed[T[i]], files_run[T[i]], na[T[i]])
    printf "\n\n"
    regressions = 0
    if (T[1] != "bindfs") { print "no bindfs reference: nothing compared"; exit 0 }
    for (i = 2; i <= nt; i++) {
      lines = ""
      for (j = 1; j <= nf; j++) {
        f = files[j]; k = T[i] SUBSEP f; r = "bindfs" SUBSEP f
        if (!(k in cell) || nfail[k] == 0) continue
        expand(failed[k], E); expand(failed[r], B)
        only = ""
        if ("all" in E && !("all" in B)) only = "all (no TAP plan)"
        else if (!("all" in B)) for (n = 1; n <= 10000; n++) if ((n in E) && !(n in B)) only = only (only ? "," : "") n
        if (only != "") { lines = lines sprintf("  %-28s subtests %s\n", f, only); regressions++ }
      }
      if (lines == "") printf "%s fails no subtest that bindfs passes\n", T[i]
      else printf "%s fails subtests that bindfs passes:\n%s", T[i], lines
    }
    exit regressions > 0
  }' "$TSV" | tee "$RESULTS/report.txt"
rc=${PIPESTATUS[0]}
((STORE_BAD == 0)) || { echo "epochfs-store: its store fails epochfs verify"; rc=1; }
log "results and TAP logs in $RESULTS"
exit "$rc"
