# cli_kaldi.sh -- Kaldi tables through the gmle command: fitting from
# binary/text/double/compressed archives, scp and ark:- equals fitting from
# the same frames in .npy; labels per utterance (utt2lang) and per frame
# (alignments); per-frame archives and .npy outputs; per-utterance sums
# equal the sums of the per-frame scores; utterance accuracy of classify;
# bad archives; and the README's audio example, run as written.
# Archives are written here by a small numpy writer that follows Kaldi's
# format (kaldiio, when installed, cross-checks the compressed ones).
. "$(dirname "$0")/lib.sh"
CMP="$HELPERS/cli_model_compare"
if [ "$HAVE_NUMPY" != 1 ]; then
  echo "numpy is not installed: skipped"
  exit 77
fi

cat >kaldi_io.py <<'EOF'
import struct, numpy as np

def write_ark(path, utts, kind="FM"):
    """utts: list of (key, 2-D array). kind: FM, DM or text (%.9g)."""
    offsets = []
    with open(path, "wb") as f:
        for key, x in utts:
            f.write(key.encode() + b" ")
            offsets.append(f.tell())
            if kind == "text":
                f.write(b" [")
                for row in x:
                    f.write(b"\n  " + b"".join(b"%.9g " % v for v in row))
                f.write(b"]\n")
                continue
            dt = "<f4" if kind == "FM" else "<f8"
            f.write(b"\0B" + kind.encode() + b" ")
            f.write(struct.pack("<bibi", 4, x.shape[0], 4, x.shape[1]))
            f.write(np.ascontiguousarray(x, dtype=dt).tobytes())
    return offsets

def write_ali(path, utts):
    """Alignments as Kaldi writes int32 vectors: size byte 4 + int32 count,
    then size byte 4 + int32 per element."""
    with open(path, "wb") as f:
        for key, v in utts:
            f.write(key.encode() + b" \0B" + struct.pack("<bi", 4, len(v)))
            f.write(b"".join(struct.pack("<bi", 4, int(e)) for e in v))

def read_ark(path):
    """Binary FM/DM matrices and FV/DV vectors, or text matrices."""
    data = open(path, "rb").read()
    out, p = [], 0
    while p < len(data):
        while data[p:p + 1].isspace():
            p += 1
        if p >= len(data):
            break
        q = data.index(b" ", p)
        key, p = data[p:q].decode(), q + 1
        if data[p:p + 2] == b"\0B":
            tok = data[p + 2:p + 5]
            dt = "<f4" if tok[:1] == b"F" else "<f8"
            p += 5
            rows = struct.unpack("<bi", data[p:p + 5])[1]
            p += 5
            cols = 0
            if tok[1:2] == b"M":
                cols = struct.unpack("<bi", data[p:p + 5])[1]
                p += 5
            n = rows * max(cols, 1)
            x = np.frombuffer(data, dt, n, p)
            p += n * np.dtype(dt).itemsize
            out.append((key, x.reshape(rows, cols) if cols else x))
        else:
            q = data.index(b"]", p)
            body = data[data.index(b"[", p) + 1:q].decode().strip()
            p = q + 1
            rows = [list(map(float, r.split())) for r in body.split("\n")]
            out.append((key, np.array(rows)))
    return out
EOF

# Three "languages", utterances of 30..89 frames of 4 features, float32.
py "make the data" <<'EOF'
import numpy as np, sys
sys.path.insert(0, ".")
from kaldi_io import write_ark, write_ali
rng = np.random.default_rng(11)
langs = ["de", "en", "fr"]
mu = np.array([[0, 0, 0, 0], [2.5, 0, 1, 0], [0, 2.5, -1, 1]], float)
def make(n_utt, prefix, seed):
    r = np.random.default_rng(seed)
    utts, labs = [], []
    for u in range(n_utt):
        c = (u * 7) % 3
        n = 30 + (u * 13) % 60
        x = (r.standard_normal((n, 4)) * [1, 1, 0.5, 2] + mu[c] + 100).astype(np.float32)
        utts.append(("%s-%03d" % (prefix, u), x))
        labs.append(langs[c])
    return utts, labs
train, tl = make(40, "spk1-utt", 1)
test, el = make(15, "spk9-utt", 2)
offs = write_ark("train.ark", train)
write_ark("test.ark", test)
write_ark("train_text.ark", train, "text")
write_ark("train_dm.ark", [(k, x.astype(np.float64)) for k, x in train], "DM")
with open("train.scp", "w") as f:   # script order differs from the archive's
    for i in list(range(1, 40, 2)) + list(range(0, 40, 2)):
        f.write("%s train.ark:%d\n" % (train[i][0], offs[i]))
