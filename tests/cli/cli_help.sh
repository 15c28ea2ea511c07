# cli_help.sh -- --help on every command exits 0; version; usage errors
# exit 1.
. "$(dirname "$0")/lib.sh"

for c in fit stats merge score classify eval info devices demo; do
  expect 0 "$c --help" "$c" --help
  if grep -q "Usage: gmle $c" out.txt; then ok "$c --help prints its usage"; else bad "$c --help: no usage text"; fi
  expect 0 "help $c" help "$c"
done
expect 0 "--help" --help
grep -q "Exit codes" out.txt && ok "--help documents the exit codes" || bad "--help lacks exit codes"
expect 0 "help" help
expect 0 "--version" --version
grep -q "^gmle [0-9]" out.txt && ok "version line: $(cat out.txt)" || bad "version: $(cat out.txt)"
expect 1 "no command" 
expect 1 "unknown command" frobnicate
expect 1 "unknown option" fit x.npy --bogus -o m.npz
expect 1 "missing -o" fit x.npy
expect 1 "bad --cov" fit x.npy --cov huge -o m.npz
expect 1 "bad --backend" devices --backend tpu
expect 1 "bad --batch-rows" fit x.npy --batch-rows 0 -o m.npz
expect 1 "score needs MODEL and DATA" score m.npz -o s.npy
expect 1 "bad --what" score m.npz x.npy --what nope -o s.npy
expect 0 "devices" devices
grep -q "auto picks" out.txt && ok "devices says what auto picks" || bad "devices: $(cat out.txt)"
finish
