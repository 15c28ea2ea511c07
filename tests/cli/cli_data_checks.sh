# cli_data_checks.sh -- defaults that respect the data and checks made
# before any data is read (issue 16): a diagonal fit of wide data stays
# O(C D) in memory, checks that need no data come first, the same shard
# merged twice is refused, --classes order is the class order.
. "$(dirname "$0")/lib.sh"
GEN="$HELPERS/cli_gen_npy"

# expect_usage NAME MUSTNAME CMD...: a usage error (exit 1) naming MUSTNAME.
expect_usage() {
  local name=$1 must=$2
  shift 2
  expect 1 "$name" "$@"
  if grep -q -- "$must" err.txt; then
    ok "$name: message names '$must': $(head -1 err.txt)"
  else
    bad "$name: message does not name '$must': $(head -1 err.txt)"
  fi
}

# A diagonal fit of 60,000 features from diagonal statistics: 3 D^2
# doubles (86 GB) would exceed the 3 GB address space; O(C D) fits in it.
"$GEN" wide.npy 8 60000 f64 || bad "cli_gen_npy wide.npy"
expect 0 "stats --diag of 60000 features" stats wide.npy --diag -o wide.st -q
# A sanitizer build cannot start under ulimit -v (its shadow memory): there
# the fits run without the limit.
LIMIT="ulimit -v 3000000"
{ (ulimit -v 3000000 && exec "$GMLE" --version) >/dev/null 2>&1; } 2>/dev/null || LIMIT=":"
for cov in diag spherical; do
  ($LIMIT; "$GMLE" fit --stats wide.st --cov $cov -o wide_$cov.npz -q) \
    >out.txt 2>err.txt
  RC=$?
  if [ "$RC" = 0 ] && [ -s wide_$cov.npz ]; then
    ok "fit --cov $cov of 60000 features ($LIMIT)"
  else
    bad "fit --cov $cov of 60000 features ($LIMIT): exit $RC: $(head -1 err.txt)"
  fi
done

gen_csv 60 5 >all.csv
cut -d, -f1-3 all.csv >X.csv
cut -d, -f4 all.csv >y.txt

# Case 36: what needs no data is checked before the data is opened (the
# data file here does not exist, so a check made later names it instead).
expect_usage "--priors count against --classes, before the data" "3 values for the 2 classes" \
  fit nope.csv --labels y.txt --classes setosa,virginica --priors 0.5,0.3,0.2 -o m.npz
expect_usage "a bad --priors value, before the data" "--priors" \
  fit nope.csv --labels y.txt --priors 0.5,x -o m.npz
expect_fail 3 "-o in a missing folder, before the data (fit)" "missing_dir" "" \
  fit nope.csv --labels y.txt -o missing_dir/m.npz
expect_fail 3 "-o in a missing folder, before the data (stats)" "missing_dir" "" \
  stats nope.csv --labels y.txt -o missing_dir/s.st
expect_usage "--shrinkage with --cov diag" "--shrinkage" \
  fit X.csv --labels y.txt --cov diag --shrinkage -o m.npz
expect_usage "--shrinkage with --cov spherical" "--shrinkage" \
  fit X.csv --labels y.txt --cov spherical --shrinkage -o m.npz

# --classes fixes the class order, and --priors follows it.
expect 0 "fit with --classes in a given order" \
  fit X.csv --labels y.txt --classes virginica,setosa,versicolor --priors 0.5,0.3,0.2 -o ord.npz -q
run info ord.npz
if grep -Eq '^0 +virginica +[0-9]+ +0\.5 ' out.txt && grep -Eq '^1 +setosa +[0-9]+ +0\.3 ' out.txt; then
  ok "class 0 is virginica with prior 0.5, class 1 setosa with 0.3"
else
  bad "--classes order not kept: $(grep -E '^[0-9] ' out.txt | tr '\n' ';')"
fi

# Integer labels beyond int64 are still sorted as numbers.
awk '{ print (NR % 2) ? "9" : "100000000000000000000000" }' y.txt >big.txt
expect 0 "fit with labels beyond int64" fit X.csv --labels big.txt -o big.npz -q
run info big.npz
if grep -Eq '^0 +9 ' out.txt && grep -Eq '^1 +10000000000000' out.txt; then
  ok "labels 9 < 1e23 in numeric order"
else
  bad "labels beyond int64 sorted as text: $(grep -E '^[0-9] ' out.txt | tr '\n' ';')"
fi

