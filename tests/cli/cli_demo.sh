# cli_demo.sh -- `gmle demo` needs no input, prints the fit and accuracy and
# writes both SVG pictures (well-formed, with the expected elements).
. "$(dirname "$0")/lib.sh"
expect 0 "demo -o out" demo -o out
grep -q "accuracy" out.txt && ok "demo prints $(grep -o 'accuracy [0-9.]*' out.txt)" || bad "demo output lacks accuracy"
grep -q "sample mean" out.txt && ok "demo prints the sample mean" || bad "demo output lacks the sample mean"
must_exist out/demo_classes.svg
must_exist out/demo_univariate.svg
grep -q "<polyline" out/demo_classes.svg && ok "classes picture has a boundary polyline" || bad "no polyline in demo_classes.svg"
[ "$(grep -c "<polygon" out/demo_classes.svg)" -ge 4 ] && ok "classes picture has 4 ellipses" || bad "ellipses missing"
if command -v python3 >/dev/null; then
  python3 -c '
import sys, xml.dom.minidom
for f in sys.argv[1:]:
    xml.dom.minidom.parse(f)
print("well-formed XML")' out/demo_classes.svg out/demo_univariate.svg >py.txt 2>&1 &&
    ok "SVGs are $(cat py.txt)" || { bad "SVG XML:"; cat py.txt; }
fi
# Default directory and determinism (fixed seed).
mkdir -p cwd && cd cwd
expect 0 "demo with the default directory" demo
must_exist gmle-demo/demo_classes.svg
cmp -s gmle-demo/demo_classes.svg ../out/demo_classes.svg && ok "demo is deterministic" || bad "demo pictures differ between runs"
cd ..
finish
