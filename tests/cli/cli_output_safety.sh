# cli_output_safety.sh -- where outputs go and what a stopped run leaves
# (RELIABILITY.md, "Output safety, signals and memory limits"): devices,
# FIFOs and '-' written straight through, a symlink's target replaced, an
# output's mode kept, outputs that are inputs refused before any work,
# SIGINT/SIGTERM/SIGHUP remove the temporary output, write errors on stdout
# fail, output names up to 255 bytes.
. "$(dirname "$0")/lib.sh"

gen_csv 300 5 | cut -d, -f1-3 >x.csv
gen_csv 300 5 | cut -d, -f4 >y.txt
expect 0 "fit the model" fit x.csv --labels y.txt -o m.npz -q
cp m.npz m.keep

# 1. Not a regular file: written straight through; links followed.
expect 0 "classify -o /dev/null" classify m.npz x.csv -o /dev/null -q
[ -c /dev/null ] && ok "/dev/null is still a device" || bad "/dev/null replaced"
if [ -w /dev/full ]; then
  run score m.npz x.csv -o /dev/full -q
  [ "$RC" != 0 ] && grep -q "No space" err.txt && ok "score -o /dev/full: exit $RC, $(head -1 err.txt)" || bad "score -o /dev/full: exit $RC"
  [ -c /dev/full ] && ok "/dev/full is still a device" || bad "/dev/full replaced"
fi
"$GMLE" score m.npz x.csv -o - -q >stdout.npy 2>err.txt && cmp -s stdout.npy <("$GMLE" score m.npz x.csv -o f.npy -q && cat f.npy) \
  && ok "score -o - writes the .npy to stdout" || bad "score -o -: $(cat err.txt)"
"$GMLE" score m.npz x.csv -o /dev/stdout -q 2>err.txt | cat >pipe.npy
grep -q "seekable" err.txt && ok "a .npy onto a pipe is refused: $(head -1 err.txt)" || bad "a .npy onto a pipe: $(cat err.txt)"
rm -f fifo.csv && mkfifo fifo.csv
timeout 60 cat fifo.csv >fromfifo.csv &
expect 0 "score -o FIFO" score m.npz x.csv -o fifo.csv -q
wait
"$GMLE" score m.npz x.csv -o ref.csv -q
cmp -s fromfifo.csv ref.csv && ok "the FIFO got the output" || bad "the FIFO's reader got something else"
[ -p fifo.csv ] && ok "the FIFO is still a FIFO" || bad "the FIFO was replaced"
echo old >target.csv && ln -sf target.csv link.csv
expect 0 "score -o SYMLINK" score m.npz x.csv -o link.csv -q
[ -L link.csv ] && cmp -s target.csv ref.csv && ok "the link stays, its target is replaced" || bad "symlink output"
ln -sf newtarget.csv dangling.csv
expect 0 "score -o DANGLING-SYMLINK" score m.npz x.csv -o dangling.csv -q
[ -L dangling.csv ] && cmp -s newtarget.csv ref.csv && ok "a dangling link's target is created" || bad "dangling symlink output"
echo old >mode.csv && chmod 640 mode.csv
expect 0 "score onto a mode-640 file" score m.npz x.csv -o mode.csv -q
[ "$(stat -c %a mode.csv)" = 640 ] && ok "the output keeps mode 640" || bad "mode became $(stat -c %a mode.csv)"
expect 0 "fit onto a mode-600 model" fit x.csv --labels y.txt -o m600.npz -q
chmod 600 m600.npz
expect 0 "fit again" fit x.csv --labels y.txt -o m600.npz -q
[ "$(stat -c %a m600.npz)" = 600 ] && ok "the model keeps mode 600" || bad "model mode became $(stat -c %a m600.npz)"

