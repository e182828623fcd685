#!/usr/bin/env bash
# compare.sh runs the project's headline benchmarks for two commits,
# interleaved in one sitting, and prints the after/before ratio of each
# figure per round and their median: the way a change is shown not to be
# slower. Run it on a quiet machine against a durable PostgreSQL server
# (fsync on), named by CLOACINA_TEST_DATABASE_URL as for the tests.
#
#   CLOACINA_TEST_DATABASE_URL=postgres://user@127.0.0.1:5432/postgres \
#     bash bench/compare.sh BEFORE AFTER [ROUNDS]
#
# BEFORE and AFTER are git revisions (AFTER may be "." for the working
# tree). Each round runs every benchmark once per commit, alternating which
# goes first. The benchmarks (sizes can be changed through the environment):
#
#   sqlite-c32   BenchmarkThroughput/fanout5/conc=32 (SQLite, workflows/s)
#                COMPARE_SQLITE_N executions (default 3000)
#   burndown     BenchmarkPostgresBurnDown (executions/s, both event logs)
#                COMPARE_BURNDOWN executions (default 200000)
#   fanout-512   BenchmarkPostgresThroughput/fanout5/conc=512 (workflows/s)
#                COMPARE_FANOUT_N executions (default 20000)
#   role-pair    BenchmarkSecureSharedPool/paired (tenant package: plain and
#                switch-role workflows/s) COMPARE_ROLE_N (default 20000)
set -euo pipefail

if [ $# -lt 2 ]; then
	sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
before=$1 after=$2 rounds=${3:-3}
: "${CLOACINA_TEST_DATABASE_URL:?set CLOACINA_TEST_DATABASE_URL to a durable PostgreSQL server}"
sqlite_n=${COMPARE_SQLITE_N:-3000}
burndown=${COMPARE_BURNDOWN:-200000}
fanout_n=${COMPARE_FANOUT_N:-20000}
role_n=${COMPARE_ROLE_N:-20000}

repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
cleanup() {
	for side in before after; do
		if [ -d "$work/$side/src" ]; then
			git -C "$repo" worktree remove --force "$work/$side/src" >/dev/null 2>&1 || true
		fi
	done
	rm -rf "$work"
}
trap cleanup EXIT

# build compiles the root and tenant test binaries of revision $2 into
# $work/$1.
build() {
	local side=$1 rev=$2 src
	mkdir -p "$work/$side"
	if [ "$rev" = "." ]; then
		src=$repo
	else
		src=$work/$side/src
		git -C "$repo" worktree add --detach "$src" "$rev" >/dev/null
	fi
	(cd "$src" && go test -c -o "$work/$side/root.test" . && go test -c -o "$work/$side/tenant.test" ./tenant)
	echo "$side: $(git -C "$src" rev-parse --short HEAD)$([ "$rev" = "." ] && ! git -C "$src" diff --quiet && echo +dirty)"
}
build before "$before"
build after "$after"

# metric prints the value before unit $2 on the benchmark line matching $1.
metric() {
	awk -v name="$1" -v unit="$2" '$1 ~ name { for (i = 2; i <= NF; i++) if ($i == unit) { print $(i-1); exit } }'
}

# run runs every benchmark for one side and appends "figure value" lines to
# $work/$side.round.
run() {
	local side=$1 out
	out=$(cd "$work" && "$work/$side/root.test" -test.run '^$' -test.bench 'BenchmarkThroughput/fanout5/conc=32$' -test.benchtime "${sqlite_n}x")
	echo "sqlite-c32 $(metric 'Throughput/fanout5/conc=32' workflows/s <<<"$out")"
	out=$(cd "$work" && CLOACINA_BENCH_BURNDOWN=$burndown "$work/$side/root.test" -test.run '^$' -test.bench 'PostgresBurnDown' -test.benchtime 1x)
	echo "burndown-all $(metric 'events=all' executions/s <<<"$out")"
	echo "burndown-exceptions $(metric 'events=exceptions' executions/s <<<"$out")"
	out=$(cd "$work" && "$work/$side/root.test" -test.run '^$' -test.bench 'PostgresThroughput/fanout5/conc=512$' -test.benchtime "${fanout_n}x")
	echo "fanout-512 $(metric 'fanout5/conc=512' workflows/s <<<"$out")"
	out=$(cd "$work" && "$work/$side/tenant.test" -test.run '^$' -test.bench 'SecureSharedPool/paired' -test.benchtime "${role_n}x")
	echo "role-pair-plain $(metric 'paired' plain-workflows/s <<<"$out")"
	echo "role-pair-switch $(metric 'paired' switch-role-workflows/s <<<"$out")"
}

for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) -eq 1 ]; then order="before after"; else order="after before"; fi
	for side in $order; do
		run "$side" >"$work/$side.$r"
	done
	paste -d" " "$work/before.$r" "$work/after.$r" | awk -v r="$r" '{ printf "round %s %-20s before %10.1f after %10.1f ratio %.3f\n", r, $1, $2, $4, $4 / $2 }' | tee -a "$work/ratios"
done

echo
echo "median after/before over $rounds round(s):"
awk '{ print $3, $NF }' "$work/ratios" | sort -k1,1 -k2,2n | awk '
	{ v[$1] = v[$1] " " $2; n[$1]++ }
	END {
		for (k in v) {
			split(substr(v[k], 2), a, " ")
			m = n[k] % 2 ? a[(n[k] + 1) / 2] : (a[n[k] / 2] + a[n[k] / 2 + 1]) / 2
			printf "%-20s median %.3f  (rounds: %s)\n", k, m, substr(v[k], 2)
		}
	}' | sort
