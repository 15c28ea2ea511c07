# cli_bad_input.sh -- each bad input gives its exit code (2 bad data,
# 3 file error), a one-line message naming the file, and no output file.
. "$(dirname "$0")/lib.sh"

gen_csv 300 5 >all.csv
cut -d, -f1-3 all.csv >X.csv
cut -d, -f4 all.csv >y.txt
expect 0 "fit a good model" fit X.csv --labels y.txt -o good.npz -q

# NaN in row 17 (0-based), column 2.
awk -F, -v OFS=, 'NR == 18 { $3 = "nan" } { print }' X.csv >nan.csv
expect_fail 2 "NaN row (CSV), fit" "nan.csv" m.npz fit nan.csv --labels y.txt -o m.npz
grep -q "row 17" err.txt && ok "NaN message names row 17: $(cat err.txt)" || bad "NaN message: $(cat err.txt)"
expect_fail 2 "NaN row (CSV), score" "nan.csv" s.npy score good.npz nan.csv -o s.npy
expect_fail 2 "NaN row (CSV), stats" "nan.csv" s.st stats nan.csv --labels y.txt -o s.st
# NaN in a later batch: the message gives the row of the file.
expect_fail 2 "NaN row in batch 3" "row 17" m.npz fit nan.csv --labels y.txt --batch-rows 5 -o m.npz

# D mismatch between the model (3 features) and the data (2).
cut -d, -f1-2 X.csv >X2.csv
expect_fail 2 "D mismatch, score" "X2.csv" s.npy score good.npz X2.csv -o s.npy
expect_fail 2 "D mismatch, classify" "X2.csv" p.npy classify good.npz X2.csv -o p.npy
expect_fail 2 "D mismatch, eval" "X2.csv" "" eval good.npz X2.csv

# Label file length mismatch, both ways.
head -n 299 y.txt >short.txt
expect_fail 2 "labels file too short" "short.txt" m.npz fit X.csv --labels short.txt -o m.npz
{ cat y.txt; echo setosa; } >long.txt
expect_fail 2 "labels file too long" "long.txt" m.npz fit X.csv --labels long.txt -o m.npz
expect_fail 2 "labels too short for classify --truth" "short.txt" p.npy classify good.npz X.csv --truth short.txt -o p.npy

# Bad labels: outside --classes, unknown to the model.
expect_fail 2 "label outside --classes" "y.txt" m.npz fit X.csv --labels y.txt --classes setosa,versicolor -o m.npz
sed 's/^virginica$/daisy/' y.txt >daisy.txt
expect_fail 2 "label unknown to the model (eval)" "daisy" "" eval good.npz X.csv --labels daisy.txt

# A class that cannot be fitted: one row, no floor.
{ head -n 20 X.csv; } >few.csv
{ for i in $(seq 19); do echo a; done; echo b; } >few.txt
expect_fail 2 "class with one row, no floor" "few.csv" m.npz fit few.csv --labels few.txt --rel-floor 0 -o m.npz

# Corrupt and truncated models; missing files.
cp good.npz flip.npz
size=$(wc -c <good.npz)
printf '\xff\xfe\xfd' | dd of=flip.npz bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
expect_fail 3 "corrupt model (bytes flipped)" "flip.npz" s.npy score flip.npz X.csv -o s.npy
head -c $((size - 40)) good.npz >trunc.npz
expect_fail 3 "truncated model" "trunc.npz" s.npy score trunc.npz X.csv -o s.npy
expect_fail 3 "corrupt model, info" "flip.npz" "" info flip.npz
expect_fail 3 "missing model" "nope.npz" s.npy score nope.npz X.csv -o s.npy
expect_fail 3 "missing data" "nope.csv" m.npz fit nope.csv -o m.npz
expect_fail 3 "missing labels file" "nope.txt" m.npz fit X.csv --labels nope.txt -o m.npz

# Bad CSV: a ragged row; a bad number.
awk -F, -v OFS=, 'NR == 9 { print $1, $2; next } { print }' X.csv >ragged.csv
expect_fail 3 "ragged CSV row" "ragged.csv" m.npz fit ragged.csv -o m.npz
grep -q "ragged.csv:9" err.txt && ok "ragged CSV message gives line 9" || bad "ragged CSV message: $(cat err.txt)"
awk -F, -v OFS=, 'NR == 5 { $2 = "1.2.3" } { print }' X.csv >badnum.csv
expect_fail 3 "bad number in CSV" "badnum.csv" s.npy score good.npz badnum.csv -o s.npy

# .npy: truncated data, bad header; written without numpy.
npy_header() { # DESCR SHAPE
  local h="{'descr': '$1', 'fortran_order': False, 'shape': $2, }"
  local pad=$(( (64 - (10 + ${#h} + 1) % 64) % 64 ))
  printf '\x93NUMPY\x01\x00'
  local len=$(( ${#h} + pad + 1 ))
  printf "\\x$(printf %02x $((len % 256)))\\x$(printf %02x $((len / 256)))"
  printf '%s' "$h"
  printf '%*s' $pad ''
  printf '\n'
}
{ npy_header '<f8' '(100, 3)'; head -c 800 /dev/zero; } >trunc.npy
expect_fail 3 "truncated .npy" "trunc.npy" m.npz fit trunc.npy -o m.npz
{ npy_header '|O' '(2, 3)'; head -c 48 /dev/zero; } >object.npy
expect_fail 3 "object dtype .npy" "object.npy" m.npz fit object.npy -o m.npz
printf '\x93NUMPY\x09\x00garbage' >badver.npy
expect_fail 3 "bad .npy version" "badver.npy" m.npz fit badver.npy -o m.npz
if [ "$HAVE_NUMPY" = 1 ]; then
  python3 -c '
import numpy as np
X = np.random.default_rng(1).normal(size=(40, 5)).astype(np.float32)
X[17, 3] = np.nan
np.save("nan.npy", X)'
  expect_fail 2 "NaN in .npy float32" "nan.npy" m.npz fit nan.npy -o m.npz
  grep -q "row 17 col 3" err.txt && ok "message: $(cat err.txt)" || bad "NaN .npy message: $(cat err.txt)"
fi

# Output into a missing directory: file error, nothing left.
expect_fail 3 "output into a missing directory" "nodir" "" score good.npz X.csv -o nodir/s.npy
finish