# 2. An output that is an input: refused before any work.
cp x.csv x.keep
expect_fail 1 "fit -o DATA" "same file" "" fit x.csv --labels y.txt -o x.csv -q
cmp -s x.csv x.keep && ok "the data is untouched" || bad "fit replaced its data"
expect_fail 1 "fit -o LABELS" "same file" "" fit x.csv --labels y.txt -o y.txt -q
expect_fail 1 "score -o MODEL" "same file" "" score m.npz x.csv -o m.npz -q
cmp -s m.npz m.keep && ok "the model is untouched" || bad "score replaced the model"
ln -f m.npz hard.npz
expect_fail 1 "score -o a hard link of the model" "same file" "" score m.npz x.csv -o hard.npz -q
expect_fail 1 "classify -o --truth" "same file" "" classify m.npz x.csv --truth y.txt -o y.txt -q
expect 0 "stats" stats x.csv --labels y.txt -o a.gst -q
expect_fail 1 "merge -o SHARD" "same file" "" merge a.gst -o a.gst -q
expect_fail 1 "fit --stats -o STATS" "same file" "" fit --stats a.gst -o a.gst -q
expect_fail 1 "score -o ark:MODEL" "same file" "" score m.npz x.csv -o ark:m.npz -q
echo old >t.txt
expect_fail 1 "score -o and --per-utt the same file" "same file" "" score m.npz ark:m.npz -o ark:t.txt --per-utt ./t.txt -q
rm -f new.txt
expect_fail 1 "score -o and --per-utt the same new file" "same file" new.txt score m.npz ark:m.npz -o ark,t:new.txt --per-utt ./new.txt -q
# An archive that the data's Kaldi script reads (scp: lines KEY ARCHIVE:OFFSET)
echo "archive bytes" >member.ark
cp member.ark member.keep
printf 'u1 %s/member.ark:5\nu2 %s/member.ark:99\n' "$PWD" "$PWD" >feats.scp
expect_fail 1 "score scp:SCRIPT -o ark:an archive it reads" "reads from" "" score m.npz scp:feats.scp -o ark:member.ark -q
cmp -s member.ark member.keep && ok "the script's archive is untouched" || bad "score replaced an archive its script reads"

# 4. Signals: the temporary output is removed, an existing output kept.
for sig in INT TERM HUP; do
  echo keep >ll.npy
  rm -f fifo && mkfifo fifo
  (trap - INT; exec "$GMLE" score m.npz ark,t:- -o ll.npy -q <fifo 2>err.txt) &
  pid=$!
  exec 3>fifo
  printf 'u1 [\n 1 2 3\n 4 5 6 ]\n' >&3
  for i in $(seq 100); do ls ll.npy.tmp-* >/dev/null 2>&1 && break; sleep 0.1; done
  ls ll.npy.tmp-* >/dev/null 2>&1 && ok "SIG$sig: a temporary output while running" || bad "SIG$sig: no temporary file seen"
  kill -s $sig $pid
  wait $pid 2>/dev/null
  RC=$?
  exec 3>&-
  want=$((128 + $(kill -l $sig)))
  [ "$RC" = $want ] && ok "SIG$sig: exit $RC" || bad "SIG$sig: exit $RC, expected $want"
  ls ll.npy.tmp-* >/dev/null 2>&1 && bad "SIG$sig left $(ls ll.npy.tmp-*)" || ok "SIG$sig: no temporary file left"
  [ "$(cat ll.npy)" = keep ] && ok "SIG$sig: the existing output is untouched" || bad "SIG$sig: output changed"
done

# 5. Write errors on stdout.
if [ -w /dev/full ]; then
  for c in "eval m.npz x.csv" "info m.npz" "info m.npz --json" "classify m.npz x.csv --truth y.txt" "--help" "fit --help"; do
    "$GMLE" $c >/dev/full 2>err.txt
    RC=$?
    [ "$RC" = 3 ] && grep -q "standard output" err.txt && ok "gmle $c >/dev/full: exit 3, $(head -1 err.txt)" || bad "gmle $c >/dev/full: exit $RC"
  done
fi

# 6. Output names of 242-255 bytes.
for n in 242 250 255; do
  name=$(printf "%0${n}d" 0 | tr 0 a)
  name=${name:0:$((n - 4))}.csv
  expect 0 "score -o a name of $n bytes" score m.npz x.csv -o "$name" -q
  cmp -s "$name" ref.csv && ok "$n bytes: written" || bad "$n bytes: not written"
  rm -f "$name"
done
ls | grep -q tmp- && bad "temporary files left: $(ls | grep tmp-)" || ok "no temporary file left anywhere"
finish
