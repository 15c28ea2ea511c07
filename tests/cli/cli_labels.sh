# cli_labels.sh -- labels become class indices: integer .npy labels (read as
# integers, without text) give the same models, statistics, predictions and
# errors as the same labels written as text; errors found by the reader
# thread while it reads ahead come in the order of the rows (data.c).
. "$(dirname "$0")/lib.sh"
if [ "$HAVE_NUMPY" != 1 ]; then
  echo "skip: needs python3 with numpy"
  exit 77
fi

gen_csv 600 11 >all.csv
cut -d, -f1-3 all.csv >X.csv
# Classes 3, 7, 11 for setosa, versicolor, virginica.
cut -d, -f4 all.csv | sed 's/^setosa$/3/; s/^versicolor$/7/; s/^virginica$/11/' >y.txt
py "labels as .npy of every integer dtype" <<'EOF'
import numpy as np
X = np.loadtxt('X.csv', delimiter=',')
y = np.loadtxt('y.txt', dtype=np.int64)
np.save('X.npy', X)
np.save('X32.npy', X.astype(np.float32))
for name, dt in [('i8', '<i8'), ('i4', '<i4'), ('i2be', '>i2'), ('u1', 'u1'),
                 ('u4', '<u4'), ('f8', '<f8')]:
    np.save('y_%s.npy' % name, y.astype(dt))
np.save('y_col.npy', y.reshape(-1, 1))
yb = (y == 7)
np.save('y_bool.npy', yb)
np.savetxt('y_bool.txt', yb.astype(int), fmt='%d')
# Spread far apart (a hash, not a dense table), and text written "007".
big = np.where(y == 3, -5, np.where(y == 7, 10**12, 7))
np.save('y_big.npy', big)
np.savetxt('y_big.txt', big, fmt='%d')
# 300 classes of two rows: 0..149 and 149 far from 0 (both integer sets
# grow), one negative.
many = np.concatenate([np.arange(150), 10**9 + 7 * np.arange(149), [-3]])
ym = np.repeat(many, 2)
np.random.default_rng(1).shuffle(ym)
np.save('y_many.npy', ym)
np.savetxt('y_many.txt', ym, fmt='%d')
with open('y_pad.txt', 'w') as f:
    f.write(''.join('%03d\n' % v for v in y))
print('ok')
EOF

# same NAME A B: two files are byte-identical.
same() {
  if cmp -s "$2" "$3"; then ok "$1"; else bad "$1: $2 and $3 differ"; fi
}

expect 0 "fit with text labels" fit X.npy --labels y.txt -o m_txt.npz -q
for t in i8 i4 i2be u1 u4 f8 col; do
  expect 0 "fit with y_$t.npy" fit X.npy --labels y_$t.npy -o m_$t.npz -q
  same "y_$t.npy gives the model of the text labels" m_txt.npz m_$t.npz
done
expect 0 "fit with y_i8.npy, batches of 7 rows" fit X.npy --labels y_i8.npy --batch-rows 7 -o m_b7.npz -q
"$HELPERS/cli_model_compare" m_txt.npz m_b7.npz 1e-12 >cmp.txt 2>&1 &&
  ok "batches of 7 rows: the same model within 1e-12" || bad "batches of 7: $(cat cmp.txt)"
# as_text NAME CMD DATA INT TEXT [ARGS...]: CMD (fit or stats) of DATA with
# the integer labels INT and with the text labels TEXT writes one file.
as_text() {
  local name=$1 cmd=$2 data=$3 ilab=$4 tlab=$5
  shift 5
  expect 0 "$name: $cmd with $ilab" "$cmd" "$data" --labels "$ilab" "$@" -o i.out -q
  expect 0 "$name: $cmd with $tlab" "$cmd" "$data" --labels "$tlab" "$@" -o t.out -q
  same "$name: $ilab and $tlab give one file" t.out i.out
}
as_text "float32 data" fit X32.npy y_i8.npy y.txt
as_text "a CSV" fit X.csv y_i8.npy y.txt
as_text "bool labels are the classes 0 and 1" fit X.npy y_bool.npy y_bool.txt
as_text "labels far apart (-5, 7, 1e12)" fit X.npy y_big.npy y_big.txt
as_text "text written 003, 007, 011 is the classes 3, 7, 11" fit X.npy y_i8.npy y_pad.txt
as_text "statistics" stats X.npy y_i8.npy y.txt
as_text "300 classes" stats X.npy y_many.npy y_many.txt
expect 0 "fit 300 classes" fit X.npy --labels y_many.npy -o m_many.npz -q
grep -q "300 classes" <("$GMLE" fit X.npy --labels y_many.npy -o m_many.npz 2>&1) &&
  ok "300 classes found" || bad "not 300 classes: $("$GMLE" fit X.npy --labels y_many.npy -o m_many.npz 2>&1)"
as_text "--classes in a given order" fit X.npy y_i4.npy y.txt --classes 11,3,7

# classify and eval: the truth as integers or as text, the same report.
expect 0 "classify, integer truth" classify m_txt.npz X.npy --truth y_i8.npy -o p_i.npy
cp out.txt cls_i.txt
expect 0 "classify, text truth" classify m_txt.npz X.npy --truth y.txt -o p_t.npy
same "classify: the same report" cls_i.txt out.txt
same "classify: the same predictions" p_i.npy p_t.npy
grep -q "accuracy" cls_i.txt && ok "classify reports $(grep accuracy cls_i.txt)" || bad "no accuracy"
expect 0 "eval, integer labels" eval m_txt.npz X.npy --labels y_u1.npy
cp out.txt ev_i.txt
expect 0 "eval, text labels" eval m_txt.npz X.npy --labels y.txt
same "eval: the same report" ev_i.txt out.txt