# Case 39: the same shard twice is refused unless the user insists.
expect 0 "stats of a shard" stats X.csv --labels y.txt -o s1.st -q
cp s1.st copy.st
expect_fail 1 "merge of the same file twice" "the same file as s1.st" out.st merge s1.st s1.st -o out.st
expect_fail 1 "merge of a byte-identical copy" "the same statistics as s1.st" out.st merge s1.st copy.st -o out.st
expect 0 "merge twice with --allow-repeats" merge s1.st copy.st --allow-repeats -o out.st -q

# Case 40: eval and classify of zero rows are errors, not "nan" or "0 of 0".
"$GEN" zero.npy 0 3 f64 || bad "cli_gen_npy zero.npy"
expect 0 "a model" fit X.csv --labels y.txt -o good.npz -q
expect_fail 2 "eval of zero rows" "no rows" "" eval good.npz zero.npy
expect_fail 2 "classify of zero rows" "no rows" p.npy classify good.npz zero.npy -o p.npy

# GMLE_DEVICE is a device index, read strictly.
for v in abc 1x -1; do
  GMLE_DEVICE=$v expect_fail 1 "GMLE_DEVICE=$v" "GMLE_DEVICE=$v" "" eval good.npz X.csv
done

# --batch-rows is capped by the data's row count (a .npy knows it): 1e12
# rows of 3 doubles would be 24 TB.
"$GEN" small.npy 10 3 f64 || bad "cli_gen_npy small.npy"
expect 0 "--batch-rows 1e12 on 10 rows" stats small.npy --batch-rows 1000000000000 -o small.st -q

# Class names and labels shown on the terminal have their control bytes
# escaped (a name must not clear the screen or forge a line).
awk '{ print (NR % 2) ? "a\033[2J" : "b" }' y.txt >esc.txt
expect 0 "fit with a class name holding ESC" fit X.csv --labels esc.txt -o esc.npz -q
run info esc.npz
if grep -q 'a\\x1b\[2J' out.txt && ! grep -q "$(printf '\033')" out.txt; then
  ok "info shows the name as a\\x1b[2J"
else
  bad "info prints the raw control byte: $(grep -E '^0 ' out.txt | od -c | head -2)"
fi
awk '{ print (NR == 3) ? "c\007\rrow 0: fine" : ((NR % 2) ? "a\033[2J" : "b") }' y.txt >esc2.txt
expect 2 "eval with an unknown label holding BEL and CR" eval esc.npz X.csv --labels esc2.txt
if grep -q 'c\\x07\\x0drow 0' err.txt && [ "$(wc -l <err.txt)" -eq 1 ] && ! grep -q "$(printf '\r')" err.txt; then
  ok "the label is escaped in the message: $(cat err.txt)"
else
  bad "the label is not escaped: $(od -c err.txt | head -3)"
fi

# A NaN in a CSV is named by its file line, as a parse error is: a blank
# line 2, the NaN on line 6 (data row 4), in the third batch.
printf '0,1\n\n1,2\n3,4\n5,6\nnan,7\n8,9\n' >nanline.csv
expect_fail 2 "NaN in a CSV names the file line" "nanline.csv:6: " s.st stats nanline.csv --batch-rows 2 -o s.st
grep -q "row 4 of the file" err.txt && ok "and the data row: $(cat err.txt)" || bad "data row missing: $(cat err.txt)"
printf '1,2\n1,2x\n' >typo2.csv
expect_fail 3 "a parse error names the file line the same way" "typo2.csv:2:" s.st stats typo2.csv -o s.st


# --header: a numeric first line read as a header when the user says so,
# and a text first line as data when the user says it is none.
printf '10,20\n1,2\n3,4\n' >numhead.csv
expect 0 "fit --header yes" fit numhead.csv --header yes --cov diag -o nh.npz -q
run info nh.npz
grep -q '^total weight: 2$' out.txt && ok "--header yes: 2 rows" || bad "--header yes: $(grep weight out.txt)"
expect 0 "fit --header auto" fit numhead.csv --cov diag -o na.npz -q
run info na.npz
grep -q '^total weight: 3$' out.txt && ok "--header auto: 3 rows" || bad "--header auto: $(grep weight out.txt)"
printf 'a,b\n1,2\n' >texthead.csv
expect_fail 3 "--header no on a text first line" "texthead.csv:1:" s.st stats texthead.csv --header no -o s.st
expect_usage "--header maybe" "--header" stats numhead.csv --header maybe -o s.st

finish
