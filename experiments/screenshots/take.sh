#!/usr/bin/env bash
# Screenshots of the built documentation site (the evidence that it renders the tutorial gallery with its
# outputs and figures, and the API reference with whole signatures and parameter tables): rebuilds the site
# into a temporary folder and retakes the PNGs of this folder, opened from disk (file://), as a reader would.
#
# Prerequisites:
#   - chromium:  apt-get install -y chromium   (headless; CHROMIUM=/path/to/chrome names another binary)
#   - the docs extra in the virtual environment: .venv/bin/pip install -e ".[docs]"  (mkdocs, the gallery
#     kernel; Pillow comes with matplotlib)
# Usage, from anywhere:  bash experiments/screenshots/take.sh
#   SITE=/tmp/x      where the site is built (default: a fresh temporary folder, removed at the end)
#   SKIP_BUILD=1     reuse an already built SITE (the build executes the gallery: one to two minutes)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY="$REPO/.venv/bin/python"
CHROMIUM=${CHROMIUM:-chromium}
WIDTH=1280
MAX_HEIGHT=16000          # chromium's largest capture; longer pages are cut there
KEEP_SITE=${SITE:+1}
SITE=${SITE:-$(mktemp -d /tmp/gnnrisk-site.XXXXXX)}
WORK=$(mktemp -d /tmp/gnnrisk-shots.XXXXXX)
cleanup() { rm -rf "$WORK"; [ -n "$KEEP_SITE" ] || rm -rf "$SITE"; }
trap cleanup EXIT

command -v "$CHROMIUM" >/dev/null || { echo "chromium not found: apt-get install -y chromium" >&2; exit 1; }

# name (the PNG's stem):page (relative to the site; use_directory_urls: false, so pages are NAME.html)
# [:height]. With a height, only that much is kept: the top of the page, or with page#ANCHOR the part that
# starts at that heading (a detail of a long page).
PAGES=(
  "home:index.html"
  "gallery-index:gallery/index.html"
  "gallery-quick_study:gallery/quick_study.html"
  "gallery-private_run:gallery/private_run.html"
  "gallery-attack_audit:gallery/attack_audit.html"
  "gallery-fairness_feedback:gallery/fairness_feedback.html"
  "reference-index:reference/index.html"
  "reference-api:reference/api.html"
  "reference-report-top:reference/report.html:5000"
  "reference-pipeline-run_city_forecast:reference/pipeline.html#gnnrisk.pipeline.run_city_forecast:520"
  "study-quick:studies/quick.html"
)

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "building the site into $SITE"
  (cd "$REPO" && DISABLE_MKDOCS_2_WARNING=true "$REPO/.venv/bin/mkdocs" build --strict -d "$SITE" >"$WORK/build.log" 2>&1) \
    || { tail -40 "$WORK/build.log" >&2; exit 1; }
fi

# Scrollbars are kept in the screenshots, as a reader sees them: a table or code block wider than its box
# shows the scrollbar under it (the sidebars show theirs too). The measuring below hides them, so that the
# iframe's own scrollbar does not narrow the page it measures.
chrome() { "$CHROMIUM" --headless=new --no-sandbox --disable-gpu "$@" 2>/dev/null; }

# The height of each page at WIDTH (and the top of its #ANCHOR): a helper page loads them one by one in
# an iframe of that width and writes "MEASURED <page> <height> <anchor top or -1>" into its DOM.
cat >"$WORK/measure.html" <<'HTML'
<html><body><pre id="out"></pre><iframe id="f" style="width:1280px;height:900px;border:0"></iframe><script>
const pages = decodeURIComponent(location.hash.slice(1)).split(","), f = document.getElementById("f");
const out = document.getElementById("out"); let i = 0;
function next() {
  if (i >= pages.length) return;
  f.onload = () => setTimeout(() => {
    const d = f.contentDocument, [page, anchor] = pages[i].split("#");
    const a = anchor ? d.getElementById(anchor) : null;
    const top = a ? Math.round(a.getBoundingClientRect().top + d.documentElement.scrollTop) : -1;
    out.textContent += "MEASURED " + page + " " + d.documentElement.scrollHeight + " " + top + "\n";
    i++; next(); }, 300);
  f.src = pages[i];
}
next();
</script></body></html>
HTML
sed -i "s/width:1280px/width:${WIDTH}px/" "$WORK/measure.html"
field() { local IFS=:; read -r -a parts <<<"$1"; echo "${parts[$2]:-}"; }
urls=()
for entry in "${PAGES[@]}"; do urls+=("file://$SITE/$(field "$entry" 1)"); done
list=$(IFS=,; echo "${urls[*]}")
chrome --hide-scrollbars --allow-file-access-from-files --virtual-time-budget=60000 --dump-dom "file://$WORK/measure.html#$list" \
  | grep -o 'MEASURED file://[^ ]* [0-9]* -\?[0-9]*' | cut -d' ' -f2- >"$WORK/measured.txt"