# A model whose classes are not all integers: integer labels match the
# names that are integers ("7"), the others are errors naming the label.
sed 's/^3$/cat/; s/^11$/dog/' y.txt >mixed.txt
expect 0 "fit classes cat, dog, 7" fit X.npy --labels mixed.txt -o m_mixed.npz -q
py "labels all 7" <<'EOF'
import numpy as np
np.save('y_7.npy', np.full(600, 7, dtype=np.int64))
y8 = np.full(600, 7, dtype=np.int64); y8[433] = 8
np.save('y_8.npy', y8)
print('ok')
EOF
expect 0 "classify a cat/dog/7 model, integer truth 7" classify m_mixed.npz X.npy --truth y_7.npy
grep -q "^accuracy" out.txt && ok "$(grep '^accuracy' out.txt)" || bad "classify mixed: $(cat out.txt err.txt)"
expect_fail 2 "a label the model does not have (classify)" "row 433: label '8' is not a class of the model m_mixed.npz" p.npy \
  classify m_mixed.npz X.npy --truth y_8.npy -o p.npy
expect_fail 2 "a label the model does not have (eval)" "row 433: label '8' is not a class of the model m_mixed.npz" "" \
  eval m_mixed.npz X.npy --labels y_8.npy

# Errors: the messages of the text path, naming the file and the row.
expect_fail 2 "integer label outside --classes" "y_i8.npy: row 2: label '11' is not one of the classes (3, 7)" m.npz \
  fit X.npy --labels y_i8.npy --classes 3,7 -o m.npz
expect_fail 2 "text label outside --classes" "y.txt: row 2: label '11' is not one of the classes (3, 7)" m.npz \
  fit X.npy --labels y.txt --classes 3,7 -o m.npz
py "float labels, one not whole; short and long integer labels" <<'EOF'
import numpy as np
y = np.loadtxt('y.txt')
y[250] = 2.5
np.save('y_half.npy', y)
np.save('y_short.npy', np.loadtxt('y.txt', dtype=np.int64)[:590])
np.save('y_long.npy', np.concatenate([np.loadtxt('y.txt', dtype=np.int64), [3]]))
print('ok')
EOF
expect_fail 3 "a float label that is not whole" "row 250: label 2.5 is not an integer" m.npz \
  fit X.npy --labels y_half.npy --batch-rows 100 -o m.npz
expect_fail 2 ".npy data, integer labels too short" "590 labels, but X.npy has 600 rows" m.npz \
  fit X.npy --labels y_short.npy -o m.npz
expect_fail 2 "CSV data, integer labels too short" "590 labels, but X.csv has more rows" m.npz \
  fit X.csv --labels y_short.npy --batch-rows 100 -o m.npz
expect_fail 2 "CSV data, integer labels too long" "more labels than the 600 rows of X.csv" m.npz \
  fit X.csv --labels y_long.npy --batch-rows 100 -o m.npz
expect_fail 2 "classify, integer truth too short" "590 labels, but X.csv has more rows" p.npy \
  classify m_txt.npz X.csv --truth y_short.npy -o p.npy

# Errors in the order of the rows, with the next batch read ahead: a NaN in
# row 12 (batch 2 of 5 rows) comes before a bad label in row 27 (batch 5),
# and a bad label in row 3 before a NaN in row 12.
awk -F, -v OFS=, 'NR == 13 { $2 = "nan" } { print }' X.csv >nan.csv
awk 'NR == 28 { $0 = "99" } { print }' y.txt >bad27.txt
awk 'NR == 4 { $0 = "99" } { print }' y.txt >bad3.txt
expect_fail 2 "NaN (batch 2) before a bad label (batch 5)" "row 12" m.npz \
  fit nan.csv --labels bad27.txt --classes 3,7,11 --batch-rows 5 -o m.npz
grep -q "label" err.txt && bad "the label error came first: $(cat err.txt)" || ok "the NaN is reported, not the later label"
expect_fail 2 "a bad label (batch 0) before a NaN (batch 2)" "row 3: label '99'" m.npz \
  fit nan.csv --labels bad3.txt --classes 3,7,11 --batch-rows 5 -o m.npz
# In one batch: classify scores before it checks labels (the NaN first),
# eval checks labels first.
awk 'NR == 12 { $0 = "99" } { print }' y.txt >bad11.txt
expect_fail 2 "classify: a NaN and a bad label in one batch" "row 12" p.npy \
  classify m_txt.npz nan.csv --truth bad11.txt --batch-rows 5 -o p.npy
grep -q "label" err.txt && bad "classify reported the label first: $(cat err.txt)" || ok "classify: the NaN first"
expect_fail 2 "eval: a bad label and a NaN in one batch" "row 11: label '99' is not a class of the model" "" \
  eval m_txt.npz nan.csv --labels bad11.txt --batch-rows 5
# A CSV with a header and blank lines: the NaN of a later batch is named by
# its line of the file.
{ echo "a,b,c"; head -n 6 nan.csv; echo; echo; tail -n +7 nan.csv; } >hdr.csv
expect_fail 2 "NaN in a later batch of a CSV names its line" "hdr.csv:16" s.npy \
  score m_txt.npz hdr.csv --header yes --batch-rows 5 -o s.npy
grep -q "row 12" err.txt && ok "and its row" || bad "no row 12: $(cat err.txt)"
finish
