#!/bin/sh
# bench-collect.sh — the JSON results of a distributed xedge-bench run, taken from
# the pods' logs (deploy/k8s/bench-job.yaml prints each slice's JSON between two
# marker lines), written as DIR/slice-I.json and merged into DIR/merged.json,
# DIR/merged.html and DIR/merged.csv by `xedge-bench merge` (which refuses a
# slice given twice and names the missing ones).
#
#   kubectl logs -l job-name=xedge-bench --tail=-1 --max-log-requests=100 \
#       | deploy/k8s/bench-collect.sh DIR [--threshold EXPR]...
#
# Any log stream works (podman logs, files concatenated): slices are found by their
# markers, in any order.  XEDGE_BENCH names the xedge-bench to merge with (default:
# the one in PATH).  Exit status: merge's (0, 1, or 3 a threshold failed), or 1 when
# the logs hold no slice.
set -eu

if [ $# -lt 1 ]; then
	echo "usage: bench-collect.sh DIR [merge options]... < pod logs" >&2
	exit 1
fi
dir=$1
shift
mkdir -p "$dir"
rm -f "$dir"/slice-*.json

# Lines between "----- xedge-bench slice I of N: json -----" and
# "----- end of xedge-bench slice I -----" go to DIR/slice-I.json (the logs
# without --prefix or --timestamps: the markers start their lines).
awk -v dir="$dir" '
	/^----- xedge-bench slice [0-9]+ of [0-9]+: json -----$/ {
		out = dir "/slice-" $4 ".json"; printf "" > out; next
	}
	/^----- end of xedge-bench slice [0-9]+ -----$/ { if (out != "") close(out); out = ""; next }
	out != "" { print > out }
'

n=$(find "$dir" -maxdepth 1 -name 'slice-*.json' | wc -l)
if [ "$n" -eq 0 ]; then
	echo "bench-collect.sh: no xedge-bench slice in the logs" >&2
	exit 1
fi
echo "bench-collect.sh: $n slices in $dir"
# merge reads its options wherever they are (getopt_long): the files follow them.
exec "${XEDGE_BENCH:-xedge-bench}" merge -o "$dir/merged.json" --html "$dir/merged.html" \
	--csv "$dir/merged.csv" "$@" "$dir"/slice-*.json
