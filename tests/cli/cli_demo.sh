# cli_demo.sh -- `gmle demo` needs no input, prints the fit and accuracy and
# writes its four SVG pictures (well-formed, with the expected elements); its
# EM example finds the two classes' means without their labels.
. "$(dirname "$0")/lib.sh"
expect 0 "demo -o out" demo -o out
grep -q "accuracy" out.txt && ok "demo prints $(grep -o 'accuracy [0-9.]*' out.txt)" || bad "demo output lacks accuracy"
grep -q "sample mean" out.txt && ok "demo prints the sample mean" || bad "demo output lacks the sample mean"
must_exist out/demo_classes.svg
must_exist out/demo_univariate.svg
must_exist out/demo_em.svg
must_exist out/demo_em_loglik.svg
grep -q "demo_em.svg" out.txt && grep -q "demo_em_loglik.svg" out.txt &&
  ok "demo lists the EM pictures" || bad "demo does not list the EM pictures"
grep -q "<polyline" out/demo_classes.svg && ok "classes picture has a boundary polyline" || bad "no polyline in demo_classes.svg"
[ "$(grep -c "<polygon" out/demo_classes.svg)" -ge 4 ] && ok "classes picture has 4 ellipses" || bad "ellipses missing"
if command -v python3 >/dev/null; then
  python3 -c '
import sys, xml.etree.ElementTree as ET
for f in sys.argv[1:]:
    root = ET.parse(f).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg", (f, root.tag)
print("well-formed SVG")' out/demo_classes.svg out/demo_univariate.svg \
    out/demo_em.svg out/demo_em_loglik.svg >py.txt 2>&1 &&
    ok "SVGs are $(cat py.txt)" || { bad "SVG XML:"; cat py.txt; }
fi

# The EM example: the fitted means of the 2-component mixture, found without
# the labels, lie within 0.2 of the true class means [-1,-1] and [1,1] in
# some order (the labelled fit's are within 0.08; two merged or collapsed
# components would be about 1 away), with weights near 1/2.
sed -n 's/^  component \([0-9]\)  weight \([-0-9.]*\)  mean \[ *\([-0-9.]*\), *\([-0-9.]*\)\].*/\2 \3 \4/p' \
  out.txt >em_means.txt
if awk 'function d(x, y, a, b) { return sqrt((x - a) ^ 2 + (y - b) ^ 2) }
  { w[NR] = $1; x[NR] = $2; y[NR] = $3 }
  END {
    if (NR != 2) { print "expected 2 components, found " NR; exit 1 }
    keep = d(x[1], y[1], -1, -1); if (d(x[2], y[2], 1, 1) > keep) keep = d(x[2], y[2], 1, 1)
    swap = d(x[1], y[1], 1, 1); if (d(x[2], y[2], -1, -1) > swap) swap = d(x[2], y[2], -1, -1)
    err = keep < swap ? keep : swap
    printf "largest distance to a true mean %.4f, weights %s %s\n", err, w[1], w[2]
    exit !(err <= 0.2 && w[1] > 0.4 && w[1] < 0.6 && w[2] > 0.4 && w[2] < 0.6)
  }' em_means.txt >em_check.txt 2>&1; then
  ok "EM recovers the two classes: $(cat em_check.txt)"
else
  bad "EM means or weights off: $(cat em_check.txt)"
  sed 's/^/     | /' out.txt | grep -A6 Unsupervised
fi
em_iter=$(sed -n 's/^  \([0-9]*\) EM iterations, converged.*/\1/p' out.txt)
[ -n "$em_iter" ] && [ "$em_iter" -ge 1 ] &&
  ok "EM converged after $em_iter iterations" || bad "EM did not report convergence"
# The pictures say what stdout says: the title of demo_em.svg gives the
# iterations and the final mean log-likelihood; demo_em_loglik.svg has one
# point per iteration plus the start, and the log-likelihood never falls (EM
# is monotone; SVG y grows downwards).
final_ll=$(sed -n 's/^  \(-*[0-9.]*\) at the start, \(-*[0-9.]*\) fitted$/\2/p' out.txt)
grep -q "<title>EM: 2 Gaussians, $em_iter iterations, final mean log-likelihood $final_ll</title>" \
  out/demo_em.svg && ok "EM picture's title: $em_iter iterations, $final_ll" ||
  bad "EM picture's title does not say $em_iter iterations and $final_ll"
[ "$(grep -c "<polygon" out/demo_em.svg)" -ge 6 ] &&
  ok "EM picture has 6 ellipses (2 start, 2 x 2 fitted)" || bad "EM ellipses missing"
if command -v python3 >/dev/null; then
  python3 -c '
import sys, xml.etree.ElementTree as ET
n = int(sys.argv[2])
cy = [float(c.get("cy")) for c in
      ET.parse(sys.argv[1]).getroot().iter("{http://www.w3.org/2000/svg}circle")]
assert len(cy) == n + 1, "%d points for %d iterations" % (len(cy), n)
assert all(b <= a + 0.01 for a, b in zip(cy, cy[1:])), "falls: %s" % cy
print("%d points, non-decreasing" % len(cy))' out/demo_em_loglik.svg "$em_iter" \
    >py.txt 2>&1 && ok "log-likelihood plot: $(tail -1 py.txt)" ||
    { bad "log-likelihood plot:"; cat py.txt; }
fi
# Default directory and determinism (fixed seed).
mkdir -p cwd && cd cwd
expect 0 "demo with the default directory" demo
must_exist gmle-demo/demo_classes.svg
cmp -s gmle-demo/demo_classes.svg ../out/demo_classes.svg && ok "demo is deterministic" || bad "demo pictures differ between runs"
cmp -s gmle-demo/demo_em.svg ../out/demo_em.svg &&
  cmp -s gmle-demo/demo_em_loglik.svg ../out/demo_em_loglik.svg &&
  ok "EM pictures are deterministic" || bad "EM pictures differ between runs"
cd ..
finish