[ "$(wc -l <"$WORK/measured.txt")" -eq "${#PAGES[@]}" ] || { echo "could not measure every page" >&2; cat "$WORK/measured.txt" >&2; exit 1; }

# Each page at WIDTH x (its height, or as far as needed), opened from disk; the crops are listed for below.
rm -f "$HERE"/*.png
: >"$WORK/crops.txt"
n=0
for entry in "${PAGES[@]}"; do
  name=$(field "$entry" 0); page=$(field "$entry" 1); keep=$(field "$entry" 2)
  read -r height anchor_top < <(sed -n "$((n + 1))p" "$WORK/measured.txt" | cut -d' ' -f2-); n=$((n + 1))
  top=0; bottom=$height
  if [ "$anchor_top" -ge 0 ]; then top=$((anchor_top > 40 ? anchor_top - 40 : 0)); fi
  if [ -n "$keep" ] && [ $((top + keep)) -lt "$bottom" ]; then bottom=$((top + keep)); fi
  [ "$bottom" -le "$MAX_HEIGHT" ] || { echo "$name: $bottom px, cut at $MAX_HEIGHT" >&2; bottom=$MAX_HEIGHT; }
  chrome --window-size="$WIDTH,$bottom" --screenshot="$WORK/$name.png" "file://$SITE/${page%%#*}" >/dev/null
  echo "$name $top $bottom" >>"$WORK/crops.txt"
  echo "$name: $page (${WIDTH}x$height, rows $top-$bottom)"
done

# 256 colours (the pages are flat colours; the figures lose little), and a page whose PNG is still over
# ~400 KB is split at blank rows into NAME-1.png, NAME-2.png, ... (read top to bottom).
"$PY" - "$WORK" "$HERE" <<'PY'
import io, math, sys
from pathlib import Path
from PIL import Image

work, here = Path(sys.argv[1]), Path(sys.argv[2])
LIMIT = 400_000

def encode(img):
    buf = io.BytesIO()
    img.quantize(colors=256, dither=Image.Dither.NONE).save(buf, "PNG", optimize=True)
    return buf.getvalue()

def blank_row_near(img, y, span=300):
    """A row of one colour (between two lines of text) closest to y."""
    gray = img.convert("L")
    for d in range(span):
        for r in (y - d, y + d):
            if 0 < r < img.height:
                lo, hi = gray.crop((0, r, img.width, r + 1)).getextrema()
                if lo == hi:
                    return r
    return y

for line in (work / "crops.txt").read_text().splitlines():
    name, top, bottom = line.split()
    img = Image.open(work / f"{name}.png").convert("RGB")
    img = img.crop((0, int(top), img.width, min(int(bottom), img.height)))
    data = encode(img)
    if len(data) <= LIMIT:
        (here / f"{name}.png").write_bytes(data)
        print(f"{name}.png {img.width}x{img.height} {len(data) // 1000} KB")
        continue
    parts = math.ceil(len(data) / (0.85 * LIMIT))
    while True:
        cuts = [0] + [blank_row_near(img, img.height * k // parts) for k in range(1, parts)] + [img.height]
        pieces = [encode(img.crop((0, a, img.width, b))) for a, b in zip(cuts, cuts[1:])]
        if max(map(len, pieces)) <= LIMIT:
            break
        parts += 1
    for k, ((a, b), piece) in enumerate(zip(zip(cuts, cuts[1:]), pieces), 1):
        (here / f"{name}-{k}.png").write_bytes(piece)
        print(f"{name}-{k}.png {img.width}x{b - a} (rows {a}-{b}) {len(piece) // 1000} KB")
PY