scp_order = list(range(1, 40, 2)) + list(range(0, 40, 2))
for name, utts, labs in (("train", train, tl), ("test", test, el)):
    with open(name + "_utt2lang", "w") as f:
        f.write("".join("%s %s\n" % (k, l) for (k, _), l in zip(utts, labs)))
    np.save(name + ".npy", np.concatenate([x for _, x in utts]))
    with open(name + "_frames.txt", "w") as f:
        f.write("".join((l + "\n") * len(x) for (_, x), l in zip(utts, labs)))
np.save("train64.npy", np.concatenate([x for _, x in train]).astype(np.float64))
np.save("train_scp.npy", np.concatenate([train[i][1] for i in scp_order]))
with open("train_scp_frames.txt", "w") as f:
    f.write("".join((tl[i] + "\n") * len(train[i][1]) for i in scp_order))
# Alignments: a frame label (0..2) per frame, not the utterance's class.
ali = [(k, (np.arange(len(x)) // 10) % 3) for k, x in train]
write_ali("train_ali.ark", ali)
with open("train_ali_frames.txt", "w") as f:
    f.write("".join("%d\n" % v for _, a in ali for v in a))
print("wrote", len(train), "training and", len(test), "test utterances")
EOF

# ---- fitting: every form of the archive gives the model of the .npy ------
expect 0 "fit from .npy with frame labels" fit train.npy --labels train_frames.txt -o m_npy.npz -q
expect 0 "fit from ark:train.ark --labels utt2lang" fit ark:train.ark --labels train_utt2lang -o m_ark.npz -q
"$CMP" m_npy.npz m_ark.npz 0 >cmp.txt && ok "ark = npy, bit for bit: $(cat cmp.txt)" || bad "ark differs from npy: $(cat cmp.txt)"
expect 0 "fit from a text archive (ark,t:)" fit ark,t:train_text.ark --labels train_utt2lang -o m_text.npz -q
"$CMP" m_npy.npz m_text.npz 0 >cmp.txt && ok "text ark (%.9g) = npy, bit for bit" || bad "text ark differs: $(cat cmp.txt)"
expect 0 "fit from a double archive (DM)" fit ark:train_dm.ark --labels train_utt2lang -o m_dm.npz -q
expect 0 "fit the same frames as a float64 .npy" fit train64.npy --labels train_frames.txt -o m_npy64.npz -q
"$CMP" m_npy64.npz m_dm.npz 0 >cmp.txt && ok "DM = float64 npy, bit for bit: $(cat cmp.txt)" || bad "DM differs from the float64 npy: $(cat cmp.txt)"
# the float32 .npy is fitted with float32 products: the float32 contract
"$CMP" m_npy.npz m_dm.npz 1e-6 >cmp.txt && ok "DM = float32 npy within the float32 contract: $(cat cmp.txt)" || bad "DM differs: $(cat cmp.txt)"
expect 0 "fit from scp:train.scp (offsets, another order)" fit scp:train.scp --labels train_utt2lang -o m_scp.npz -q
expect 0 "fit from the same frames in script order" fit train_scp.npy --labels train_scp_frames.txt -o m_scp_npy.npz -q
"$CMP" m_scp_npy.npz m_scp.npz 0 >cmp.txt && ok "scp = npy in script order, bit for bit" || bad "scp differs: $(cat cmp.txt)"
"$GMLE" fit ark:- --labels train_utt2lang -o m_stdin.npz -q <train.ark >out.txt 2>err.txt
[ $? = 0 ] && "$CMP" m_npy.npz m_stdin.npz 0 >cmp.txt && ok "fit from ark:- (stdin) = npy" || { bad "ark:-: $(cat err.txt) $(cat cmp.txt)"; }
expect 0 "fit with per-frame labels from an alignment archive" fit ark:train.ark --labels ark:train_ali.ark -o m_ali.npz -q
expect 0 "fit the same frames with the same frame labels" fit train.npy --labels train_ali_frames.txt -o m_ali_npy.npz -q
"$CMP" m_ali_npy.npz m_ali.npz 0 >cmp.txt && ok "alignment labels = frame labels, bit for bit" || bad "alignments differ: $(cat cmp.txt)"
expect 0 "fit --cov diag from an archive" fit ark:train.ark --labels train_utt2lang --cov diag --batch-rows 7 -o m_diag.npz -q
expect 0 "stats from an archive" stats ark:train.ark --labels train_utt2lang -o train.st -q
expect 0 "fit --stats of the archive" fit --stats train.st -o m_st.npz -q
"$CMP" m_npy.npz m_st.npz 0 >cmp.txt && ok "stats from ark -> fit = npy" || bad "stats path differs: $(cat cmp.txt)"
if python3 -c 'import kaldiio' 2>/dev/null; then
  python3 -c '
import numpy as np, kaldiio
d = dict(kaldiio.load_ark("train.ark"))
for m in (1, 2, 3):
    kaldiio.save_ark("train_cm%d.ark" % m, d, compression_method=m)
    ref = np.concatenate([x for _, x in kaldiio.load_ark("train_cm%d.ark" % m)])
    np.save("train_cm%d_ref.npy" % m, ref.astype(np.float32))' >py.txt 2>&1 || bad "kaldiio: $(cat py.txt)"
  for m in 1 2 3; do
    expect 0 "score a compressed archive (CM$m, kaldiio's encoder)" score m_npy.npz ark:train_cm$m.ark -o s_cm$m.npy -q
    expect 0 "score kaldiio's decoding of it" score m_npy.npz train_cm${m}_ref.npy -o s_cm${m}_ref.npy -q
    py "CM$m scores match kaldiio's decoding" "$m" <<'EOF'
import numpy as np, sys
m = sys.argv[1]
a, b = np.load("s_cm%s.npy" % m), np.load("s_cm%s_ref.npy" % m)
rel = np.max(np.abs(a - b) / np.maximum(1, np.abs(b)))
assert rel < 1e-3, rel   # inputs agree to a few float32 ulps of the range
print("max relative difference of the scores", rel)
EOF
  done
else
  echo "note: kaldiio not installed; compressed-archive cross-check skipped"
fi

# ---- scoring: per-frame archives and per-utterance sums --------------------
expect 0 "score -o ark:ll.ark --per-utt per.txt" score m_ark.npz ark:test.ark -o ark:ll.ark --per-utt per.txt -q
expect 0 "score -o ark,t: (text), float64" score m_ark.npz ark:test.ark -o ark,t:ll_text.ark -q
expect 0 "score --what logpost -o ark:lp.ark" score m_ark.npz ark:test.ark --what logpost -o ark:lp.ark --dtype f32 -q
expect 0 "score --what density (vectors)" score m_ark.npz ark:test.ark --what density -o ark:dens.ark -q
expect 0 "score --per-utt per.npy only" score m_ark.npz ark:test.ark --per-utt per.npy -q
expect 0 "score the same frames from .npy" score m_ark.npz test.npy -o ll.npy -q
py "per-frame archive = .npy scores; per-utterance sums = sums of frames" <<'EOF'
import numpy as np, sys
sys.path.insert(0, ".")
from kaldi_io import read_ark
ll = read_ark("ll.ark")
ref = np.load("ll.npy")
allf = np.concatenate([x for _, x in ll])
assert allf.dtype == np.float64 and np.array_equal(allf, ref), "ark != npy"
text = read_ark("ll_text.ark")
assert [k for k, _ in text] == [k for k, _ in ll]
assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(text, ll)), "text (%.17g) != binary"
dens = read_ark("dens.ark")
assert all(v.ndim == 1 and len(v) == len(x) for (_, v), (_, x) in zip(dens, ll))
lines = [l.split() for l in open("per.txt") if not l.startswith("#")]
npy = np.load("per.npy")
m = np.load("m_ark.npz")
names = list(m["classes"])
logp = np.log(m["priors"])
C = len(names)
assert len(lines) == len(ll) == npy.shape[0] and npy.shape[1] == 2 + 2 * C
for (key, x), l, row in zip(ll, lines, npy):
    sums = []
    for c in range(C):      # the frames' scores added in frame order
        s = 0.0
        for v in x[:, c]:
            s += v
        sums.append(s)
    assert l[0] == key and int(l[1]) == len(x) == row[0]
    assert [float(v) for v in l[3:3 + C]] == sums, (key, l[3:3 + C], sums)
    assert list(row[2:2 + C]) == sums
    assert [float(v) for v in l[3 + C:]] == [s / len(x) for s in sums]
    pred = int(np.argmax(logp + np.array(sums)))
    assert l[2] == names[pred] and row[1] == pred, key
print(len(ll), "utterances: sums, means and classes exact")
EOF

# ---- classify: utterance accuracy ------------------------------------------
expect 0 "classify --truth utt2lang -o pred.txt" classify m_ark.npz ark:test.ark --truth test_utt2lang -o pred.txt
cp out.txt classify.txt
grep -q "^utterances: 15$" classify.txt && grep -q "^utterance accuracy: " classify.txt &&
  grep -q "^frame accuracy: " classify.txt && ok "classify prints $(grep '^utterance acc' classify.txt)" ||
  { bad "classify output:"; cat classify.txt; }
py "utterance accuracy = predictions vs truth" <<'EOF'
truth = dict(l.split() for l in open("test_utt2lang"))
pred = [l.split() for l in open("pred.txt")]
per = [l.split() for l in open("per.txt") if not l.startswith("#")]
assert [p[0] for p in pred] == [p[0] for p in per]
assert all(p[1] == q[2] for p, q in zip(pred, per)), "classify != score --per-utt"
k = sum(truth[u] == c for u, c in pred)
line = [l for l in open("classify.txt") if l.startswith("utterance accuracy")][0]
want = "utterance accuracy: %.6f (%d of %d)" % (k / len(pred), k, len(pred))
assert line.strip() == want, (line, want)
print(want)
EOF
expect 0 "classify with frame truth from an alignment" classify m_ali.npz ark:train.ark --truth ark:train_ali.ark
grep -q "^frame accuracy: " out.txt && grep -q "confusion matrix (frames; " out.txt &&
  ok "frame accuracy and confusion from alignments" || { bad "ali classify:"; cat out.txt; }
expect 0 "eval an archive with utt2lang" eval m_ark.npz ark:test.ark --labels test_utt2lang
grep "^total" out.txt >eval_ark.txt
expect 0 "eval the same frames in .npy" eval m_ark.npz test.npy --labels test_frames.txt
grep "^total" out.txt | cmp -s - eval_ark.txt && ok "eval ark = eval npy: $(cat eval_ark.txt)" || bad "eval differs"

# ---- bad input ---------------------------------------------------------------
head -c 300 train.ark >cut.ark
expect_fail 3 "a truncated archive" "key 'spk1-utt-000'" m_cut.npz fit ark:cut.ark --labels train_utt2lang -o m_cut.npz
grep -q "byte [0-9]*" err.txt && ok "names the byte offset: $(cat err.txt)" || bad "no offset: $(cat err.txt)"
grep -v "spk1-utt-007" train_utt2lang >missing_utt2lang
expect_fail 2 "an utterance without a label" "spk1-utt-007" m_miss.npz fit ark:train.ark --labels missing_utt2lang -o m_miss.npz
printf 'spk1-utt-000 [\n 1 2 nan 4 ]\n' >nan.ark
expect_fail 2 "text nan: the non-finite policy" "utterance 'spk1-utt-000' frame 0" s_nan.npy score m_ark.npz ark:nan.ark -o s_nan.npy
expect_fail 2 "alignments that do not match the frames" "spk1-utt-000" m_bad_ali.npz fit ark:test.ark --labels ark:train_ali.ark -o m_bad_ali.npz
expect_fail 1 "an archive output from .npy data" "Kaldi table" out.ark score m_ark.npz test.npy -o ark:out.ark
expect 1 "--what label into an archive (usage)" score m_ark.npz ark:test.ark --what label -o ark:out.ark
grep -q "integers" err.txt && [ ! -e out.ark ] && ok "says why: $(head -1 err.txt)" || bad "--what label: $(cat err.txt)"
expect_fail 3 "a pipe rspecifier" "pipes" m_pipe.npz fit "ark:cat train.ark |" -o m_pipe.npz

expect 0 "score --help" score --help
grep -q -- "--per-utt" out.txt && grep -q "ark:OUT.ark" out.txt && ok "score --help documents --per-utt and ark outputs" || bad "score --help lacks the Kaldi options"
expect 0 "classify --help" classify --help
grep -q "utt2label" out.txt && ok "classify --help documents utt2label truth" || bad "classify --help lacks utt2label"

# ---- the README's audio example, run as written -----------------------------
README="$HERE/../../README.md"
# Each "$ gmle ..." command of the block, then the lines the README shows
# for it, in files readme_cmd_N.txt / readme_out_N.txt.
awk '/<!-- KALDI EXAMPLE BEGIN -->/ { on = 1; next } /<!-- KALDI EXAMPLE END -->/ { on = 0 }
     !on || /^```/ { next }
     /^\$ / { k++; g = ($2 == "gmle"); if (g) { sub(/^\$ gmle /, ""); print > ("readme_cmd_" k ".txt") } next }
     g { print > ("readme_out_" k ".txt") }' "$README"
n_cmds=$(ls readme_cmd_*.txt 2>/dev/null | wc -l)
[ "$n_cmds" -ge 3 ] && ok "README example has $n_cmds gmle commands" || bad "no README example found"
for f in $(ls readme_cmd_*.txt 2>/dev/null | sort -t_ -k3 -n); do
  line=$(cat "$f")
  eval "set -- $line"
  expect 0 "README: gmle $line" "$@"
  o=${f/cmd/out}
  if [ -f "$o" ]; then
    missing=$(cat out.txt err.txt | grep -Fxvf - "$o" | head -1)
    [ -z "$missing" ] && ok "README shows what it prints ($(wc -l <"$o") lines)" ||
      bad "README shows '$missing', which 'gmle $line' does not print"
  fi
done
[ -s lang.npz ] && [ -s test_per_utt.txt ] && [ -s test_pred.txt ] &&
  ok "README example wrote its files" || bad "README example outputs missing"
finish
